//! Fusion of one image's scale maps into its anomaly map and score: z-normalisation per map
//! (global or per location), element-wise max, Gaussian smoothing; the score is the mean of the
//! top-k % pixels of the (optionally mean-filtered) fused map.

use serde::{Deserialize, Serialize};

use super::location::LocationStats;
use super::{ErrorKind, Normalization, ScoringConfig};
use crate::image::filter::{box_mean, gaussian_blur};
use crate::image::Size;
use crate::metrics::top_fraction_mean;

/// Mean and standard deviation of one scale's error maps over the validation normal images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScaleStats {
    /// Window side of the scale.
    pub window: usize,
    /// Kind of error map.
    pub kind: ErrorKind,
    /// Mean error.
    pub mean: f64,
    /// Standard deviation of the error.
    pub std: f64,
    /// Per-pixel statistics, for [`Normalization::Location`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationStats>,
}

/// Mean and (population) standard deviation of the values of `maps`.
pub fn mean_std<'a>(maps: impl IntoIterator<Item = &'a [f32]>) -> (f64, f64) {
    let (mut n, mut sum, mut sq) = (0usize, 0.0f64, 0.0f64);
    for map in maps {
        for &v in map {
            let v = f64::from(v);
            n += 1;
            sum += v;
            sq += v * v;
        }
    }
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = sum / n as f64;
    (mean, (sq / n as f64 - mean * mean).max(0.0).sqrt())
}

/// Fuses one image's maps: z-normalisation per map (`stats` from validation, or the map's own
/// statistics for [`Normalization::Image`], or per pixel for [`Normalization::Location`]: a
/// scale without location statistics falls back to its global ones), element-wise max (within
/// a scale, the mean of its kinds of map when [`super::ErrorMaps::fuses_by_mean`]), Gaussian
/// smoothing. `scale_maps` and `stats` hold each scale's kinds of map in turn.
pub fn fuse(
    scale_maps: &[Vec<f32>],
    stats: &[ScaleStats],
    config: &ScoringConfig,
    size: Size,
) -> Vec<f32> {
    let mut fused = vec![f32::NEG_INFINITY; size.area()];
    // Maps fused by their mean come in groups of a scale's kinds; the others one by one.
    let kinds = config.error.kinds().len();
    let group = if config.error.fuses_by_mean() && scale_maps.len().is_multiple_of(kinds) {
        kinds
    } else {
        1
    };
    let weight = 1.0 / group as f32;
    for (maps, stats) in scale_maps.chunks(group).zip(stats.chunks(group)) {
        let mut sum = z_map(&maps[0], &stats[0], config, size);
        for (map, stats) in maps.iter().zip(stats).skip(1) {
            for (s, z) in sum.iter_mut().zip(z_map(map, stats, config, size)) {
                *s += z;
            }
        }
        for (f, s) in fused.iter_mut().zip(sum) {
            *f = f.max(s * weight);
        }
    }
    gaussian_blur(&fused, size, config.sigma)
}

/// One map z-normalised as `config` says (see [`fuse`]).
fn z_map(map: &[f32], stats: &ScaleStats, config: &ScoringConfig, size: Size) -> Vec<f32> {
    if config.normalization == Normalization::Location {
        if let Some(location) = stats.location.as_ref().filter(|l| l.size == size) {
            return location.normalise(map, config.eps);
        }
    }
    let (mean, std) = match config.normalization {
        Normalization::Validation | Normalization::Location => (stats.mean, stats.std),
        Normalization::Image => mean_std([map]),
    };
    let scale = 1.0 / (std + config.eps);
    map.iter()
        .map(|&v| ((f64::from(v) - mean) * scale) as f32)
        .collect()
}

/// Image score of a fused map of `size`: mean of the top `top_k_percent` percent of the map
/// after a mean filter of side `filter` (0 or 1: none).
pub fn image_score(fused: &[f32], size: Size, filter: usize, top_k_percent: f64) -> f64 {
    if filter > 1 {
        top_fraction_mean(&box_mean(fused, size, filter), top_k_percent / 100.0)
    } else {
        top_fraction_mean(fused, top_k_percent / 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::location::PixelMoments;

    #[test]
    fn location_normalisation_judges_each_pixel_by_its_own_normal_error() {
        let size = Size::square(4);
        let mut config = ScoringConfig::whole_image(4);
        config.sigma = 0.0;
        config.normalization = Normalization::Location;
        // Normal maps: pixel 0 always errs by about 10, the others by about 1.
        let mut moments = PixelMoments::new(size);
        for k in 0..5 {
            let mut m = vec![1.0 + 0.1 * k as f32; 16];
            m[0] = 10.0 + k as f32;
            moments.add(&m);
        }
        let stats = [ScaleStats {
            window: 4,
            kind: ErrorKind::Squared,
            mean: 2.0,
            std: 3.0,
            location: moments.stats(None, 3.0),
        }];
        let probe = vec![vec![12.0f32; 16]];
        let z = fuse(&probe, &stats, &config, size);
        // 12 is ordinary at pixel 0 and far out elsewhere (smoothing spreads pixel 0's
        // statistics a little, so only the far corner is compared).
        assert!(z[0] < z[15], "{z:?}");
        // Global statistics see the same error everywhere.
        config.normalization = Normalization::Validation;
        let g = fuse(&probe, &stats, &config, size);
        assert!((g[0] - g[15]).abs() < 1e-6);
        // The image score reads the mean-filtered map when asked: a lone peak is diluted.
        let mut peak = vec![0.0f32; 64];
        peak[4 * 8 + 4] = 9.0;
        let big = Size::square(8);
        assert_eq!(image_score(&peak, big, 0, 1.0), 9.0);
        assert!((image_score(&peak, big, 3, 1.0) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn mean_fusion_averages_a_scales_kinds_and_takes_the_max_over_scales() {
        let mut config = ScoringConfig::for_working_size(2);
        config.windows = vec![1, 2];
        config.sigma = 0.0;
        config.error = crate::score::ErrorMaps::BothMean;
        let stat = |window, kind, mean, std| ScaleStats {
            window,
            kind,
            mean,
            std,
            location: None,
        };
        // Scale 1: squared then SSIM; scale 2 likewise.
        let stats = [
            stat(1, ErrorKind::Squared, 0.0, 1.0),
            stat(1, ErrorKind::Ssim, 1.0, 2.0),
            stat(2, ErrorKind::Squared, 0.0, 1.0),
            stat(2, ErrorKind::Ssim, 0.0, 1.0),
        ];
        let maps = vec![
            vec![4.0, 0.0, 2.0, 0.0],
            vec![1.0, 9.0, 1.0, 1.0],
            vec![0.0, 0.0, 0.0, 6.0],
            vec![0.0, 0.0, 0.0, -2.0],
        ];
        let fused = fuse(&maps, &stats, &config, Size::square(2));
        // Scale 1: (4 + 0) / 2, (0 + 4) / 2, (2 + 0) / 2, 0; scale 2: 0, 0, 0, (6 − 2) / 2.
        let expect = [2.0f32, 2.0, 1.0, 2.0];
        for (f, e) in fused.iter().zip(expect) {
            assert!((f - e).abs() < 1e-5, "{fused:?}");
        }
        // The max of the same maps differs where one measure alone is high.
        config.error = crate::score::ErrorMaps::Both;
        let max = fuse(&maps, &stats, &config, Size::square(2));
        assert!((max[0] - 4.0).abs() < 1e-5 && (max[1] - 4.0).abs() < 1e-5);
    }

    #[test]
    fn head_both_mean_averages_the_heads_map_with_both_reconstruction_maps() {
        let mut config = ScoringConfig::whole_image(2);
        config.sigma = 0.0;
        config.error = crate::score::ErrorMaps::HeadBothMean;
        let kinds = config.error.kinds();
        assert_eq!(
            kinds,
            [ErrorKind::Head, ErrorKind::Squared, ErrorKind::Ssim]
        );
        // Head z = (h − 0.1) / 0.1, squared z = s / 2, SSIM z = (m − 1) / 1.
        let stats: Vec<ScaleStats> = [(0.1, 0.1), (0.0, 2.0), (1.0, 1.0)]
            .iter()
            .zip(kinds)
            .map(|(&(mean, std), &kind)| ScaleStats {
                window: 2,
                kind,
                mean,
                std,
                location: None,
            })
            .collect();
        let maps = vec![
            vec![0.1, 1.0, 0.1, 0.4],
            vec![0.0, 0.0, 6.0, 2.0],
            vec![1.0, 1.0, 4.0, 2.0],
        ];
        let fused = fuse(&maps, &stats, &config, Size::square(2));
        // A pixel the head alone flags (pixel 1: z 9, 0, 0) scores a third of it; one only
        // the reconstruction flags (pixel 2: 0, 3, 3) two thirds of theirs.
        let expect = [0.0f32, 3.0, 2.0, (3.0 + 1.0 + 1.0) / 3.0];
        for (f, e) in fused.iter().zip(expect) {
            // Within the z-normalisation's eps guard.
            assert!((f - e).abs() < 1e-4, "{fused:?}");
        }
    }

    #[test]
    fn fusion_z_normalises_each_scale_and_takes_the_max() {
        let mut config = ScoringConfig::for_working_size(4);
        config.windows = vec![2, 4];
        config.sigma = 0.0;
        let maps = vec![vec![1.0, 2.0, 3.0, 4.0], vec![10.0, 0.0, 10.0, 40.0]];
        let stats = [
            ScaleStats {
                window: 2,
                kind: ErrorKind::Squared,
                mean: 2.0,
                std: 1.0,
                location: None,
            },
            ScaleStats {
                window: 4,
                kind: ErrorKind::Squared,
                mean: 10.0,
                std: 10.0,
                location: None,
            },
        ];
        let fused = fuse(&maps, &stats, &config, Size::square(2));
        let expect = [
            (-1.0f64).max(0.0),
            0.0f64.max(-1.0),
            1.0f64.max(0.0),
            2.0f64.max(3.0),
        ];
        for (f, e) in fused.iter().zip(expect) {
            assert!((f64::from(*f) - e).abs() < 1e-5, "{fused:?}");
        }
        // Per-image statistics: every scale ends with mean 0, so a uniformly higher error
        // level is invisible (the reason validation statistics are the default).
        config.normalization = Normalization::Image;
        let shifted: Vec<Vec<f32>> = maps
            .iter()
            .map(|m| m.iter().map(|v| v + 100.0).collect())
            .collect();
        assert_eq!(
            fuse(&maps, &stats, &config, Size::square(2)),
            fuse(&shifted, &stats, &config, Size::square(2))
        );
        config.normalization = Normalization::Validation;
        assert_ne!(
            fuse(&maps, &stats, &config, Size::square(2)),
            fuse(&shifted, &stats, &config, Size::square(2))
        );
        // A zero std is guarded by eps.
        let one = ScaleStats {
            window: 2,
            kind: ErrorKind::Squared,
            mean: 1.0,
            std: 0.0,
            location: None,
        };
        let flat = [one.clone(), one];
        assert!(fuse(&maps, &flat, &config, Size::square(2))
            .iter()
            .all(|v| v.is_finite()));
    }
}

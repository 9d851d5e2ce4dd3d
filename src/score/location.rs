//! Location-wise normalisation statistics (issue 10 item 5): the per-pixel mean and standard
//! deviation of one scale's error maps over the validation normal images, smoothed and floored,
//! so that a whole-image model's error is judged against what is normal *at that place* (a
//! bottle's rim always reconstructs worse than its body).

use serde::{Deserialize, Serialize};

use crate::image::filter::gaussian_blur;
use crate::image::Size;

/// Floor of the per-pixel standard deviation, as a share of the scale's global one: a pixel
/// that happened to vary little over the few validation images does not blow up.
pub const STD_FLOOR_SHARE: f64 = 0.05;

/// Per-pixel mean and standard deviation of one scale's normal error maps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationStats {
    /// Map side (working-resolution squares).
    pub size: Size,
    /// Per-pixel mean, row-major.
    pub mean: Vec<f32>,
    /// Per-pixel standard deviation (smoothed, floored), row-major.
    pub std: Vec<f32>,
}

impl LocationStats {
    /// `(v − mean) / (std + eps)` per pixel.
    pub fn normalise(&self, map: &[f32], eps: f64) -> Vec<f32> {
        map.iter()
            .zip(self.mean.iter().zip(&self.std))
            .map(|(&v, (&m, &s))| ((f64::from(v) - f64::from(m)) / (f64::from(s) + eps)) as f32)
            .collect()
    }
}

/// Smoothing σ of the statistics maps for a map side: 2 px at 128.
pub fn smoothing_sigma(size: Size) -> f64 {
    (size.width.max(size.height) as f64 / 64.0).max(1.0)
}

/// Running per-pixel sums of maps of one size.
#[derive(Debug, Clone)]
pub struct PixelMoments {
    size: Size,
    n: usize,
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
}

impl PixelMoments {
    /// No maps yet.
    pub fn new(size: Size) -> Self {
        Self {
            size,
            n: 0,
            sum: vec![0.0; size.area()],
            sum_sq: vec![0.0; size.area()],
        }
    }

    /// Adds one map (of this size).
    pub fn add(&mut self, map: &[f32]) {
        assert_eq!(map.len(), self.size.area(), "map of the statistics' size");
        self.n += 1;
        for ((s, q), &v) in self.sum.iter_mut().zip(&mut self.sum_sq).zip(map) {
            let v = f64::from(v);
            *s += v;
            *q += v * v;
        }
    }

    /// Maps added.
    pub fn count(&self) -> usize {
        self.n
    }

    /// The statistics of every map added except `left_out` (one of them, for leave-one-out
    /// validation: an image is never judged against statistics it is part of), smoothed with
    /// [`smoothing_sigma`] and the std floored at [`STD_FLOOR_SHARE`] of `global_std`. `None`
    /// with fewer than two maps left.
    pub fn stats(&self, left_out: Option<&[f32]>, global_std: f64) -> Option<LocationStats> {
        let n = self.n - usize::from(left_out.is_some());
        if n < 2 {
            return None;
        }
        let mut mean = Vec::with_capacity(self.sum.len());
        let mut std = Vec::with_capacity(self.sum.len());
        for (i, (&s, &q)) in self.sum.iter().zip(&self.sum_sq).enumerate() {
            let (s, q) = match left_out {
                Some(m) => (s - f64::from(m[i]), q - f64::from(m[i]).powi(2)),
                None => (s, q),
            };
            let mu = s / n as f64;
            mean.push(mu as f32);
            std.push((q / n as f64 - mu * mu).max(0.0).sqrt() as f32);
        }
        let sigma = smoothing_sigma(self.size);
        let floor = (STD_FLOOR_SHARE * global_std) as f32;
        let std = gaussian_blur(&std, self.size, sigma)
            .into_iter()
            .map(|s| s.max(floor))
            .collect();
        Some(LocationStats {
            size: self.size,
            mean: gaussian_blur(&mean, self.size, sigma),
            std,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_are_per_pixel_and_leave_one_out() {
        let size = Size::new(8, 8);
        let mut m = PixelMoments::new(size);
        // The left half always errs around 10, the right half around 1.
        let maps: Vec<Vec<f32>> = (0..4)
            .map(|k| {
                (0..64)
                    .map(|i| {
                        if i % 8 < 4 {
                            10.0 + k as f32
                        } else {
                            1.0 + 0.1 * k as f32
                        }
                    })
                    .collect()
            })
            .collect();
        for map in &maps {
            m.add(map);
        }
        let all = m.stats(None, 1.0).unwrap();
        assert!(all.mean[0] > 9.0 && all.mean[7] < 3.0, "{:?}", all.mean);
        // The same error is ordinary on the left and extreme on the right.
        let probe = vec![11.0f32; 64];
        let z = all.normalise(&probe, 1e-6);
        assert!(z[0] < 2.0 && z[7] > 5.0, "{z:?}");
        // Leaving a map out changes the statistics; with one map left there are none.
        let loo = m.stats(Some(&maps[3]), 1.0).unwrap();
        assert!(loo.mean[0] < all.mean[0]);
        let mut two = PixelMoments::new(size);
        two.add(&maps[0]);
        two.add(&maps[1]);
        assert!(two.stats(Some(&maps[0]), 1.0).is_none());
        // Constant maps: the std floor keeps z finite.
        let mut flat = PixelMoments::new(size);
        for _ in 0..3 {
            flat.add(&[2.0; 64]);
        }
        let s = flat.stats(None, 1.0).unwrap();
        assert!(s.std.iter().all(|&v| (v - 0.05).abs() < 1e-6));
    }
}

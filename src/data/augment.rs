//! Training-time augmentation (SPEC §4): random rescale (long side uniform in a range), random
//! crop, resize to the batch's input size; optional input corruption for denoising training (the
//! target stays the clean image). Every random choice comes from a seeded stream
//! ([`stream_seed`]); the batch loader that uses this is [`super::loader`].

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::anomaly::restoration::{restoration_sample, RestorationConfig};
use crate::image::{ChwImage, Size};

/// Input corruption for denoising / inpainting training (never CutPaste, so the CutPaste
/// validation stays unbiased).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Corruption {
    /// Train on clean inputs.
    #[default]
    None,
    /// Add Gaussian noise of standard deviation `sigma`.
    Gaussian {
        /// Noise standard deviation (image values are in [0, 1]).
        sigma: f32,
    },
    /// Zero random square blocks of side `patch` pixels covering about `ratio` of the image.
    Mask {
        /// Block side in pixels.
        patch: usize,
        /// Share of blocks zeroed.
        ratio: f64,
    },
    /// Restoration training (DRAEM): Perlin-mask regions filled with an altered other training
    /// image (see `data::anomaly::restoration`).
    Restoration(RestorationConfig),
}

/// Augmentation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AugmentConfig {
    /// Range of the image's long side after the random rescale, in pixels.
    pub rescale: (u32, u32),
    /// Input sizes (square) a batch may draw from.
    pub input_sizes: Vec<usize>,
    /// Input corruption.
    pub corruption: Corruption,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            rescale: (256, 512),
            input_sizes: vec![128, 256, 512],
            corruption: Corruption::None,
        }
    }
}

impl AugmentConfig {
    /// Whether samples of input side `size` are whole frames: a rescale range of exactly `size`
    /// (whole-image mode, see `TrainConfig::with_whole_image`).
    pub fn is_whole_image(&self, size: usize) -> bool {
        self.rescale == (size as u32, size as u32)
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), String> {
        if self.rescale.0 == 0 || self.rescale.0 > self.rescale.1 {
            return Err(format!(
                "augment.rescale = {:?} must be 0 < min <= max",
                self.rescale
            ));
        }
        if self.input_sizes.is_empty() || self.input_sizes.contains(&0) {
            return Err("augment.input_sizes must be non-empty and positive".into());
        }
        match self.corruption {
            Corruption::Gaussian { sigma } if !(sigma > 0.0 && sigma <= 1.0) => Err(format!("gaussian sigma = {sigma} must be in (0, 1] (intensities are in [0, 1])")),
            Corruption::Mask { patch, ratio } if patch == 0 || !(ratio > 0.0 && ratio < 1.0) => {
                Err(format!("mask corruption patch = {patch}, ratio = {ratio}: need patch > 0 and 0 < ratio < 1"))
            }
            Corruption::Restoration(ref r) => r.validate(),
            _ => Ok(()),
        }
    }
}

/// One augmented sample of `size` x `size` from `image` (already at the top of the rescale range).
pub fn augment(
    image: &ChwImage,
    size: usize,
    config: &AugmentConfig,
    rng: &mut ChaCha8Rng,
) -> ChwImage {
    if config.is_whole_image(size) {
        // Whole-image mode: the full frame, squashed to the square input (no random choice).
        return image.resized(Size::square(size));
    }
    let long = rng.random_range(config.rescale.0..=config.rescale.1) as usize;
    let scaled = image.fit_long_side(long);
    let crop = size.min(scaled.width).min(scaled.height);
    let x = rng.random_range(0..=scaled.width - crop);
    let y = rng.random_range(0..=scaled.height - crop);
    scaled
        .crop(x, y, Size::square(crop))
        .resized(Size::square(size))
}

/// Applies the corruption to a copy of `image`; `source` is the texture of restoration samples
/// (another training image, or `image` itself).
pub fn corrupt(
    image: &ChwImage,
    corruption: &Corruption,
    source: &ChwImage,
    rng: &mut ChaCha8Rng,
) -> ChwImage {
    let mut out = image.clone();
    match *corruption {
        Corruption::None => {}
        Corruption::Restoration(ref config) => {
            out = restoration_sample(image, source, config, rng).input;
        }
        Corruption::Gaussian { sigma } => {
            for v in &mut out.data {
                let (u1, u2): (f32, f32) = (rng.random::<f32>().max(1e-7), rng.random());
                let n = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos();
                *v = (*v + sigma * n).clamp(0.0, 1.0);
            }
        }
        Corruption::Mask { patch, ratio } => {
            let plane = out.width * out.height;
            for by in (0..out.height).step_by(patch) {
                for bx in (0..out.width).step_by(patch) {
                    if rng.random::<f64>() >= ratio {
                        continue;
                    }
                    for c in 0..out.channels {
                        for y in by..(by + patch).min(out.height) {
                            let row = c * plane + y * out.width;
                            out.data[row + bx..row + (bx + patch).min(out.width)].fill(0.0);
                        }
                    }
                }
            }
        }
    }
    out
}

/// Seed of a sub-stream identified by `parts`.
pub fn stream_seed(seed: u64, parts: &[u64]) -> u64 {
    let mut h = seed ^ 0x5DEE_CE66_D1CE_4E5B;
    for &p in parts {
        h = (h ^ p).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 29;
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn ramp(w: usize, h: usize) -> ChwImage {
        let mut img = ChwImage::zeros(1, Size::new(w, h));
        for y in 0..h {
            for x in 0..w {
                img.data[y * w + x] = (x + y) as f32 / (w + h) as f32;
            }
        }
        img
    }

    #[test]
    fn augmented_samples_have_the_batch_size_and_are_seeded() {
        let img = ramp(120, 90);
        let cfg = AugmentConfig {
            rescale: (60, 120),
            input_sizes: vec![32],
            corruption: Corruption::None,
        };
        let a = augment(&img, 32, &cfg, &mut ChaCha8Rng::seed_from_u64(1));
        let b = augment(&img, 32, &cfg, &mut ChaCha8Rng::seed_from_u64(1));
        let c = augment(&img, 32, &cfg, &mut ChaCha8Rng::seed_from_u64(2));
        assert_eq!((a.width, a.height), (32, 32));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn whole_image_samples_are_the_full_frame_whatever_the_stream() {
        let img = ramp(120, 90);
        let cfg = AugmentConfig {
            rescale: (32, 32),
            input_sizes: vec![32],
            corruption: Corruption::None,
        };
        assert!(cfg.is_whole_image(32) && !cfg.is_whole_image(16));
        let a = augment(&img, 32, &cfg, &mut ChaCha8Rng::seed_from_u64(1));
        let b = augment(&img, 32, &cfg, &mut ChaCha8Rng::seed_from_u64(2));
        assert_eq!(a, b);
        assert_eq!(a, img.resized(Size::square(32)));
    }

    #[test]
    fn corruption_changes_the_input_only() {
        let img = ramp(16, 16);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let noisy = corrupt(&img, &Corruption::Gaussian { sigma: 0.1 }, &img, &mut rng);
        assert_ne!(noisy.data, img.data);
        let masked = corrupt(
            &img,
            &Corruption::Mask {
                patch: 4,
                ratio: 0.5,
            },
            &img,
            &mut rng,
        );
        let zeros = masked.data.iter().filter(|&&v| v == 0.0).count();
        assert!((16..256).contains(&zeros), "{zeros}");
    }
}

//! Training-time augmentation (SPEC §4) and the batch loader: random rescale (long side uniform in
//! a range), random crop, resize to the batch's input size; each batch draws its input size from a
//! list (multi-scale batches). Optional input corruption for denoising training (the target stays
//! the clean image). Batches are built on a background thread, samples in parallel, each from its
//! own seeded stream, so the result does not depend on thread timing.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::image_io::ChwImage;

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
            Corruption::Gaussian { sigma } if sigma.is_nan() || sigma <= 0.0 => Err(format!("gaussian sigma = {sigma} must be > 0")),
            Corruption::Mask { patch, ratio } if patch == 0 || !(ratio > 0.0 && ratio < 1.0) => {
                Err(format!("mask corruption patch = {patch}, ratio = {ratio}: need patch > 0 and 0 < ratio < 1"))
            }
            _ => Ok(()),
        }
    }
}

/// Resizes an image so its long side is `side` (aspect kept).
pub fn fit_long_side(image: &ChwImage, side: usize) -> ChwImage {
    let (w, h) = long_side_size(image.width, image.height, side);
    image.resized(w, h)
}

/// The (width, height) of a `width` x `height` image rescaled so that its long side is `side`
/// (aspect kept, each side at least 1).
pub fn long_side_size(width: usize, height: usize, side: usize) -> (usize, usize) {
    let scale = side as f64 / width.max(height) as f64;
    let w = ((width as f64 * scale).round() as usize).max(1);
    let h = ((height as f64 * scale).round() as usize).max(1);
    (w, h)
}

/// One augmented sample of `size` x `size` from `image` (already at the top of the rescale range).
pub fn augment(
    image: &ChwImage,
    size: usize,
    config: &AugmentConfig,
    rng: &mut ChaCha8Rng,
) -> ChwImage {
    let long = rng.random_range(config.rescale.0..=config.rescale.1) as usize;
    let scaled = fit_long_side(image, long);
    let crop = size.min(scaled.width).min(scaled.height);
    let x = rng.random_range(0..=scaled.width - crop);
    let y = rng.random_range(0..=scaled.height - crop);
    scaled.crop(x, y, crop, crop).resized(size, size)
}

/// Applies the corruption to a copy of `image`.
pub fn corrupt(image: &ChwImage, corruption: &Corruption, rng: &mut ChaCha8Rng) -> ChwImage {
    let mut out = image.clone();
    match *corruption {
        Corruption::None => {}
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

/// Which images make one batch, and at which input size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// Input side of the batch.
    pub size: usize,
    /// Indices into the training images.
    pub indices: Vec<usize>,
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

/// The batches of one epoch: a seeded shuffle cut into batches of `batch_size` (a last batch of
/// one image is dropped, since BatchNorm needs two), each with an input size drawn from the list.
pub fn plan_epoch(
    n_images: usize,
    batch_size: usize,
    input_sizes: &[usize],
    seed: u64,
    epoch: usize,
) -> Vec<BatchPlan> {
    let mut rng = ChaCha8Rng::seed_from_u64(stream_seed(seed, &[1, epoch as u64]));
    let mut order: Vec<usize> = (0..n_images).collect();
    order.shuffle(&mut rng);
    order
        .chunks(batch_size.max(1))
        .filter(|c| c.len() >= 2 || n_images == 1)
        .map(|c| BatchPlan {
            size: input_sizes[rng.random_range(0..input_sizes.len())],
            indices: c.to_vec(),
        })
        .collect()
}

/// A batch of inputs and targets, NCHW.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Number of images.
    pub n: usize,
    /// Channels.
    pub channels: usize,
    /// Side.
    pub size: usize,
    /// Model inputs (corrupted when corruption is on).
    pub input: Vec<f32>,
    /// Clean targets.
    pub target: Vec<f32>,
}

/// Builds the batch `index` of `epoch` (samples in parallel, each with its own stream).
pub fn make_batch(
    images: &[ChwImage],
    plan: &BatchPlan,
    config: &AugmentConfig,
    seed: u64,
    epoch: usize,
    index: usize,
) -> Batch {
    let samples: Vec<(ChwImage, ChwImage)> = plan
        .indices
        .par_iter()
        .enumerate()
        .map(|(k, &i)| {
            let mut rng = ChaCha8Rng::seed_from_u64(stream_seed(
                seed,
                &[2, epoch as u64, index as u64, k as u64],
            ));
            let clean = augment(&images[i], plan.size, config, &mut rng);
            let input = corrupt(&clean, &config.corruption, &mut rng);
            (input, clean)
        })
        .collect();
    let channels = images[plan.indices[0]].channels;
    let mut batch = Batch {
        n: samples.len(),
        channels,
        size: plan.size,
        input: Vec::with_capacity(samples.len() * channels * plan.size * plan.size),
        target: Vec::with_capacity(samples.len() * channels * plan.size * plan.size),
    };
    for (input, clean) in samples {
        batch.input.extend(input.data);
        batch.target.extend(clean.data);
    }
    batch
}

/// Builds the batches of an epoch on a background thread, at most two ahead of the consumer.
pub fn spawn_loader(
    images: Arc<Vec<ChwImage>>,
    plans: Vec<BatchPlan>,
    config: AugmentConfig,
    seed: u64,
    epoch: usize,
) -> Receiver<Batch> {
    let (tx, rx) = sync_channel(2);
    std::thread::spawn(move || {
        for (index, plan) in plans.iter().enumerate() {
            let batch = make_batch(&images, plan, &config, seed, epoch, index);
            if tx.send(batch).is_err() {
                break;
            }
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize) -> ChwImage {
        let mut img = ChwImage::zeros(1, h, w);
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
    fn epochs_cover_every_image_once_with_sizes_from_the_list() {
        let plans = plan_epoch(10, 4, &[16, 32], 7, 3);
        let mut seen: Vec<usize> = plans.iter().flat_map(|p| p.indices.clone()).collect();
        seen.sort();
        assert_eq!(seen, (0..8).chain(8..10).collect::<Vec<_>>());
        assert!(plans.iter().all(|p| [16, 32].contains(&p.size)));
        assert_eq!(plans, plan_epoch(10, 4, &[16, 32], 7, 3));
        assert_ne!(plans, plan_epoch(10, 4, &[16, 32], 7, 4));
        // A trailing single image is dropped (BatchNorm needs two).
        assert_eq!(
            plan_epoch(9, 4, &[16], 1, 0)
                .iter()
                .map(|p| p.indices.len())
                .sum::<usize>(),
            8
        );
    }

    #[test]
    fn corruption_changes_the_input_only() {
        let img = ramp(16, 16);
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let noisy = corrupt(&img, &Corruption::Gaussian { sigma: 0.1 }, &mut rng);
        assert_ne!(noisy.data, img.data);
        let masked = corrupt(
            &img,
            &Corruption::Mask {
                patch: 4,
                ratio: 0.5,
            },
            &mut rng,
        );
        let zeros = masked.data.iter().filter(|&&v| v == 0.0).count();
        assert!((16..256).contains(&zeros), "{zeros}");
        let loader = spawn_loader(
            Arc::new(vec![img.clone(), img.clone(), img]),
            plan_epoch(3, 2, &[8], 1, 0),
            AugmentConfig {
                rescale: (16, 16),
                input_sizes: vec![8],
                corruption: Corruption::Gaussian { sigma: 0.1 },
            },
            1,
            0,
        );
        let batch = loader.recv().unwrap();
        assert_eq!((batch.n, batch.channels, batch.size), (2, 1, 8));
        assert_ne!(batch.input, batch.target);
    }
}

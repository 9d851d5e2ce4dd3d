//! The batch loader of training (SPEC §4): each epoch is a seeded shuffle cut into batches, each
//! batch with an input size drawn from a list (multi-scale batches). Batches are built on a
//! background thread, samples in parallel, each from its own seeded stream, so the result does
//! not depend on thread timing.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::anomaly::restoration::{restoration_sample, RestorationConfig, RestorationSample};
use super::augment::{augment, corrupt, stream_seed, AugmentConfig, Corruption};
use crate::image::ChwImage;

/// Which images make one batch, and at which input size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchPlan {
    /// Input side of the batch.
    pub size: usize,
    /// Indices into the training images.
    pub indices: Vec<usize>,
}

/// The optimizer steps of an epoch of `n_images` images ([`plan_epoch`]'s batch count).
pub fn steps_per_epoch(n_images: usize, batch_size: usize) -> usize {
    let batch = batch_size.max(1);
    (0..n_images)
        .step_by(batch)
        .filter(|start| batch.min(n_images - start) >= 2 || n_images == 1)
        .count()
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
            let input = match config.corruption {
                // The texture of a restoration sample: another training image, as it would be
                // sampled.
                Corruption::Restoration(_) => {
                    let j = rng.random_range(0..images.len());
                    let source = augment(&images[j], plan.size, config, &mut rng);
                    corrupt(&clean, &config.corruption, &source, &mut rng)
                }
                _ => corrupt(&clean, &config.corruption, &clean, &mut rng),
            };
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

/// A batch of synthetic-anomaly inputs and their masks, NCHW (the discriminative head's).
#[derive(Debug, Clone)]
pub struct MaskedBatch {
    /// Number of images.
    pub n: usize,
    /// Channels.
    pub channels: usize,
    /// Side.
    pub size: usize,
    /// Inputs `[n, channels, size, size]`: augmented training images, about half with a
    /// restoration anomaly pasted in.
    pub input: Vec<f32>,
    /// Anomaly masks `[n, 1, size, size]`, 1 = altered pixel.
    pub mask: Vec<f32>,
}

/// Builds batch `index` of `epoch` for the discriminative head: each image augmented as in
/// [`make_batch`], then given a DRAEM restoration anomaly (Perlin mask, texture from another
/// training image) with its mask. `stream` keeps these draws apart from the autoencoder's.
#[allow(clippy::too_many_arguments)]
pub fn make_masked_batch(
    images: &[ChwImage],
    plan: &BatchPlan,
    config: &AugmentConfig,
    anomaly: &RestorationConfig,
    seed: u64,
    epoch: usize,
    index: usize,
) -> MaskedBatch {
    let samples: Vec<RestorationSample> = plan
        .indices
        .par_iter()
        .enumerate()
        .map(|(k, &i)| {
            let mut rng = ChaCha8Rng::seed_from_u64(stream_seed(
                seed,
                &[3, epoch as u64, index as u64, k as u64],
            ));
            let clean = augment(&images[i], plan.size, config, &mut rng);
            let j = rng.random_range(0..images.len());
            let source = augment(&images[j], plan.size, config, &mut rng);
            restoration_sample(&clean, &source, anomaly, &mut rng)
        })
        .collect();
    let channels = images[plan.indices[0]].channels;
    let plane = plan.size * plan.size;
    let mut batch = MaskedBatch {
        n: samples.len(),
        channels,
        size: plan.size,
        input: Vec::with_capacity(samples.len() * channels * plane),
        mask: Vec::with_capacity(samples.len() * plane),
    };
    for sample in samples {
        batch.input.extend(sample.input.data);
        batch.mask.extend(sample.mask);
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
    use crate::image::Size;

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
        for n in 0..30 {
            for batch in 1..10 {
                assert_eq!(
                    steps_per_epoch(n, batch),
                    plan_epoch(n, batch, &[16], 1, 0).len(),
                    "{n} images, batch {batch}"
                );
            }
        }
    }

    #[test]
    fn the_loader_corrupts_the_input_only() {
        let mut img = ChwImage::zeros(1, Size::square(16));
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = (i % 16 + i / 16) as f32 / 32.0;
        }
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

    #[test]
    fn masked_batches_mark_what_was_altered() {
        let mut images = Vec::new();
        for shade in [0.2f32, 0.8] {
            let mut img = ChwImage::zeros(3, Size::square(32));
            for (i, v) in img.data.iter_mut().enumerate() {
                *v = shade + 0.1 * ((i % 32) as f32 / 32.0);
            }
            images.push(img);
        }
        let config = AugmentConfig {
            rescale: (32, 32),
            input_sizes: vec![32],
            corruption: Corruption::None,
        };
        let plan = BatchPlan {
            size: 32,
            indices: vec![0, 1, 0, 1, 0, 1, 0, 1],
        };
        let anomaly = RestorationConfig::default();
        let batch = make_masked_batch(&images, &plan, &config, &anomaly, 5, 1, 0);
        assert_eq!((batch.n, batch.channels, batch.size), (8, 3, 32));
        assert_eq!(batch.mask.len(), 8 * 32 * 32);
        let marked = batch.mask.iter().filter(|&&m| m > 0.0).count();
        assert!(marked > 0, "no sample of 8 got an anomaly");
        let again = make_masked_batch(&images, &plan, &config, &anomaly, 5, 1, 0);
        assert_eq!(again.input, batch.input);
        // Unmasked pixels keep the clean (whole-image) values.
        for (s, &i) in plan.indices.iter().enumerate() {
            for p in 0..32 * 32 {
                if batch.mask[s * 1024 + p] == 0.0 {
                    assert_eq!(batch.input[s * 3 * 1024 + p], images[i].data[p]);
                }
            }
        }
    }
}

//! Per-scale error maps: windows of the working-resolution images go through the model in
//! batches, their per-pixel errors (squared error, 1 − SSIM, MSGMS; see [`super::similarity`])
//! are stitched back into one map per scale and error kind.

use burn::prelude::*;
use rayon::prelude::*;

use super::similarity::{msgms_error_map, ssim_error_map, MSGMS_SCALES};
use super::window::WindowGrid;
use super::{ErrorKind, ScoringConfig};
use crate::error::{Error, Result};
use crate::image::{ChwImage, Size};
use crate::model::unet::UNetConfig;
use crate::model::Networks;

/// [`scale_maps`] with the images split over rayon's threads, each running its own forward
/// passes: the CPU backend runs one forward pass on about one core, so this is what uses the
/// others. GPU backends get one call (their parallelism is inside the batch).
pub fn scale_maps_parallel(
    model: &Networks,
    model_config: &UNetConfig,
    config: &ScoringConfig,
    images: &[ChwImage],
    device: &Device,
) -> Result<Vec<Vec<Vec<f32>>>> {
    scale_maps_of_kinds(
        model,
        model_config,
        config,
        config.error.kinds(),
        images,
        device,
    )
}

/// [`scale_maps_parallel`] with the error `kinds` given instead of `config.error`'s: per image,
/// every window scale's maps of each of `kinds`, in that order (one model pass serves them all).
pub fn scale_maps_of_kinds(
    model: &Networks,
    model_config: &UNetConfig,
    config: &ScoringConfig,
    kinds: &[ErrorKind],
    images: &[ChwImage],
    device: &Device,
) -> Result<Vec<Vec<Vec<f32>>>> {
    let threads = rayon::current_num_threads();
    if !is_cpu(device) || threads < 2 || images.len() < 2 {
        return scale_maps(model, model_config, config, kinds, images, device);
    }
    let per_thread = images.len().div_ceil(threads);
    let parts: Vec<Vec<Vec<Vec<f32>>>> = images
        .par_chunks(per_thread)
        .map(|part| scale_maps(model, model_config, config, kinds, part, device))
        .collect::<Result<_>>()?;
    Ok(parts.into_iter().flatten().collect())
}

fn is_cpu(device: &Device) -> bool {
    *device == Device::flex()
}

/// Error maps of images already at the working resolution: `[image][map]`, for every window
/// scale of `config` the maps of each of `kinds` (with `config.error.kinds()`: the order of
/// [`ScoringConfig::map_specs`]), each row-major at the image's size.
pub fn scale_maps(
    model: &Networks,
    model_config: &UNetConfig,
    config: &ScoringConfig,
    kinds: &[ErrorKind],
    images: &[ChwImage],
    device: &Device,
) -> Result<Vec<Vec<Vec<f32>>>> {
    let head = match &model.head {
        Some(head) => Some(head),
        None if kinds.contains(&ErrorKind::Head) => {
            return Err(Error::Unusable(
                "the error map `head` needs a discriminative head, and this model has none (train it with --head)".into(),
            ))
        }
        None => None,
    };
    // Both networks halve the sides `depth` times: pad to the larger multiple (powers of two).
    let multiple = model_config
        .side_multiple()
        .max(head.map_or(1, |h| h.side_multiple()));
    let mut out: Vec<Vec<Vec<f32>>> =
        vec![Vec::with_capacity(config.windows.len() * kinds.len()); images.len()];
    for (s, &window) in config.windows.iter().enumerate() {
        let grids: Vec<WindowGrid> = images
            .iter()
            .map(|img| WindowGrid::new(img.size(), window, config.stride(s), config.padding))
            .collect();
        // One canvas per image and error kind.
        let mut canvases: Vec<Vec<_>> = grids
            .iter()
            .map(|g| kinds.iter().map(|_| g.canvas()).collect())
            .collect();
        // Every window of this scale, grouped by extracted size so that a batch is one tensor.
        let mut jobs: Vec<(usize, usize)> = grids
            .iter()
            .enumerate()
            .flat_map(|(i, g)| (0..g.windows.len()).map(move |w| (i, w)))
            .collect();
        jobs.sort_by_key(|&(i, w)| {
            let q = grids[i].windows[w];
            (q.height, q.width)
        });
        let mut start = 0;
        while start < jobs.len() {
            let (i0, w0) = jobs[start];
            let q0 = grids[i0].windows[w0];
            let mut end = start + 1;
            while end < jobs.len() && end - start < config.batch_size && {
                let q = grids[jobs[end].0].windows[jobs[end].1];
                (q.height, q.width) == (q0.height, q0.width)
            } {
                end += 1;
            }
            let batch = &jobs[start..end];
            let (ph, pw) = (
                q0.height.next_multiple_of(multiple),
                q0.width.next_multiple_of(multiple),
            );
            let channels = images[i0].channels;
            let mut data = Vec::with_capacity(batch.len() * channels * ph * pw);
            for &(i, w) in batch {
                let grid = &grids[i];
                let extracted = grid.extract(&images[i].data, channels, &grid.windows[w]);
                data.extend(pad_replicate(
                    &extracted, channels, q0.height, q0.width, ph, pw,
                ));
            }
            let x = Tensor::<4>::from_data(
                TensorData::new(data, [batch.len(), channels, ph, pw]),
                device,
            );
            let recon = model.unet.forward(x.clone());
            // The head's anomaly probability, [B, 1, ph, pw].
            let head_map = match head {
                Some(h) if kinds.contains(&ErrorKind::Head) => {
                    Some(read_f32(h.probability(x.clone(), recon.clone()))?)
                }
                _ => None,
            };
            let squared = if kinds.contains(&ErrorKind::Squared) {
                let err = (recon.clone() - x.clone()).powi_scalar(2).mean_dim(1);
                Some(read_f32(err)?)
            } else {
                None
            };
            // Structure-aware maps are computed per window on the CPU from both images.
            let structural = kinds
                .iter()
                .any(|k| matches!(k, ErrorKind::Ssim | ErrorKind::Msgms));
            let (xs, ys) = if structural {
                (read_f32(x)?, read_f32(recon)?)
            } else {
                (Vec::new(), Vec::new())
            };
            let n = channels * ph * pw;
            let padded = Size::new(pw, ph);
            let ssim = kinds.contains(&ErrorKind::Ssim).then(|| {
                per_window(&xs, &ys, n, |a, b| {
                    ssim_error_map(a, b, channels, padded, config.ssim_sigma)
                })
            });
            let msgms = kinds.contains(&ErrorKind::Msgms).then(|| {
                per_window(&xs, &ys, n, |a, b| {
                    msgms_error_map(a, b, channels, padded, MSGMS_SCALES)
                })
            });
            for (j, &(i, w)) in batch.iter().enumerate() {
                let q = grids[i].windows[w];
                let weights = grids[i].taper(&q, config.taper, 1e-3);
                for (kind, canvas) in kinds.iter().zip(&mut canvases[i]) {
                    let all = match kind {
                        ErrorKind::Squared => squared.as_ref(),
                        ErrorKind::Ssim => ssim.as_ref(),
                        ErrorKind::Msgms => msgms.as_ref(),
                        ErrorKind::Head => head_map.as_ref(),
                    }
                    .expect("computed above");
                    let map = &all[j * ph * pw..(j + 1) * ph * pw];
                    let cropped: Vec<f32> = (0..q.height)
                        .flat_map(|y| map[y * pw..y * pw + q.width].iter().copied())
                        .collect();
                    canvas.add_weighted(&q, &cropped, Some(&weights));
                }
            }
            start = end;
        }
        for (maps, image_canvases) in out.iter_mut().zip(&canvases) {
            maps.extend(image_canvases.iter().map(|c| c.finish()));
        }
    }
    Ok(out)
}

/// `f` applied to each window pair of two batches of `n` values per window, concatenated.
fn per_window(
    xs: &[f32],
    ys: &[f32],
    n: usize,
    f: impl Fn(&[f32], &[f32]) -> Vec<f32>,
) -> Vec<f32> {
    xs.chunks(n)
        .zip(ys.chunks(n))
        .flat_map(|(a, b)| f(a, b))
        .collect()
}

fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::framework("reading a tensor", e))
}

/// Pads a CHW buffer of `h` x `w` to `ph` x `pw` by repeating the last row and column.
fn pad_replicate(
    data: &[f32],
    channels: usize,
    h: usize,
    w: usize,
    ph: usize,
    pw: usize,
) -> Vec<f32> {
    if (h, w) == (ph, pw) {
        return data.to_vec();
    }
    let mut out = Vec::with_capacity(channels * ph * pw);
    for c in 0..channels {
        let plane = &data[c * h * w..(c + 1) * h * w];
        for y in 0..ph {
            let row = &plane[y.min(h - 1) * w..(y.min(h - 1) + 1) * w];
            out.extend_from_slice(row);
            out.extend(std::iter::repeat_n(row[w - 1], pw - w));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::head::HeadConfig;
    use crate::model::unet::Preset;
    use crate::score::ErrorMaps;
    use rand::{Rng, SeedableRng};

    fn random_image(channels: usize, h: usize, w: usize, seed: u64) -> ChwImage {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        ChwImage {
            channels,
            height: h,
            width: w,
            data: (0..channels * h * w).map(|_| rng.random()).collect(),
        }
    }

    #[test]
    fn whole_image_scale_is_the_plain_reconstruction_error() {
        let device = Device::flex();
        let model_config = Preset::Tiny.config(3);
        let model = Networks {
            unet: model_config.init_seeded(&device, 3),
            head: None,
        };
        let img = random_image(3, 32, 32, 1);
        let mut config = ScoringConfig::for_working_size(32);
        config.windows = vec![32];
        let maps = scale_maps(
            &model,
            &model_config,
            &config,
            config.error.kinds(),
            std::slice::from_ref(&img),
            &device,
        )
        .unwrap();
        let x = Tensor::<4>::from_data(TensorData::new(img.data.clone(), [1, 3, 32, 32]), &device);
        let direct = (model.unet.forward(x.clone()) - x)
            .powi_scalar(2)
            .mean_dim(1)
            .into_data();
        let direct = direct.as_slice::<f32>().unwrap();
        assert_eq!(maps[0][0].len(), 32 * 32);
        for (a, b) in maps[0][0].iter().zip(direct) {
            assert!((a - b).abs() < 1e-6, "{a} {b}");
        }
    }

    #[test]
    fn windows_of_any_size_give_maps_of_the_image_size() {
        // 30 x 21 images, tiny model (multiple 8): windows 12 and 30 (clipped to 21 on the short
        // side) are padded to multiples of 8 and cropped back; a batch of 3 splits the windows
        // over several forward passes.
        let device = Device::flex();
        let model_config = Preset::Tiny.config(1);
        let model = Networks {
            unet: model_config.init_seeded(&device, 3),
            head: None,
        };
        let images = [random_image(1, 21, 30, 2), random_image(1, 30, 21, 3)];
        let mut config = ScoringConfig::for_working_size(30);
        config.windows = vec![12, 30];
        config.batch_size = 3;
        config.error = ErrorMaps::Both;
        config.validate(&model_config).unwrap();
        let maps = scale_maps(
            &model,
            &model_config,
            &config,
            config.error.kinds(),
            &images,
            &device,
        )
        .unwrap();
        for (img, m) in images.iter().zip(&maps) {
            // 2 scales x (squared, SSIM).
            assert_eq!(m.len(), 4);
            for scale in m {
                assert_eq!(scale.len(), img.width * img.height);
                assert!(scale.iter().all(|v| v.is_finite() && *v >= 0.0));
            }
        }
        // Batching does not change the result.
        config.batch_size = 64;
        assert_eq!(
            scale_maps(
                &model,
                &model_config,
                &config,
                config.error.kinds(),
                &images,
                &device
            )
            .unwrap(),
            maps
        );
        // MSGMS maps: one per scale, in [0, 1].
        config.error = ErrorMaps::Msgms;
        for m in scale_maps(
            &model,
            &model_config,
            &config,
            config.error.kinds(),
            &images,
            &device,
        )
        .unwrap()
        {
            assert_eq!(m.len(), 2);
            assert!(m.iter().flatten().all(|v| (0.0..=1.0).contains(v)));
        }
    }

    #[test]
    fn head_maps_are_probabilities_and_need_a_head() {
        // A head deeper than the autoencoder (multiple 16 against 8): windows are padded to 16.
        let device = Device::flex();
        let model_config = Preset::Tiny.config(3);
        let mut model = Networks {
            unet: model_config.init_seeded(&device, 3),
            head: None,
        };
        let images = [random_image(3, 24, 40, 4)];
        let mut config = ScoringConfig::for_working_size(40);
        config.windows = vec![24, 40];
        config.error = ErrorMaps::HeadSsim;
        let err = scale_maps(
            &model,
            &model_config,
            &config,
            config.error.kinds(),
            &images,
            &device,
        )
        .unwrap_err();
        assert!(err.to_string().contains("--head"), "{err}");
        let head = HeadConfig {
            widths: vec![4, 4, 4, 4],
            bottleneck: 4,
        };
        model.head = Some(head.init_seeded(3, &device, 1));
        let maps = scale_maps(
            &model,
            &model_config,
            &config,
            config.error.kinds(),
            &images,
            &device,
        )
        .unwrap();
        // 2 scales x (head, SSIM).
        assert_eq!(maps[0].len(), 4);
        for m in &maps[0] {
            assert_eq!(m.len(), 24 * 40);
        }
        assert!(maps[0][0].iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(maps[0][0].iter().any(|&v| v != maps[0][0][0]));
    }
}

//! Per-scale error maps: windows of the working-resolution images go through the model in
//! batches, their per-pixel errors (squared error, 1 − SSIM) are stitched back into one map per
//! scale and error kind.

use burn::prelude::*;
use rayon::prelude::*;

use super::window::WindowGrid;
use super::{ErrorKind, ScoringConfig};
use crate::error::{Error, Result};
use crate::image::filter::gaussian_blur;
use crate::image::{ChwImage, Size};
use crate::model::unet::{UNet, UNetConfig};

/// [`scale_maps`] with the images split over rayon's threads, each running its own forward
/// passes: the CPU backend runs one forward pass on about one core, so this is what uses the
/// others. GPU backends get one call (their parallelism is inside the batch).
pub fn scale_maps_parallel(
    model: &UNet,
    model_config: &UNetConfig,
    config: &ScoringConfig,
    images: &[ChwImage],
    device: &Device,
) -> Result<Vec<Vec<Vec<f32>>>> {
    let threads = rayon::current_num_threads();
    if !is_cpu(device) || threads < 2 || images.len() < 2 {
        return scale_maps(model, model_config, config, images, device);
    }
    let per_thread = images.len().div_ceil(threads);
    let parts: Vec<Vec<Vec<Vec<f32>>>> = images
        .par_chunks(per_thread)
        .map(|part| scale_maps(model, model_config, config, part, device))
        .collect::<Result<_>>()?;
    Ok(parts.into_iter().flatten().collect())
}

fn is_cpu(device: &Device) -> bool {
    *device == Device::flex()
}

/// Error maps of images already at the working resolution: `[image][map]`, maps in the order
/// of [`ScoringConfig::map_specs`], each row-major at the image's size.
pub fn scale_maps(
    model: &UNet,
    model_config: &UNetConfig,
    config: &ScoringConfig,
    images: &[ChwImage],
    device: &Device,
) -> Result<Vec<Vec<Vec<f32>>>> {
    let multiple = model_config.side_multiple();
    let kinds = config.error.kinds();
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
            let recon = model.forward(x.clone());
            let squared = if kinds.contains(&ErrorKind::Squared) {
                let err = (recon.clone() - x.clone()).powi_scalar(2).mean_dim(1);
                Some(read_f32(err)?)
            } else {
                None
            };
            let ssim = if kinds.contains(&ErrorKind::Ssim) {
                let (xs, ys) = (read_f32(x)?, read_f32(recon)?);
                let n = channels * ph * pw;
                Some(
                    xs.chunks(n)
                        .zip(ys.chunks(n))
                        .flat_map(|(a, b)| ssim_error_map(a, b, channels, ph, pw))
                        .collect::<Vec<f32>>(),
                )
            } else {
                None
            };
            for (j, &(i, w)) in batch.iter().enumerate() {
                let q = grids[i].windows[w];
                let weights = grids[i].taper(&q, config.taper, 1e-3);
                for (kind, canvas) in kinds.iter().zip(&mut canvases[i]) {
                    let all = match kind {
                        ErrorKind::Squared => squared.as_ref(),
                        ErrorKind::Ssim => ssim.as_ref(),
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

fn read_f32<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data()
        .try_into_vec::<f32>()
        .map_err(|e| Error::framework("reading a tensor", e))
}

/// Per-pixel `1 − SSIM` of two CHW buffers (`h` x `w`), averaged over channels: Gaussian window
/// σ 1.5 (truncated at 3σ, reflected borders), K1 0.01, K2 0.03, data range 1.
pub fn ssim_error_map(x: &[f32], y: &[f32], channels: usize, h: usize, w: usize) -> Vec<f32> {
    const SIGMA: f64 = 1.5;
    let (c1, c2) = (0.01f32 * 0.01, 0.03f32 * 0.03);
    let plane = h * w;
    let mut out = vec![0.0f32; plane];
    for c in 0..channels {
        let (a, b) = (
            &x[c * plane..(c + 1) * plane],
            &y[c * plane..(c + 1) * plane],
        );
        let prod = |f: &dyn Fn(f32, f32) -> f32| -> Vec<f32> {
            a.iter().zip(b).map(|(&p, &q)| f(p, q)).collect()
        };
        let size = Size::new(w, h);
        let mx = gaussian_blur(a, size, SIGMA);
        let my = gaussian_blur(b, size, SIGMA);
        let sxx = gaussian_blur(&prod(&|p, _| p * p), size, SIGMA);
        let syy = gaussian_blur(&prod(&|_, q| q * q), size, SIGMA);
        let sxy = gaussian_blur(&prod(&|p, q| p * q), size, SIGMA);
        for i in 0..plane {
            let (mx, my) = (mx[i], my[i]);
            let vx = sxx[i] - mx * mx;
            let vy = syy[i] - my * my;
            let cov = sxy[i] - mx * my;
            let ssim = ((2.0 * mx * my + c1) * (2.0 * cov + c2))
                / ((mx * mx + my * my + c1) * (vx + vy + c2));
            out[i] += (1.0 - ssim) / channels as f32;
        }
    }
    out
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
        let model = model_config.init_seeded(&device, 3);
        let img = random_image(3, 32, 32, 1);
        let mut config = ScoringConfig::for_working_size(32);
        config.windows = vec![32];
        let maps = scale_maps(
            &model,
            &model_config,
            &config,
            std::slice::from_ref(&img),
            &device,
        )
        .unwrap();
        let x = Tensor::<4>::from_data(TensorData::new(img.data.clone(), [1, 3, 32, 32]), &device);
        let direct = (model.forward(x.clone()) - x)
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
        let model = model_config.init_seeded(&device, 3);
        let images = [random_image(1, 21, 30, 2), random_image(1, 30, 21, 3)];
        let mut config = ScoringConfig::for_working_size(30);
        config.windows = vec![12, 30];
        config.batch_size = 3;
        config.error = ErrorMaps::Both;
        config.validate(&model_config).unwrap();
        let maps = scale_maps(&model, &model_config, &config, &images, &device).unwrap();
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
            scale_maps(&model, &model_config, &config, &images, &device).unwrap(),
            maps
        );
    }

    /// Expected values: scikit-image `structural_similarity(gaussian_weights=True, sigma=1.5,
    /// use_sample_covariance=False, data_range=1, full=True)`, 1 − S at pixels at least 5 px
    /// from the border (where the border policies of the two implementations do not matter).
    #[test]
    #[allow(clippy::approx_constant)] // 0.318 is a pixel value, not 1/π
    fn ssim_error_map_matches_scikit_image() {
        let x: [f32; 256] = [
            0.805, 0.808, 0.515, 0.286, 0.054, 0.383, 0.408, 0.045, 0.049, 0.999, 0.652, 0.235,
            0.435, 0.974, 0.898, 0.844, 0.392, 0.493, 0.677, 0.061, 0.556, 0.271, 0.880, 0.064,
            0.679, 0.870, 0.227, 0.895, 0.872, 0.019, 0.707, 0.001, 0.503, 0.437, 0.203, 0.325,
            0.806, 0.316, 0.149, 0.699, 0.449, 0.799, 0.236, 0.320, 0.800, 0.507, 0.506, 0.236,
            0.015, 0.933, 0.086, 0.845, 0.368, 0.951, 0.399, 0.936, 0.556, 0.240, 0.741, 0.674,
            0.684, 0.464, 0.222, 0.641, 0.107, 0.692, 0.635, 0.377, 0.799, 0.194, 0.390, 0.798,
            0.380, 0.713, 0.613, 0.941, 0.992, 0.724, 0.809, 0.153, 0.713, 0.848, 0.401, 0.553,
            0.479, 0.959, 0.317, 0.402, 0.001, 0.420, 0.631, 0.935, 0.924, 0.327, 0.989, 0.188,
            0.823, 0.157, 0.405, 0.073, 0.858, 0.829, 0.140, 0.527, 0.258, 0.492, 0.553, 0.106,
            0.864, 0.279, 0.447, 0.057, 0.003, 0.195, 0.342, 0.928, 0.890, 0.481, 0.455, 0.667,
            0.859, 0.337, 0.794, 0.399, 0.594, 0.737, 0.501, 0.691, 0.697, 0.006, 0.039, 0.149,
            0.214, 0.203, 0.049, 0.217, 0.601, 0.886, 0.350, 0.366, 0.417, 0.680, 0.785, 0.941,
            0.376, 0.707, 0.342, 0.824, 0.231, 0.871, 0.505, 0.725, 0.535, 0.316, 0.494, 0.050,
            0.043, 0.530, 0.477, 0.833, 0.020, 0.557, 0.491, 0.598, 0.730, 0.525, 0.563, 0.492,
            0.615, 0.248, 0.553, 0.672, 0.191, 0.990, 0.746, 0.955, 0.294, 0.443, 0.261, 0.047,
            0.017, 0.247, 0.861, 0.164, 0.690, 0.249, 0.066, 0.192, 0.678, 0.502, 0.549, 0.453,
            0.274, 0.488, 0.922, 0.201, 0.733, 0.251, 0.193, 0.324, 0.093, 0.935, 0.365, 0.176,
            0.000, 0.060, 0.215, 0.418, 0.602, 0.981, 0.890, 0.242, 0.612, 0.922, 0.102, 0.854,
            0.396, 0.782, 0.323, 0.626, 0.507, 0.104, 0.760, 0.823, 0.483, 0.388, 0.947, 0.374,
            0.880, 0.419, 0.374, 0.361, 0.060, 0.277, 0.229, 0.062, 0.542, 0.442, 0.025, 0.156,
            0.919, 0.134, 0.373, 0.951, 0.113, 0.410, 0.801, 0.019, 0.068, 0.930, 0.684, 0.261,
            0.480, 0.249, 0.892, 0.950,
        ];
        let y: [f32; 256] = [
            0.735, 0.742, 0.572, 0.345, 0.246, 0.569, 0.674, 0.206, 0.000, 0.988, 0.751, 0.173,
            0.545, 1.000, 0.738, 0.490, 0.631, 0.497, 0.819, 0.000, 0.903, 0.419, 0.855, 0.000,
            0.702, 0.837, 0.171, 0.671, 1.000, 0.011, 0.722, 0.020, 0.031, 0.542, 0.137, 0.267,
            0.820, 0.122, 0.318, 0.560, 0.268, 0.627, 0.268, 0.469, 0.681, 0.205, 0.718, 0.023,
            0.254, 0.922, 0.000, 0.717, 0.460, 1.000, 0.359, 1.000, 0.973, 0.198, 0.511, 0.463,
            0.406, 0.336, 0.077, 0.376, 0.213, 0.170, 0.371, 0.780, 1.000, 0.299, 0.449, 0.447,
            0.276, 0.815, 0.453, 0.096, 0.845, 0.583, 0.666, 0.144, 0.647, 1.000, 0.136, 0.519,
            0.851, 0.967, 0.350, 0.485, 0.360, 0.103, 0.889, 0.151, 0.848, 0.017, 0.896, 0.000,
            0.490, 0.199, 0.396, 0.000, 0.668, 0.721, 0.729, 0.424, 0.495, 0.677, 0.017, 0.490,
            0.936, 0.146, 0.324, 0.144, 0.000, 0.186, 0.000, 0.388, 0.957, 0.547, 0.459, 0.429,
            0.001, 0.011, 0.490, 0.456, 0.473, 0.837, 0.541, 0.745, 0.876, 0.000, 0.000, 0.000,
            0.139, 0.536, 0.335, 0.116, 0.364, 0.673, 0.820, 0.764, 0.492, 0.998, 0.646, 0.932,
            0.238, 0.770, 0.126, 1.000, 0.156, 0.562, 0.863, 0.919, 0.639, 0.423, 0.422, 0.005,
            0.188, 0.714, 0.664, 0.876, 0.000, 0.519, 0.713, 0.886, 0.662, 0.430, 0.813, 0.637,
            0.754, 0.000, 0.478, 0.569, 0.233, 0.653, 1.000, 1.000, 0.381, 0.206, 0.256, 0.314,
            0.000, 0.308, 1.000, 0.026, 0.853, 0.183, 0.312, 0.298, 0.723, 0.904, 0.715, 0.715,
            0.036, 0.359, 1.000, 0.382, 0.722, 0.407, 0.000, 0.367, 0.000, 1.000, 0.268, 0.048,
            0.011, 0.423, 0.013, 0.298, 0.816, 0.896, 1.000, 0.287, 0.630, 0.993, 0.450, 0.985,
            0.499, 0.832, 0.011, 0.449, 0.804, 0.268, 0.861, 0.950, 0.374, 0.456, 0.767, 0.452,
            0.737, 0.376, 0.465, 0.296, 0.190, 0.368, 0.301, 0.327, 0.247, 0.123, 0.148, 0.344,
            1.000, 0.285, 0.539, 0.774, 0.264, 0.545, 0.590, 0.000, 0.046, 0.988, 0.095, 0.275,
            0.526, 0.214, 0.945, 1.000,
        ];
        let e = ssim_error_map(&x, &y, 1, 16, 16);
        for (yy, xx, expected) in [
            (5, 5, 0.3177518363944848),
            (7, 8, 0.861988461642722),
            (10, 10, 0.26007910810726875),
            (6, 9, 0.866342968867172),
            (5, 10, 0.7950722093365836),
        ] {
            let got = f64::from(e[yy * 16 + xx]);
            assert!(
                (got - expected).abs() < 1e-4,
                "({yy},{xx}): {got} vs {expected}"
            );
        }
        // Identical images: no error; two channels average.
        assert!(ssim_error_map(&x, &x, 1, 16, 16)
            .iter()
            .all(|v| v.abs() < 1e-5));
        let two: Vec<f32> = x.iter().chain(&x).copied().collect();
        let other: Vec<f32> = y.iter().chain(&x).copied().collect();
        let mixed = ssim_error_map(&two, &other, 2, 16, 16);
        assert!((mixed[5 * 16 + 5] - e[5 * 16 + 5] / 2.0).abs() < 1e-5);
    }
}

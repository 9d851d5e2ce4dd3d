//! Structure-aware error maps between an image and its reconstruction (SPEC §8): contrast-
//! normalised, so a bright rim and a dark interior weigh alike, unlike the squared error.
//!
//! - `1 − SSIM`: local structural similarity with a Gaussian window (Wang et al. 2004); the
//!   window is tied to the working resolution by the scoring settings.
//! - MSGMS: multi-scale gradient-magnitude similarity (RIAD, Zavrtanik et al. 2021; DRAEM's
//!   reconstruction-only score): Prewitt gradient magnitudes g₁, g₂ (kernels / 3),
//!   GMS = (2 g₁g₂ + c) / (g₁² + g₂² + c) with c = 0.0026, per channel then averaged; `1 − GMS`
//!   at the full size and after each 2×2 average pooling, each upsampled back (bilinear) and
//!   averaged over the scales.

use crate::image::filter::gaussian_blur;
use crate::image::{ChwImage, Size};

/// Scales of the MSGMS map (the full size and 3 halvings, as RIAD).
pub const MSGMS_SCALES: usize = 4;

/// Stabilising constant of the gradient-magnitude similarity (RIAD, DRAEM).
pub const GMS_C: f32 = 0.0026;

/// Per-pixel `1 − SSIM` of two CHW buffers of `size`, averaged over channels: Gaussian window of
/// σ `sigma` (truncated at 3σ, reflected borders; σ 1.5 is the classic 11×11 window), K1 0.01,
/// K2 0.03, data range 1.
pub fn ssim_error_map(x: &[f32], y: &[f32], channels: usize, size: Size, sigma: f64) -> Vec<f32> {
    let (w, h) = (size.width, size.height);
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
        let mx = gaussian_blur(a, size, sigma);
        let my = gaussian_blur(b, size, sigma);
        let sxx = gaussian_blur(&prod(&|p, _| p * p), size, sigma);
        let syy = gaussian_blur(&prod(&|_, q| q * q), size, sigma);
        let sxy = gaussian_blur(&prod(&|p, q| p * q), size, sigma);
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

/// Prewitt gradient magnitude of a single-channel map (kernels divided by 3, replicated borders).
fn prewitt_magnitude(plane: &[f32], size: Size) -> Vec<f32> {
    let (w, h) = (size.width as isize, size.height as isize);
    let at = |x: isize, y: isize| plane[(y.clamp(0, h - 1) * w + x.clamp(0, w - 1)) as usize];
    let mut out = Vec::with_capacity(plane.len());
    for y in 0..h {
        for x in 0..w {
            let gx = (at(x + 1, y - 1) + at(x + 1, y) + at(x + 1, y + 1)
                - at(x - 1, y - 1)
                - at(x - 1, y)
                - at(x - 1, y + 1))
                / 3.0;
            let gy = (at(x - 1, y + 1) + at(x, y + 1) + at(x + 1, y + 1)
                - at(x - 1, y - 1)
                - at(x, y - 1)
                - at(x + 1, y - 1))
                / 3.0;
            out.push((gx * gx + gy * gy).sqrt());
        }
    }
    out
}

/// `1 − GMS` of two CHW buffers of `size`, averaged over channels.
fn gms_error(x: &[f32], y: &[f32], channels: usize, size: Size) -> Vec<f32> {
    let plane = size.area();
    let mut out = vec![0.0f32; plane];
    for c in 0..channels {
        let gx = prewitt_magnitude(&x[c * plane..(c + 1) * plane], size);
        let gy = prewitt_magnitude(&y[c * plane..(c + 1) * plane], size);
        for ((o, a), b) in out.iter_mut().zip(&gx).zip(&gy) {
            let gms = (2.0 * a * b + GMS_C) / (a * a + b * b + GMS_C);
            *o += (1.0 - gms) / channels as f32;
        }
    }
    out
}

/// 2×2 average pooling of a CHW buffer (an odd last row or column is dropped).
fn pool2(data: &[f32], channels: usize, size: Size) -> (Vec<f32>, Size) {
    let half = Size::new(size.width / 2, size.height / 2);
    let mut out = Vec::with_capacity(channels * half.area());
    for c in 0..channels {
        let p = &data[c * size.area()..(c + 1) * size.area()];
        for y in 0..half.height {
            for x in 0..half.width {
                let i = 2 * y * size.width + 2 * x;
                out.push((p[i] + p[i + 1] + p[i + size.width] + p[i + size.width + 1]) / 4.0);
            }
        }
    }
    (out, half)
}

/// Per-pixel MSGMS error `mean over scales of (1 − GMS)` of two CHW buffers of `size`, over
/// `scales` scales (fewer when the image becomes smaller than 3 px).
pub fn msgms_error_map(
    x: &[f32],
    y: &[f32],
    channels: usize,
    size: Size,
    scales: usize,
) -> Vec<f32> {
    let mut total = vec![0.0f32; size.area()];
    let (mut a, mut b, mut s) = (x.to_vec(), y.to_vec(), size);
    let mut used = 0;
    for scale in 0..scales.max(1) {
        if scale > 0 {
            if s.width < 6 || s.height < 6 {
                break;
            }
            let (pa, half) = pool2(&a, channels, s);
            let (pb, _) = pool2(&b, channels, s);
            (a, b, s) = (pa, pb, half);
        }
        let err = ChwImage::map(s, gms_error(&a, &b, channels, s)).resized(size);
        for (t, v) in total.iter_mut().zip(&err.data) {
            *t += v;
        }
        used += 1;
    }
    total.iter_mut().for_each(|t| *t /= used as f32);
    total
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let e = ssim_error_map(&x, &y, 1, Size::square(16), 1.5);
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
        assert!(ssim_error_map(&x, &x, 1, Size::square(16), 1.5)
            .iter()
            .all(|v| v.abs() < 1e-5));
        let two: Vec<f32> = x.iter().chain(&x).copied().collect();
        let other: Vec<f32> = y.iter().chain(&x).copied().collect();
        let mixed = ssim_error_map(&two, &other, 2, Size::square(16), 1.5);
        assert!((mixed[5 * 16 + 5] - e[5 * 16 + 5] / 2.0).abs() < 1e-5);
    }

    /// A vertical step edge (0.2 | 0.8) present in one image and absent in the other: at the
    /// edge the Prewitt magnitudes are 0.6 and 0, so one scale gives exactly 1 − c/(0.6² + c).
    #[test]
    fn msgms_is_zero_for_identical_images_and_marks_a_changed_edge() {
        let size = Size::square(16);
        let mut x = vec![0.2f32; 256];
        for (i, v) in x.iter_mut().enumerate() {
            if i % 16 >= 8 {
                *v = 0.8;
            }
        }
        assert!(msgms_error_map(&x, &x, 1, size, 4)
            .iter()
            .all(|v| v.abs() < 1e-6));
        // Remove the edge in the lower half: the error is there, not in the upper half.
        let mut y = x.clone();
        for v in y[8 * 16..].iter_mut() {
            *v = 0.2;
        }
        let e = msgms_error_map(&x, &y, 1, size, 1);
        assert!(e[12 * 16 + 8] > 0.9, "{}", e[12 * 16 + 8]);
        assert!(e[2 * 16 + 8] < 1e-6, "{}", e[2 * 16 + 8]);
        // One scale on its own: exactly 1 − GMS at the edge, g₁ = (3 · 0.6) / 3, g₂ = 0.
        let g1 = (3.0f32 * 0.6) / 3.0;
        let expected = 1.0 - GMS_C / (g1 * g1 + GMS_C);
        assert!(
            (e[12 * 16 + 8] - expected).abs() < 1e-5,
            "{} vs {expected}",
            e[12 * 16 + 8]
        );
        // More scales spread the error and keep it in [0, 1].
        let multi = msgms_error_map(&x, &y, 1, size, 4);
        assert!(multi.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(multi[12 * 16 + 3] > e[12 * 16 + 3]);
        // Channels average.
        let two_x: Vec<f32> = x.iter().chain(&x).copied().collect();
        let two_y: Vec<f32> = y.iter().chain(&x).copied().collect();
        let mixed = msgms_error_map(&two_x, &two_y, 2, size, 1);
        assert!((mixed[12 * 16 + 8] - e[12 * 16 + 8] / 2.0).abs() < 1e-6);
    }
}

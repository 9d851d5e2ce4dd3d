//! Photometric operations that turn a normal image into an anomaly texture (DRAEM's augmenters,
//! used as in FAIR's no-DTD loader: the texture source is another training image, so no texture
//! data set is needed). Each op maps [0, 1] to [0, 1]; [`random_ops`] applies a few distinct ones.

use rand::seq::index::sample;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::image::filter::{gaussian_blur, reflect};
use crate::image::{ChwImage, Size};

/// Number of distinct operations [`apply_op`] knows.
pub const OP_COUNT: usize = 10;

/// Applies `count` distinct operations, drawn at random, in a random order.
pub fn random_ops(image: &ChwImage, count: usize, rng: &mut ChaCha8Rng) -> ChwImage {
    let mut out = image.clone();
    for op in sample(rng, OP_COUNT, count.min(OP_COUNT)) {
        out = apply_op(&out, op, rng);
    }
    out
}

/// Operation `op` (0..[`OP_COUNT`]) with random parameters: gamma, brightness, sharpness, hue,
/// solarize, posterize, invert, autocontrast, equalize, rotate.
pub fn apply_op(image: &ChwImage, op: usize, rng: &mut ChaCha8Rng) -> ChwImage {
    let size = image.size();
    let plane = size.area();
    let mut out = image.clone();
    let per_channel = |out: &mut ChwImage, f: &mut dyn FnMut(&mut [f32])| {
        for c in out.data.chunks_mut(plane) {
            f(c);
        }
    };
    match op {
        // Gamma 0.5–2 per channel.
        0 => per_channel(&mut out, &mut |c| {
            let g = rng.random_range(0.5f32..2.0);
            c.iter_mut().for_each(|v| *v = v.max(0.0).powf(g));
        }),
        // Brightness: ×0.8–1.2, ±30/255.
        1 => {
            let (m, a) = (
                rng.random_range(0.8f32..1.2),
                rng.random_range(-30.0f32..30.0) / 255.0,
            );
            out.data.iter_mut().for_each(|v| *v = *v * m + a);
        }
        // Sharpness: push away from a blurred copy by 0–2.
        2 => {
            let s = rng.random_range(0.0f32..2.0);
            per_channel(&mut out, &mut |c| {
                let blurred = gaussian_blur(c, size, 1.0);
                c.iter_mut()
                    .zip(blurred)
                    .for_each(|(v, b)| *v += s * (*v - b));
            });
        }
        // Hue rotation by up to ±70° (DRAEM's ±50 of 255); colour images only.
        3 if image.channels == 3 => {
            let angle = rng.random_range(-70.0f32..70.0).to_radians();
            let (sin, cos) = angle.sin_cos();
            for i in 0..plane {
                let (r, g, b) = (out.data[i], out.data[plane + i], out.data[2 * plane + i]);
                // YIQ: rotate the chroma plane.
                let y = 0.299 * r + 0.587 * g + 0.114 * b;
                let ci = 0.596 * r - 0.274 * g - 0.322 * b;
                let cq = 0.211 * r - 0.523 * g + 0.312 * b;
                let (ci, cq) = (cos * ci - sin * cq, sin * ci + cos * cq);
                out.data[i] = y + 0.956 * ci + 0.621 * cq;
                out.data[plane + i] = y - 0.272 * ci - 0.647 * cq;
                out.data[2 * plane + i] = y - 1.106 * ci + 1.703 * cq;
            }
        }
        3 => {}
        // Solarize above a threshold of 32–128/255.
        4 => {
            let t = rng.random_range(32.0f32..128.0) / 255.0;
            out.data
                .iter_mut()
                .filter(|v| **v > t)
                .for_each(|v| *v = 1.0 - *v);
        }
        // Posterize to 1–7 bits.
        5 => {
            let levels = (1u32 << rng.random_range(1..8)) as f32;
            out.data.iter_mut().for_each(|v| {
                *v = (*v * levels).floor().min(levels - 1.0) / (levels - 1.0).max(1.0)
            });
        }
        // Invert.
        6 => out.data.iter_mut().for_each(|v| *v = 1.0 - *v),
        // Autocontrast: stretch each channel to [0, 1].
        7 => per_channel(&mut out, &mut |c| {
            let (lo, hi) = c
                .iter()
                .fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
            if hi > lo {
                c.iter_mut().for_each(|v| *v = (*v - lo) / (hi - lo));
            }
        }),
        // Equalize: each channel through its own cumulative histogram (256 bins).
        8 => per_channel(&mut out, &mut |c| {
            let bin = |v: f32| ((v.clamp(0.0, 1.0) * 255.0).round() as usize).min(255);
            let mut cdf = [0usize; 256];
            c.iter().for_each(|&v| cdf[bin(v)] += 1);
            for i in 1..256 {
                cdf[i] += cdf[i - 1];
            }
            let n = c.len() as f32;
            c.iter_mut().for_each(|v| *v = cdf[bin(*v)] as f32 / n);
        }),
        // Rotate by up to ±45° about the centre (nearest pixel, reflected at the border).
        _ => {
            let angle = rng.random_range(-45.0f32..45.0).to_radians();
            out = rotated(image, angle);
        }
    }
    out.data.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    out
}

/// `image` rotated by `angle` radians about its centre, sampled at the nearest pixel, the
/// outside reflected in.
fn rotated(image: &ChwImage, angle: f32) -> ChwImage {
    let Size { width, height } = image.size();
    let (sin, cos) = angle.sin_cos();
    let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
    let reflect = |v: f32, n: usize| reflect(v.floor() as isize, n);
    let mut out = image.clone();
    let plane = width * height;
    for y in 0..height {
        for x in 0..width {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            let sx = reflect(cos * dx - sin * dy + cx, width);
            let sy = reflect(sin * dx + cos * dy + cy, height);
            for c in 0..image.channels {
                out.data[c * plane + y * width + x] = image.data[c * plane + sy * width + sx];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn gradient(channels: usize) -> ChwImage {
        let size = Size::new(24, 16);
        let mut img = ChwImage::zeros(channels, size);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = 0.2 + 0.5 * ((i * 7) % 97) as f32 / 96.0;
        }
        img
    }

    #[test]
    fn every_op_keeps_shape_and_range_and_most_change_the_image() {
        for channels in [1, 3] {
            let img = gradient(channels);
            let mut changed = 0;
            for op in 0..OP_COUNT {
                let out = apply_op(&img, op, &mut ChaCha8Rng::seed_from_u64(op as u64));
                assert_eq!(
                    (out.channels, out.size()),
                    (img.channels, img.size()),
                    "op {op}"
                );
                assert!(
                    out.data.iter().all(|v| (0.0..=1.0).contains(v)),
                    "op {op} range"
                );
                changed += usize::from(out.data != img.data);
            }
            // Hue is a no-op on gray images; autocontrast may be one on a full-range image.
            assert!(
                changed >= OP_COUNT - 2,
                "{channels} channel(s): {changed} ops changed it"
            );
        }
        let img = gradient(3);
        let inv = apply_op(&img, 6, &mut ChaCha8Rng::seed_from_u64(0));
        assert!((inv.data[5] - (1.0 - img.data[5])).abs() < 1e-6);
        let a = random_ops(&img, 3, &mut ChaCha8Rng::seed_from_u64(9));
        assert_eq!(a, random_ops(&img, 3, &mut ChaCha8Rng::seed_from_u64(9)));
        assert_ne!(a, img);
    }
}

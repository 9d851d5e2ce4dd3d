//! Rendering of defect-free synthetic images: the float canvas and the three categories
//! (woven texture, round part on a background, gray grain).

use std::f32::consts::PI;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::noise::{gauss, ValueNoise};
use image::{GrayImage, RgbImage};

use super::{png_bytes, SynthCategory};
use crate::error::Result;
use std::path::Path;

/// A square RGB float canvas, row-major, values nominally in [0, 1].
#[derive(Clone)]
pub(super) struct Canvas {
    pub(super) size: usize,
    pub(super) px: Vec<[f32; 3]>,
}

impl Canvas {
    pub(super) fn new(size: usize) -> Self {
        Self {
            size,
            px: vec![[0.0; 3]; size * size],
        }
    }

    pub(super) fn encode_png(&self, gray: bool, path: &Path) -> Result<Vec<u8>> {
        let q = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
        let s = self.size as u32;
        let image = if gray {
            let raw = self.px.iter().map(|p| q(p[0])).collect();
            image::DynamicImage::ImageLuma8(
                GrayImage::from_raw(s, s, raw).expect("size*size pixels"),
            )
        } else {
            let raw = self.px.iter().flat_map(|p| p.map(q)).collect();
            image::DynamicImage::ImageRgb8(RgbImage::from_raw(s, s, raw).expect("size*size pixels"))
        };
        png_bytes(&image, path)
    }
}

/// Geometry of the disc category for one image (needed again to place defects on the part).
#[derive(Clone, Copy)]
pub(super) struct DiscGeometry {
    pub(super) cx: f32,
    pub(super) cy: f32,
    pub(super) radius: f32,
    pub(super) hole: f32,
}

pub(super) fn disc_geometry(size: usize, rng: &mut ChaCha8Rng) -> DiscGeometry {
    let s = size as f32;
    let radius = s * (0.36 + 0.01 * gauss(rng).clamp(-2.0, 2.0));
    DiscGeometry {
        cx: s * (0.5 + 0.012 * gauss(rng).clamp(-2.0, 2.0)),
        cy: s * (0.5 + 0.012 * gauss(rng).clamp(-2.0, 2.0)),
        radius,
        hole: radius * 0.3,
    }
}

/// Background colour of the disc category at a pixel (also what a missing piece reveals).
pub(super) fn disc_background(x: f32, y: f32, light: &ValueNoise) -> [f32; 3] {
    let n = 0.03 * light.at(x, y);
    [0.16 + n, 0.18 + n, 0.21 + n]
}

/// Renders a defect-free image of `category`, with the part's geometry for `disc`.
pub(super) fn render_normal(
    category: SynthCategory,
    size: usize,
    rng: &mut ChaCha8Rng,
) -> (Canvas, Option<DiscGeometry>) {
    match category {
        SynthCategory::Weave => (render_weave(size, rng), None),
        SynthCategory::Disc => {
            let geo = disc_geometry(size, rng);
            (render_disc(size, rng, geo), Some(geo))
        }
        SynthCategory::Grain => (render_grain(size, rng), None),
    }
}

pub(super) fn render_weave(size: usize, rng: &mut ChaCha8Rng) -> Canvas {
    let s = size as f32;
    let period = (s / 16.0).max(4.0);
    let angle = (rng.random::<f32>() - 0.5) * 4.0f32.to_radians();
    let (sin_a, cos_a) = angle.sin_cos();
    let (ox, oy) = (
        rng.random::<f32>() * period * 2.0,
        rng.random::<f32>() * period * 2.0,
    );
    let gain = 1.0 + 0.04 * gauss(rng).clamp(-2.0, 2.0);
    let fibres = ValueNoise::new(size, (s / 128.0).max(1.5), rng);
    let light = ValueNoise::new(size, s / 3.0, rng);
    let warp = [0.62, 0.47, 0.33];
    let weft = [0.50, 0.40, 0.30];
    let mut canvas = Canvas::new(size);
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let u = (cos_a * fx - sin_a * fy + ox) / period;
            let v = (sin_a * fx + cos_a * fy + oy) / period;
            let (iu, iv) = (u.floor(), v.floor());
            let (fu, fv) = (u - iu, v - iv);
            let warp_on_top = (iu as i64 + iv as i64).rem_euclid(2) == 0;
            let (colour, across, along) = if warp_on_top {
                (warp, fu, fv)
            } else {
                (weft, fv, fu)
            };
            let shade = (0.45 + 0.55 * (PI * across).sin()) * (0.85 + 0.15 * (PI * along).sin());
            let tone =
                gain * shade * (1.0 + 0.06 * fibres.at(fx, fy)) * (1.0 + 0.05 * light.at(fx, fy));
            let noise = 0.012 * gauss(rng);
            canvas.px[y * size + x] = colour.map(|c| c * tone + noise);
        }
    }
    canvas
}

pub(super) fn render_disc(size: usize, rng: &mut ChaCha8Rng, geo: DiscGeometry) -> Canvas {
    let light_angle = rng.random::<f32>() * 2.0 * PI;
    let light = ValueNoise::new(size, size as f32 / 4.0, rng);
    let grooves = 8.0 + rng.random::<f32>();
    let mut canvas = Canvas::new(size);
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let (dx, dy) = (fx - geo.cx, fy - geo.cy);
            let r = (dx * dx + dy * dy).sqrt();
            let bg = disc_background(fx, fy, &light);
            let outer = (geo.radius - r + 0.5).clamp(0.0, 1.0);
            let inner = (r - geo.hole + 0.5).clamp(0.0, 1.0);
            let cover = outer * inner;
            let rel = r / geo.radius;
            let dir = dy.atan2(dx) - light_angle;
            let mut metal = 0.58 + 0.06 * (2.0 * PI * grooves * rel).sin() + 0.10 * rel * dir.cos();
            // Dark bevels at the rim and around the hole.
            if geo.radius - r < geo.radius * 0.05 || r - geo.hole < geo.radius * 0.04 {
                metal *= 0.7;
            }
            let tint = [1.0, 0.97, 0.92];
            let noise = 0.01 * gauss(rng);
            canvas.px[y * size + x] =
                std::array::from_fn(|c| bg[c] * (1.0 - cover) + (metal * tint[c]) * cover + noise);
        }
    }
    canvas
}

pub(super) fn render_grain(size: usize, rng: &mut ChaCha8Rng) -> Canvas {
    let s = size as f32;
    let octaves: Vec<(ValueNoise, f32)> = [(8.0, 0.45), (16.0, 0.3), (32.0, 0.17), (64.0, 0.08)]
        .into_iter()
        .map(|(div, w)| (ValueNoise::new(size, (s / div).max(1.0), rng), w))
        .collect();
    let level = 0.5 + 0.03 * gauss(rng).clamp(-2.0, 2.0);
    let mut canvas = Canvas::new(size);
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let n: f32 = octaves.iter().map(|(o, w)| w * o.at(fx, fy)).sum();
            let v = level + 0.3 * n + 0.03 * gauss(rng);
            canvas.px[y * size + x] = [v; 3];
        }
    }
    canvas
}

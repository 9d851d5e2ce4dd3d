//! Synthetic defects: footprints (scratch, crack, contamination, missing piece, stain) drawn at
//! a random site and painted into a canvas, with the exact mask of the changed pixels.

use std::f32::consts::PI;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::noise::{gauss, ValueNoise};
use super::render::{disc_background, Canvas, DiscGeometry};
use super::{DefectKind, SynthCategory, DEFECT_AREA_RANGE};

/// A random-walk line: `steps` segments of length `step`, turning by `jitter` radians (standard
/// deviation) per segment.
#[derive(Clone, Copy)]
pub(super) struct Stroke {
    pub(super) heading: f32,
    pub(super) step: f32,
    pub(super) steps: usize,
    pub(super) jitter: f32,
    pub(super) width: f32,
}

/// A defect's footprint: per-pixel strength in (0, 1] inside the defect, 0 outside.
pub(super) struct Footprint {
    pub(super) size: usize,
    pub(super) strength: Vec<f32>,
}

impl Footprint {
    pub(super) fn new(size: usize) -> Self {
        Self {
            size,
            strength: vec![0.0; size * size],
        }
    }

    pub(super) fn area(&self) -> f64 {
        self.strength.iter().filter(|&&v| v > 0.0).count() as f64 / (self.size * self.size) as f64
    }

    /// Adds a thick line segment from `a` to `b` of width `width`.
    pub(super) fn segment(&mut self, a: (f32, f32), b: (f32, f32), width: f32) {
        let half = width / 2.0;
        let (lo_x, hi_x) = (a.0.min(b.0) - half - 1.0, a.0.max(b.0) + half + 1.0);
        let (lo_y, hi_y) = (a.1.min(b.1) - half - 1.0, a.1.max(b.1) + half + 1.0);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len2 = (dx * dx + dy * dy).max(1e-6);
        for y in self.clip(lo_y)..self.clip(hi_y) {
            for x in self.clip(lo_x)..self.clip(hi_x) {
                let (px, py) = (x as f32 + 0.5, y as f32 + 0.5);
                let t = (((px - a.0) * dx + (py - a.1) * dy) / len2).clamp(0.0, 1.0);
                let (qx, qy) = (a.0 + t * dx - px, a.1 + t * dy - py);
                let d = (qx * qx + qy * qy).sqrt();
                if d <= half.max(0.5) {
                    let v = 1.0 - 0.5 * d / half.max(0.5);
                    let cell = &mut self.strength[y * self.size + x];
                    *cell = cell.max(v);
                }
            }
        }
    }

    /// Adds an irregular blob of mean radius `r0` around `c`, with a soft rim of `ramp` pixels
    /// (strength at least 0.3 inside, so every marked pixel really changes).
    pub(super) fn blob(&mut self, c: (f32, f32), r0: f32, ramp: f32, rng: &mut ChaCha8Rng) {
        let harmonics: Vec<(f32, f32, f32)> = (2..7)
            .map(|k| {
                (
                    k as f32,
                    rng.random::<f32>() * 0.1,
                    rng.random::<f32>() * 2.0 * PI,
                )
            })
            .collect();
        let reach = r0 * 1.6 + 2.0;
        for y in self.clip(c.1 - reach)..self.clip(c.1 + reach) {
            for x in self.clip(c.0 - reach)..self.clip(c.0 + reach) {
                let (dx, dy) = (x as f32 + 0.5 - c.0, y as f32 + 0.5 - c.1);
                let d = (dx * dx + dy * dy).sqrt();
                let theta = dy.atan2(dx);
                let r = r0
                    * (1.0
                        + harmonics
                            .iter()
                            .map(|(k, a, p)| a * (k * theta + p).cos())
                            .sum::<f32>());
                if d <= r {
                    let v = (0.3 + 0.7 * (r - d) / ramp.max(0.5)).min(1.0);
                    let cell = &mut self.strength[y * self.size + x];
                    *cell = cell.max(v);
                }
            }
        }
    }

    /// Draws a random-walk stroke starting at `start` and returns its points.
    pub(super) fn walk(
        &mut self,
        start: (f32, f32),
        stroke: Stroke,
        rng: &mut ChaCha8Rng,
    ) -> Vec<(f32, f32)> {
        let mut points = vec![start];
        let mut p = start;
        let mut heading = stroke.heading;
        for _ in 0..stroke.steps {
            heading += stroke.jitter * gauss(rng);
            let q = (
                p.0 + stroke.step * heading.cos(),
                p.1 + stroke.step * heading.sin(),
            );
            self.segment(p, q, stroke.width);
            points.push(q);
            p = q;
        }
        points
    }

    /// Clears the footprint outside the ring `inner <= r <= outer` around the disc's centre.
    pub(super) fn keep_annulus(&mut self, g: DiscGeometry, inner: f32, outer: f32) {
        for y in 0..self.size {
            for x in 0..self.size {
                let (dx, dy) = (x as f32 + 0.5 - g.cx, y as f32 + 0.5 - g.cy);
                let r = (dx * dx + dy * dy).sqrt();
                if r < inner || r > outer {
                    self.strength[y * self.size + x] = 0.0;
                }
            }
        }
    }

    pub(super) fn clip(&self, v: f32) -> usize {
        (v.max(0.0) as usize).min(self.size)
    }
}

/// Draws a random point inside the region where a defect may start (the part for `disc`, away
/// from the border for textures).
pub(super) fn defect_site(
    category: SynthCategory,
    size: usize,
    geo: Option<DiscGeometry>,
    rng: &mut ChaCha8Rng,
) -> (f32, f32) {
    let s = size as f32;
    match (category, geo) {
        (SynthCategory::Disc, Some(g)) => {
            let r = g.hole + (g.radius - g.hole) * (0.25 + 0.5 * rng.random::<f32>());
            let a = rng.random::<f32>() * 2.0 * PI;
            (g.cx + r * a.cos(), g.cy + r * a.sin())
        }
        _ => (
            s * (0.15 + 0.7 * rng.random::<f32>()),
            s * (0.15 + 0.7 * rng.random::<f32>()),
        ),
    }
}

/// Adds one defect of `kind` to `canvas` and returns its exact mask (the pixels it changed).
pub(super) fn add_defect(
    canvas: &mut Canvas,
    category: SynthCategory,
    kind: DefectKind,
    geo: Option<DiscGeometry>,
    rng: &mut ChaCha8Rng,
) -> Vec<bool> {
    let size = canvas.size;
    for _attempt in 0..20 {
        let fp = draw_footprint(category, kind, size, geo, rng);
        let area = fp.area();
        if area >= DEFECT_AREA_RANGE.0 && area <= DEFECT_AREA_RANGE.1 {
            apply_defect(canvas, category, kind, &fp, geo, rng);
            return fp.strength.iter().map(|&v| v > 0.0).collect();
        }
    }
    // Fall back to a blob of a size in range; always possible.
    let mut fp = Footprint::new(size);
    let s = size as f32;
    fp.blob(defect_site(category, size, geo, rng), s * 0.06, 2.0, rng);
    apply_defect(canvas, category, kind, &fp, geo, rng);
    fp.strength.iter().map(|&v| v > 0.0).collect()
}

pub(super) fn draw_footprint(
    category: SynthCategory,
    kind: DefectKind,
    size: usize,
    geo: Option<DiscGeometry>,
    rng: &mut ChaCha8Rng,
) -> Footprint {
    let s = size as f32;
    let unit = s / 256.0;
    let mut fp = Footprint::new(size);
    let start = defect_site(category, size, geo, rng);
    let heading = rng.random::<f32>() * 2.0 * PI;
    match kind {
        DefectKind::Scratch => {
            let width = unit * (1.5 + 1.5 * rng.random::<f32>());
            let length = s * (0.25 + 0.3 * rng.random::<f32>());
            let steps = 12;
            let stroke = Stroke {
                heading,
                step: length / steps as f32,
                steps,
                jitter: 0.05,
                width: width.max(1.0),
            };
            fp.walk(start, stroke, rng);
        }
        DefectKind::Crack => {
            let width = unit * (2.0 + 2.0 * rng.random::<f32>());
            let length = s * (0.15 + 0.3 * rng.random::<f32>());
            let steps = 16;
            let trunk = Stroke {
                heading,
                step: length / steps as f32,
                steps,
                jitter: 0.45,
                width: width.max(1.0),
            };
            let path = fp.walk(start, trunk, rng);
            for _ in 0..rng.random_range(1..=2) {
                let from = path[rng.random_range(2..path.len() - 2)];
                let h = heading + if rng.random::<bool>() { 0.9 } else { -0.9 };
                let branch = Stroke {
                    heading: h,
                    steps: steps / 3,
                    jitter: 0.5,
                    width: (width * 0.6).max(1.0),
                    ..trunk
                };
                fp.walk(from, branch, rng);
            }
        }
        DefectKind::Contamination => {
            let area = log_uniform(rng, 0.003, 0.04);
            let r0 = (area as f32 * s * s / PI).sqrt();
            fp.blob(start, r0, 2.0 * unit, rng);
        }
        DefectKind::Missing => {
            let area = log_uniform(rng, 0.01, 0.07);
            match geo {
                Some(g) => {
                    // A chunk off the rim: a blob centred on the rim, kept where the part was.
                    let a = rng.random::<f32>() * 2.0 * PI;
                    let c = (g.cx + g.radius * a.cos(), g.cy + g.radius * a.sin());
                    let r0 = (2.0 * area as f32 * s * s / PI).sqrt();
                    fp.blob(c, r0, 1.0, rng);
                    // Keep what was the part, anti-aliased rim included.
                    fp.keep_annulus(g, g.hole, g.radius + 0.5);
                }
                None => {
                    let r0 = (area as f32 * s * s / PI).sqrt();
                    fp.blob(start, r0, 1.0, rng);
                }
            }
        }
        DefectKind::Stain => {
            let area = log_uniform(rng, 0.02, 0.09);
            let r0 = (area as f32 * s * s / PI).sqrt();
            fp.blob(start, r0, r0 * 0.5, rng);
        }
    }
    if let (Some(g), false) = (geo, kind == DefectKind::Missing) {
        // Surface defects stay on the part.
        fp.keep_annulus(g, g.hole + 1.0, g.radius - 1.0);
    }
    fp
}

pub(super) fn log_uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
}

/// Paints the defect into the canvas, changing only pixels of the footprint.
pub(super) fn apply_defect(
    canvas: &mut Canvas,
    category: SynthCategory,
    kind: DefectKind,
    fp: &Footprint,
    geo: Option<DiscGeometry>,
    rng: &mut ChaCha8Rng,
) {
    let size = canvas.size;
    let gray = category.is_gray();
    let texture = ValueNoise::new(size, (size as f32 / 40.0).max(1.5), rng);
    let light = ValueNoise::new(size, size as f32 / 4.0, rng);
    let bright_scratch = rng.random::<bool>();
    let colour: [f32; 3] = match kind {
        DefectKind::Scratch if bright_scratch => [0.92, 0.92, 0.90],
        DefectKind::Scratch => [0.10, 0.09, 0.08],
        DefectKind::Crack => [0.05, 0.04, 0.04],
        DefectKind::Contamination => {
            let palette = [
                [0.25, 0.16, 0.08],
                [0.08, 0.08, 0.09],
                [0.30, 0.38, 0.18],
                [0.85, 0.80, 0.55],
            ];
            palette[rng.random_range(0..palette.len())]
        }
        DefectKind::Missing => [0.04, 0.04, 0.05],
        DefectKind::Stain => {
            let tints = [[1.25, 1.0, 0.55], [0.65, 0.8, 1.3], [1.3, 0.75, 0.75]];
            tints[rng.random_range(0..tints.len())]
        }
    };
    let stain_gain = if rng.random::<bool>() { 1.5 } else { 0.55 };
    let stain_alpha = 0.5 + 0.3 * rng.random::<f32>();
    for y in 0..size {
        for x in 0..size {
            let k = fp.strength[y * size + x];
            if k <= 0.0 {
                continue;
            }
            let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
            let old = canvas.px[y * size + x];
            let new: [f32; 3] = match kind {
                DefectKind::Stain => {
                    let a = stain_alpha * k;
                    if gray {
                        old.map(|v| v * (1.0 - a) + (v * stain_gain) * a)
                    } else {
                        std::array::from_fn(|c| old[c] * (1.0 - a) + old[c] * colour[c] * a)
                    }
                }
                DefectKind::Missing if geo.is_some() => disc_background(fx, fy, &light),
                _ => {
                    let t = 1.0 + 0.15 * texture.at(fx, fy);
                    let a = (0.55 + 0.45 * k).min(1.0);
                    let target = if gray {
                        let l = 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2];
                        [l * t; 3]
                    } else {
                        colour.map(|c| c * t)
                    };
                    std::array::from_fn(|c| old[c] * (1.0 - a) + target[c] * a)
                }
            };
            canvas.px[y * size + x] = new;
        }
    }
}

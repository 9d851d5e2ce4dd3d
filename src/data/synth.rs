//! `reconad synth`: a seeded generator of an MVTec-AD-layout data set with exact masks, used by
//! the demo and the tests instead of downloads.
//!
//! Three categories of different nature: `weave` (an RGB woven texture), `disc` (an RGB round
//! metal part centred on a background) and `grain` (a grayscale stochastic texture). Five defect
//! types: scratch, crack, contamination, missing (piece), stain, of 0.2-10 % of the image.
//! Every image has its own random stream derived from (seed, category, folder, index), so the
//! output is byte-identical for a seed whatever the thread count.

use std::f32::consts::PI;
use std::path::{Path, PathBuf};

use image::{GrayImage, ImageFormat, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, DataResult};
use crate::fsutil;

/// Name of the manifest written at the root of a generated data set.
pub const MANIFEST: &str = "synth.json";

/// Smallest and largest defect area, as a share of the image.
pub const DEFECT_AREA_RANGE: (f64, f64) = (0.002, 0.10);

/// A synthetic category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SynthCategory {
    /// RGB woven fabric texture.
    Weave,
    /// RGB round metal part centred on a dark background.
    Disc,
    /// Grayscale stochastic (noise) texture.
    Grain,
}

impl SynthCategory {
    /// Every category, in generation order.
    pub const ALL: [SynthCategory; 3] = [Self::Weave, Self::Disc, Self::Grain];

    /// Folder name of the category.
    pub fn name(self) -> &'static str {
        match self {
            Self::Weave => "weave",
            Self::Disc => "disc",
            Self::Grain => "grain",
        }
    }

    /// Whether images are written as 1-channel grayscale.
    pub fn is_gray(self) -> bool {
        self == Self::Grain
    }
}

/// A synthetic defect type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefectKind {
    /// Thin bright or dark curved line.
    Scratch,
    /// Dark jagged line with branches.
    Crack,
    /// Irregular foreign blob of another colour.
    Contamination,
    /// A piece missing: a hole in a texture, a chunk off the rim of a part.
    Missing,
    /// A soft, half-transparent colour (or brightness) stain.
    Stain,
}

impl DefectKind {
    /// Every defect type, in generation order.
    pub const ALL: [DefectKind; 5] = [
        Self::Scratch,
        Self::Crack,
        Self::Contamination,
        Self::Missing,
        Self::Stain,
    ];

    /// Folder name of the defect type.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scratch => "scratch",
            Self::Crack => "crack",
            Self::Contamination => "contamination",
            Self::Missing => "missing",
            Self::Stain => "stain",
        }
    }
}

/// Settings of the generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// Seed of every random choice.
    pub seed: u64,
    /// Side of the square images in pixels.
    pub size: u32,
    /// Normal training images per category.
    pub train: usize,
    /// Normal test images per category.
    pub test_good: usize,
    /// Test images per defect type and category.
    pub test_per_defect: usize,
    /// Categories to generate.
    pub categories: Vec<SynthCategory>,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            size: 256,
            train: 40,
            test_good: 10,
            test_per_defect: 4,
            categories: SynthCategory::ALL.to_vec(),
        }
    }
}

impl SynthConfig {
    /// Checks the settings' ranges.
    pub fn validate(&self) -> DataResult<()> {
        let invalid = |name, value: String, reason: &str| {
            Err(DataError::InvalidSetting {
                name,
                value,
                reason: reason.into(),
            })
        };
        if !(32..=4096).contains(&self.size) {
            return invalid(
                "size",
                self.size.to_string(),
                "must be between 32 and 4096 pixels",
            );
        }
        if self.train < 2 {
            return invalid(
                "train",
                self.train.to_string(),
                "at least 2 normal training images are needed for a train/val split",
            );
        }
        if self.categories.is_empty() {
            return invalid("categories", "[]".into(), "name at least one category");
        }
        Ok(())
    }
}

/// The manifest written at the root of a generated data set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SynthManifest {
    /// Generator version (the reconad version).
    pub generator: String,
    /// Settings used.
    pub config: SynthConfig,
}

/// One file to generate.
#[derive(Debug, Clone, Copy)]
struct Job {
    category: SynthCategory,
    defect: Option<DefectKind>,
    /// 0 train/good, 1 test/good, 2 test/<defect>.
    folder: u64,
    index: usize,
}

/// Generates the data set under `out` (one folder per category plus `synth.json`). Existing
/// category folders are replaced only with `force`, and only when `out` was made by this
/// generator. Returns the number of images written.
pub fn generate(out: &Path, config: &SynthConfig, force: bool) -> DataResult<usize> {
    config.validate()?;
    let manifest_path = out.join(MANIFEST);
    for category in &config.categories {
        let dir = out.join(category.name());
        if dir.exists() {
            if !force {
                return Err(DataError::AlreadyExists {
                    path: dir,
                    hint: "pass --force to replace it".into(),
                });
            }
            if !manifest_path.is_file() {
                return Err(DataError::AlreadyExists {
                    path: dir,
                    hint: format!(
                        "not replaced: {} has no {MANIFEST}, so reconad synth did not make it",
                        out.display()
                    ),
                });
            }
            std::fs::remove_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
        }
    }

    let mut jobs = Vec::new();
    for &category in &config.categories {
        let good = |folder, count| {
            (0..count).map(move |index| Job {
                category,
                defect: None,
                folder,
                index,
            })
        };
        jobs.extend(good(0, config.train));
        jobs.extend(good(1, config.test_good));
        for defect in DefectKind::ALL {
            jobs.extend((0..config.test_per_defect).map(|index| Job {
                category,
                defect: Some(defect),
                folder: 2,
                index,
            }));
        }
    }
    jobs.par_iter()
        .map(|job| write_job(out, config, job))
        .collect::<DataResult<Vec<()>>>()?;
    fsutil::write_json_atomic(
        &manifest_path,
        &SynthManifest {
            generator: format!("reconad {}", env!("CARGO_PKG_VERSION")),
            config: config.clone(),
        },
    )?;
    Ok(jobs.len())
}

/// Renders and writes one image (and its mask).
fn write_job(out: &Path, config: &SynthConfig, job: &Job) -> DataResult<()> {
    let cat_dir = out.join(job.category.name());
    let file = format!("{:03}.png", job.index);
    let defect_id = job.defect.map_or(0, |d| d as u64 + 1);
    let mut rng = ChaCha8Rng::seed_from_u64(mix(&[
        config.seed,
        job.category as u64,
        job.folder,
        defect_id,
        job.index as u64,
    ]));
    let size = config.size as usize;
    let (mut canvas, geo) = render_normal(job.category, size, &mut rng);
    let (image_path, mask) = match job.defect {
        None => {
            let sub = if job.folder == 0 { "train" } else { "test" };
            (cat_dir.join(sub).join("good").join(&file), None)
        }
        Some(defect) => {
            let mask = add_defect(&mut canvas, job.category, defect, geo, &mut rng);
            (
                cat_dir.join("test").join(defect.name()).join(&file),
                Some((defect, mask)),
            )
        }
    };
    fsutil::write_atomic(
        &image_path,
        &canvas.encode_png(job.category.is_gray(), &image_path)?,
    )?;
    if let Some((defect, mask)) = mask {
        let mask_path = cat_dir
            .join("ground_truth")
            .join(defect.name())
            .join(format!("{:03}_mask.png", job.index));
        let img = GrayImage::from_raw(
            size as u32,
            size as u32,
            mask.iter().map(|&m| if m { 255 } else { 0 }).collect(),
        )
        .expect("mask buffer has size*size pixels");
        fsutil::write_atomic(
            &mask_path,
            &png_bytes(&image::DynamicImage::ImageLuma8(img), &mask_path)?,
        )?;
    }
    Ok(())
}

/// SplitMix64-style mixing of several words into one seed.
fn mix(words: &[u64]) -> u64 {
    let mut h: u64 = 0x9E37_79B9_7F4A_7C15;
    for &w in words {
        h ^= w
            .wrapping_add(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(h << 6)
            .wrapping_add(h >> 2);
        h = (h ^ (h >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        h ^= h >> 31;
    }
    h
}

fn png_bytes(image: &image::DynamicImage, path: &Path) -> DataResult<Vec<u8>> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|e| DataError::Decode {
            path: path.to_path_buf(),
            source: e,
        })?;
    Ok(bytes)
}

/// A square RGB float canvas, row-major, values nominally in [0, 1].
#[derive(Clone)]
struct Canvas {
    size: usize,
    px: Vec<[f32; 3]>,
}

impl Canvas {
    fn new(size: usize) -> Self {
        Self {
            size,
            px: vec![[0.0; 3]; size * size],
        }
    }

    fn encode_png(&self, gray: bool, path: &Path) -> DataResult<Vec<u8>> {
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

/// Smooth 2-D value noise: random values on a lattice of `cell`-pixel spacing, interpolated with
/// a smoothstep.
struct ValueNoise {
    cell: f32,
    cols: usize,
    values: Vec<f32>,
}

impl ValueNoise {
    fn new(size: usize, cell: f32, rng: &mut ChaCha8Rng) -> Self {
        let cols = (size as f32 / cell).ceil() as usize + 2;
        let values = (0..cols * cols)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect();
        Self {
            cell: cell.max(1.0),
            cols,
            values,
        }
    }

    /// Noise in [-1, 1] at pixel (x, y).
    fn at(&self, x: f32, y: f32) -> f32 {
        let (u, v) = ((x / self.cell).max(0.0), (y / self.cell).max(0.0));
        let (i, j) = (
            (u as usize).min(self.cols - 2),
            (v as usize).min(self.cols - 2),
        );
        let (fu, fv) = (smooth(u - i as f32), smooth(v - j as f32));
        let g = |a: usize, b: usize| self.values[b * self.cols + a];
        let top = g(i, j) * (1.0 - fu) + g(i + 1, j) * fu;
        let bottom = g(i, j + 1) * (1.0 - fu) + g(i + 1, j + 1) * fu;
        top * (1.0 - fv) + bottom * fv
    }
}

fn smooth(t: f32) -> f32 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// A standard normal sample (Box-Muller).
fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f32 = rng.random::<f32>().max(1e-7);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
}

/// Geometry of the disc category for one image (needed again to place defects on the part).
#[derive(Clone, Copy)]
struct DiscGeometry {
    cx: f32,
    cy: f32,
    radius: f32,
    hole: f32,
}

fn disc_geometry(size: usize, rng: &mut ChaCha8Rng) -> DiscGeometry {
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
fn disc_background(x: f32, y: f32, light: &ValueNoise) -> [f32; 3] {
    let n = 0.03 * light.at(x, y);
    [0.16 + n, 0.18 + n, 0.21 + n]
}

/// Renders a defect-free image of `category`, with the part's geometry for `disc`.
fn render_normal(
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

fn render_weave(size: usize, rng: &mut ChaCha8Rng) -> Canvas {
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

fn render_disc(size: usize, rng: &mut ChaCha8Rng, geo: DiscGeometry) -> Canvas {
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

fn render_grain(size: usize, rng: &mut ChaCha8Rng) -> Canvas {
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

/// A random-walk line: `steps` segments of length `step`, turning by `jitter` radians (standard
/// deviation) per segment.
#[derive(Clone, Copy)]
struct Stroke {
    heading: f32,
    step: f32,
    steps: usize,
    jitter: f32,
    width: f32,
}

/// A defect's footprint: per-pixel strength in (0, 1] inside the defect, 0 outside.
struct Footprint {
    size: usize,
    strength: Vec<f32>,
}

impl Footprint {
    fn new(size: usize) -> Self {
        Self {
            size,
            strength: vec![0.0; size * size],
        }
    }

    fn area(&self) -> f64 {
        self.strength.iter().filter(|&&v| v > 0.0).count() as f64 / (self.size * self.size) as f64
    }

    /// Adds a thick line segment from `a` to `b` of width `width`.
    fn segment(&mut self, a: (f32, f32), b: (f32, f32), width: f32) {
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
    fn blob(&mut self, c: (f32, f32), r0: f32, ramp: f32, rng: &mut ChaCha8Rng) {
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
    fn walk(&mut self, start: (f32, f32), stroke: Stroke, rng: &mut ChaCha8Rng) -> Vec<(f32, f32)> {
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
    fn keep_annulus(&mut self, g: DiscGeometry, inner: f32, outer: f32) {
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

    fn clip(&self, v: f32) -> usize {
        (v.max(0.0) as usize).min(self.size)
    }
}

/// Draws a random point inside the region where a defect may start (the part for `disc`, away
/// from the border for textures).
fn defect_site(
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
fn add_defect(
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

fn draw_footprint(
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

fn log_uniform(rng: &mut ChaCha8Rng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
}

/// Paints the defect into the canvas, changing only pixels of the footprint.
fn apply_defect(
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

/// Paths of every file a category of `config` holds, for tests and checks.
pub fn expected_files(out: &Path, config: &SynthConfig) -> Vec<PathBuf> {
    let mut files = vec![out.join(MANIFEST)];
    for category in &config.categories {
        let dir = out.join(category.name());
        let name = |i: usize| format!("{i:03}.png");
        files.extend((0..config.train).map(|i| dir.join("train/good").join(name(i))));
        files.extend((0..config.test_good).map(|i| dir.join("test/good").join(name(i))));
        for d in DefectKind::ALL {
            for i in 0..config.test_per_defect {
                files.push(dir.join("test").join(d.name()).join(name(i)));
                files.push(
                    dir.join("ground_truth")
                        .join(d.name())
                        .join(format!("{i:03}_mask.png")),
                );
            }
        }
    }
    files
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A defect changes the pixels of its mask clearly and no pixel outside it.
    #[test]
    fn defects_change_exactly_the_masked_pixels() {
        for category in SynthCategory::ALL {
            for (k, kind) in DefectKind::ALL.into_iter().enumerate() {
                for trial in 0..3u64 {
                    let mut rng =
                        ChaCha8Rng::seed_from_u64(mix(&[k as u64, trial, category as u64]));
                    let (normal, geo) = render_normal(category, 96, &mut rng);
                    let mut defect = normal.clone();
                    let mask = add_defect(&mut defect, category, kind, geo, &mut rng);
                    let mut inside = (0.0f32, 0usize);
                    for (i, &m) in mask.iter().enumerate() {
                        let change: f32 = (0..3)
                            .map(|c| (defect.px[i][c] - normal.px[i][c]).abs())
                            .sum::<f32>()
                            / 3.0;
                        if m {
                            inside.0 += change;
                            inside.1 += 1;
                        } else {
                            assert_eq!(
                                change, 0.0,
                                "{category:?}/{kind:?}: pixel {i} outside the mask changed"
                            );
                        }
                    }
                    let mean = inside.0 / inside.1.max(1) as f32;
                    assert!(inside.1 > 0, "{category:?}/{kind:?}: empty mask");
                    assert!(
                        mean > 0.03,
                        "{category:?}/{kind:?}: mean change inside the mask only {mean}"
                    );
                }
            }
        }
    }

    #[test]
    fn mixing_separates_neighbouring_seeds() {
        let a = mix(&[1, 0, 0, 0, 0]);
        let b = mix(&[1, 0, 0, 0, 1]);
        let c = mix(&[2, 0, 0, 0, 0]);
        assert!(a != b && a != c && b != c);
    }
}

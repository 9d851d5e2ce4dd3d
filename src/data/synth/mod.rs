//! `reconad synth`: a seeded generator of an MVTec-AD-layout data set with exact masks, used by
//! the demo and the tests instead of downloads.
//!
//! Three categories of different nature: `weave` (an RGB woven texture), `disc` (an RGB round
//! metal part centred on a background) and `grain` (a grayscale stochastic texture). Five defect
//! types: scratch, crack, contamination, missing (piece), stain, of 0.2-10 % of the image.
//! Every image has its own random stream derived from (seed, category, folder, index), so the
//! output is byte-identical for a seed whatever the thread count.

use std::path::{Path, PathBuf};

use image::{GrayImage, ImageFormat};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util::fs as fsutil;

mod defects;
mod noise;
mod render;

use defects::add_defect;
use render::render_normal;

/// Name of the manifest written at the root of a generated data set.
pub const MANIFEST: &str = "synth.json";

/// Smallest and largest defect area, as a share of the image.
pub const DEFECT_AREA_RANGE: (f64, f64) = (0.002, 0.10);

/// A synthetic category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
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
    pub fn validate(&self) -> Result<()> {
        let invalid =
            |name: &str, value: String, reason: &str| Err(Error::setting(name, value, reason));
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
pub fn generate(out: &Path, config: &SynthConfig, force: bool) -> Result<usize> {
    config.validate()?;
    let manifest_path = out.join(MANIFEST);
    for category in &config.categories {
        let dir = out.join(category.name());
        if dir.exists() {
            if !force {
                return Err(Error::AlreadyExists {
                    path: dir,
                    hint: "pass --force to replace it".into(),
                });
            }
            if !manifest_path.is_file() {
                return Err(Error::AlreadyExists {
                    path: dir,
                    hint: format!(
                        "not replaced: {} has no {MANIFEST}, so reconad synth did not make it",
                        out.display()
                    ),
                });
            }
            std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
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
        .collect::<Result<Vec<()>>>()?;
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
fn write_job(out: &Path, config: &SynthConfig, job: &Job) -> Result<()> {
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

pub(super) fn png_bytes(image: &image::DynamicImage, path: &Path) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|e| Error::Decode {
            path: path.to_path_buf(),
            source: e,
        })?;
    Ok(bytes)
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

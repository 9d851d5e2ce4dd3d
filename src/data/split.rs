//! Seeded train/val split of the normal training images, by image (SPEC §2), saved as JSON so a
//! later run can reuse exactly the same split.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{Dataset, Item};
use crate::error::{Error, Result};
use crate::util::fs as fsutil;

/// Default share of normal training images held out for validation.
pub const DEFAULT_VAL_FRACTION: f64 = 0.10;

/// Version of the split file format.
pub const SPLIT_FORMAT_VERSION: u32 = 1;

/// Picks `round(n * fraction)` of `paths` (at least one, and at least one left over) with a
/// seeded shuffle. Returns `(kept, held_out)`, both sorted. Needs at least two paths.
pub fn seeded_holdout(
    paths: &[PathBuf],
    fraction: f64,
    seed: u64,
) -> Result<(Vec<PathBuf>, Vec<PathBuf>), String> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(format!(
            "fraction {fraction} must lie strictly between 0 and 1"
        ));
    }
    let n = paths.len();
    if n < 2 {
        return Err(format!(
            "{n} image(s): at least 2 are needed to hold some out"
        ));
    }
    let mut sorted = paths.to_vec();
    sorted.sort();
    let held = ((n as f64 * fraction).round() as usize).clamp(1, n - 1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    sorted.shuffle(&mut rng);
    let mut held_out = sorted.split_off(n - held);
    sorted.sort();
    held_out.sort();
    Ok((sorted, held_out))
}

/// A train/val split of a data set's normal training images. Paths are stored relative to the
/// data set's root, so the file stays valid when the data moves with its root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// Format version of this file.
    pub version: u32,
    /// Name of the data set (category) it was made for.
    pub dataset: String,
    /// Seed of the shuffle.
    pub seed: u64,
    /// Requested validation share.
    pub val_fraction: f64,
    /// Images used for training.
    pub train: Vec<PathBuf>,
    /// Images held out for validation (never trained on).
    pub val: Vec<PathBuf>,
}

impl Split {
    /// Splits the normal training images of `dataset`: `val_fraction` of them (rounded, at least
    /// one) go to validation, chosen by a shuffle seeded with `seed`.
    pub fn new(dataset: &Dataset, val_fraction: f64, seed: u64) -> Result<Self> {
        if !(val_fraction > 0.0 && val_fraction <= 0.5) {
            return Err(Error::InvalidSetting {
                name: "val_fraction".into(),
                value: val_fraction.to_string(),
                reason: "must be in (0, 0.5] (0.1 default, 0.15 an option)".into(),
            });
        }
        let relative: Vec<PathBuf> = dataset
            .train
            .iter()
            .map(|i| relative_to(&i.path, &dataset.root))
            .collect();
        let (train, val) = seeded_holdout(&relative, val_fraction, seed).map_err(|reason| {
            // Named by the folder of the normal training images.
            let folder = dataset
                .train
                .first()
                .and_then(|i| i.path.parent())
                .unwrap_or(&dataset.root);
            Error::file(
                folder,
                format!(
                    "cannot split the normal training images into train and validation: {reason}"
                ),
            )
        })?;
        Ok(Self {
            version: SPLIT_FORMAT_VERSION,
            dataset: dataset.name.clone(),
            seed,
            val_fraction,
            train,
            val,
        })
    }

    /// Writes the split as JSON (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        fsutil::write_json_atomic(path, self)
    }

    /// Saves the split, reads it back and maps it onto `dataset`, so a broken file fails now.
    pub fn save_checked(&self, dataset: &Dataset, path: &Path) -> Result<()> {
        self.save(path)?;
        let loaded = Split::load(path)?;
        if &loaded != self {
            return Err(Error::file(
                path,
                "split read back differs from the one written",
            ));
        }
        loaded.resolve(dataset, path)?;
        Ok(())
    }

    /// Reads a split written by [`Split::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let split: Split = fsutil::read_json(path)?;
        if split.version != SPLIT_FORMAT_VERSION {
            return Err(Error::SplitMismatch {
                path: path.to_path_buf(),
                reason: format!(
                    "format version {} is not the supported version {SPLIT_FORMAT_VERSION}",
                    split.version
                ),
            });
        }
        Ok(split)
    }

    /// Maps the split back onto `dataset`'s items, checking that it covers exactly the data
    /// set's normal training images with no image in both parts. `origin` names the split file
    /// in errors.
    pub fn resolve(&self, dataset: &Dataset, origin: &Path) -> Result<(Vec<Item>, Vec<Item>)> {
        let mismatch = |reason: String| Error::SplitMismatch {
            path: origin.to_path_buf(),
            reason,
        };
        let train: BTreeSet<&PathBuf> = self.train.iter().collect();
        let val: BTreeSet<&PathBuf> = self.val.iter().collect();
        if let Some(both) = train.intersection(&val).next() {
            return Err(mismatch(format!(
                "{} is in both train and val",
                both.display()
            )));
        }
        let mut train_items = Vec::new();
        let mut val_items = Vec::new();
        for item in &dataset.train {
            let rel = relative_to(&item.path, &dataset.root);
            if train.contains(&rel) {
                train_items.push(item.clone());
            } else if val.contains(&rel) {
                val_items.push(item.clone());
            } else {
                return Err(mismatch(format!(
                    "{} is in the data set but not in the split (the data changed?)",
                    item.path.display()
                )));
            }
        }
        let listed = self.train.len() + self.val.len();
        if listed != dataset.train.len() {
            let known: BTreeSet<PathBuf> = dataset
                .train
                .iter()
                .map(|i| relative_to(&i.path, &dataset.root))
                .collect();
            let missing = self
                .train
                .iter()
                .chain(&self.val)
                .find(|p| !known.contains(*p))
                .map(|p| dataset.root.join(p).display().to_string())
                .unwrap_or_else(|| "an image".into());
            return Err(mismatch(format!(
                "{missing} is in the split but not among the data set's training images"
            )));
        }
        Ok((train_items, val_items))
    }
}

/// `path` relative to `root` when it lies below it, else `path` unchanged.
fn relative_to(path: &Path, root: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).to_path_buf()
}

//! Folder data set for users' own data: a folder of normal images, one or more folders of
//! anomalous images (each folder's name is its defect type), and an optional mask folder.
//!
//! Masks are matched to anomalous images by file stem, looked up as `MASKS/<defect>/<stem>_mask.*`,
//! `MASKS/<defect>/<stem>.*`, `MASKS/<stem>_mask.*` or `MASKS/<stem>.*`. Normal test images come
//! from a separate folder when given, otherwise a seeded share of the normal folder is held out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::split::seeded_holdout;
use super::{
    list_images, list_subdirs, name_of, require_dir, stem, Dataset, Finding, Item, Label, Part,
};
use crate::error::{Error, Result};

/// Default share of the normal folder held out as normal test images when no folder of normal
/// test images is given.
pub const DEFAULT_NORMAL_TEST_FRACTION: f64 = 0.2;

/// Where a folder data set's images are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FolderSpec {
    /// Data set name (defaults to the normal folder's parent's name).
    pub name: Option<String>,
    /// Folder of normal images.
    pub normal: PathBuf,
    /// Folders of anomalous images; each folder's name is its defect type.
    pub abnormal: Vec<PathBuf>,
    /// Optional folder of ground-truth masks.
    pub masks: Option<PathBuf>,
    /// Optional folder of normal test images; without it a share of `normal` is held out.
    pub normal_test: Option<PathBuf>,
    /// Share of `normal` held out for testing when `normal_test` is not given.
    pub normal_test_fraction: f64,
    /// Seed of that hold-out.
    pub seed: u64,
}

/// Discovers a folder data set.
pub fn open_folder(spec: &FolderSpec) -> Result<Dataset> {
    require_dir(&spec.normal, "folder of normal images")?;
    let mut ignored = Vec::new();
    let mut findings = Vec::new();
    let (normal, others) = list_images(&spec.normal)?;
    ignored.extend(others);
    if normal.is_empty() {
        return Err(Error::EmptyTrain {
            path: spec.normal.clone(),
        });
    }

    let (train_paths, normal_test_paths) = match &spec.normal_test {
        Some(dir) => {
            require_dir(dir, "folder of normal test images")?;
            if same_dir(dir, &spec.normal) {
                return Err(Error::InvalidSetting {
                    name: "normal_test".into(),
                    value: dir.display().to_string(),
                    reason: "is the folder of normal training images; test images must not be trained on".into(),
                });
            }
            let (images, others) = list_images(dir)?;
            ignored.extend(others);
            (normal, images)
        }
        None if spec.abnormal.is_empty() => (normal, Vec::new()),
        None => {
            seeded_holdout(&normal, spec.normal_test_fraction, spec.seed).map_err(|reason| {
                Error::InvalidSetting {
                    name: "normal_test_fraction".into(),
                    value: spec.normal_test_fraction.to_string(),
                    reason: format!(
                        "cannot hold out normal test images from {}: {reason}",
                        spec.normal.display()
                    ),
                }
            })?
        }
    };

    let mut masks = match &spec.masks {
        Some(dir) => {
            require_dir(dir, "folder of ground-truth masks")?;
            discover_masks(dir, &mut ignored)?
        }
        None => BTreeMap::new(),
    };
    let mut used_masks = BTreeSet::new();

    let normal_item = |path: PathBuf, part| Item {
        path,
        part,
        label: Label::Normal,
        defect: "good".into(),
        mask: None,
    };
    let train: Vec<Item> = train_paths
        .into_iter()
        .map(|p| normal_item(p, Part::Train))
        .collect();
    let mut test: Vec<Item> = normal_test_paths
        .into_iter()
        .map(|p| normal_item(p, Part::Test))
        .collect();

    for dir in &spec.abnormal {
        require_dir(dir, "folder of anomalous images")?;
        let defect = name_of(dir, "anomaly");
        let (images, others) = list_images(dir)?;
        ignored.extend(others);
        if images.is_empty() {
            findings.push(Finding::warning(
                dir,
                "folder of anomalous images holds no image",
            ));
        }
        for path in images {
            let image_stem = stem(&path);
            let mask = [
                (Some(defect.clone()), image_stem.clone()),
                (None, image_stem.clone()),
            ]
            .into_iter()
            .find_map(|key| masks.get(&key).cloned());
            if let Some(m) = &mask {
                used_masks.insert(m.clone());
            } else if spec.masks.is_some() {
                findings.push(Finding::warning(
                    &path,
                    "no ground-truth mask found; pixel metrics skip this image",
                ));
            }
            test.push(Item {
                path,
                part: Part::Test,
                label: Label::Anomaly,
                defect: defect.clone(),
                mask,
            });
        }
    }
    masks.retain(|_, m| !used_masks.contains(m));
    for mask in masks.into_values() {
        findings.push(Finding::error(
            &mask,
            "mask with no image (no anomalous image has this stem)",
        ));
    }

    let name = spec.name.clone().unwrap_or_else(|| {
        spec.normal
            .canonicalize()
            .ok()
            .and_then(|p| {
                p.parent()
                    .and_then(|q| q.file_name())
                    .map(|n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "folder".into())
    });
    // The folder above the normal images ("." for a bare relative name), never an empty path.
    let root = match spec.normal.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok(Dataset {
        name,
        root,
        train,
        test,
        findings,
        ignored,
    })
}

/// Whether two paths name the same folder.
fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// Masks in `dir` and its sub-folders, keyed by (sub-folder name, image stem); masks directly in
/// `dir` have no sub-folder. A `_mask` suffix on the stem is dropped.
fn discover_masks(
    dir: &Path,
    ignored: &mut Vec<PathBuf>,
) -> Result<BTreeMap<(Option<String>, String), PathBuf>> {
    let mut masks = BTreeMap::new();
    let mut add = |sub: Option<String>, files: Vec<PathBuf>| {
        for mask in files {
            let s = stem(&mask);
            let image_stem = s.strip_suffix("_mask").unwrap_or(&s).to_string();
            masks.entry((sub.clone(), image_stem)).or_insert(mask);
        }
    };
    let (top, others) = list_images(dir)?;
    ignored.extend(others);
    add(None, top);
    for sub in list_subdirs(dir)? {
        let name = Some(name_of(&sub, ""));
        let (files, others) = list_images(&sub)?;
        ignored.extend(others);
        add(name, files);
    }
    Ok(masks)
}

//! MVTec AD category discovery (SPEC §2): `train/good`, `test/good`, `test/<defect>` and
//! `ground_truth/<defect>/<stem>_mask.png`. Unrelated files and extra folders are ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    list_images, list_subdirs, name_of, require_dir, stem, Dataset, Finding, Item, Label, Part,
};
use crate::error::{Error, Result};

/// Name of the folder of normal images in `train/` and `test/`.
pub const GOOD: &str = "good";

/// Whether `dir` looks like an MVTec AD category (it has a `train/` folder).
pub fn is_category(dir: &Path) -> bool {
    dir.join("train").is_dir()
}

/// The category folders to use: `root/category` when a category is named, `root` itself when it
/// is a category, otherwise every category folder below `root`.
pub fn category_dirs(root: &Path, category: Option<&str>) -> Result<Vec<PathBuf>> {
    require_dir(root, "data set root")?;
    let subdirs = || -> Result<Vec<PathBuf>> {
        Ok(list_subdirs(root)?
            .into_iter()
            .filter(|d| is_category(d))
            .collect())
    };
    if let Some(name) = category {
        let dir = root.join(name);
        if dir.is_dir() {
            return Ok(vec![dir]);
        }
        if is_category(root) && root.file_name().is_some_and(|n| n == name) {
            return Ok(vec![root.to_path_buf()]);
        }
        let available: Vec<String> = subdirs()?.iter().map(|d| name_of(d, "")).collect();
        return Err(Error::UnknownCategory {
            path: dir,
            available: if available.is_empty() {
                "none".into()
            } else {
                available.join(", ")
            },
        });
    }
    if is_category(root) {
        return Ok(vec![root.to_path_buf()]);
    }
    let found = subdirs()?;
    if found.is_empty() {
        return Err(Error::NotADataset {
            path: root.to_path_buf(),
        });
    }
    Ok(found)
}

/// Where the MVTec layout expects the mask of `test/<defect>/<stem>.<ext>`.
pub fn mask_path(category_dir: &Path, defect: &str, image: &Path) -> PathBuf {
    category_dir
        .join("ground_truth")
        .join(defect)
        .join(format!("{}_mask.png", stem(image)))
}

/// Discovers one MVTec AD category. Fails when the folder, `train/good` or its images are
/// missing; everything else it notices (masks without an image, anomalies without a mask, extra
/// folders) is recorded as a [`Finding`].
pub fn open_category(dir: &Path) -> Result<Dataset> {
    require_dir(dir, "MVTec AD category")?;
    let train_dir = dir.join("train");
    require_dir(
        &train_dir,
        "MVTec AD layout needs train/good with the normal images",
    )?;
    let good_dir = train_dir.join(GOOD);
    require_dir(
        &good_dir,
        "MVTec AD layout needs train/good with the normal images",
    )?;

    let mut findings = Vec::new();
    let mut ignored = Vec::new();
    let (train_images, others) = list_images(&good_dir)?;
    ignored.extend(others);
    if train_images.is_empty() {
        return Err(Error::EmptyTrain { path: good_dir });
    }
    for extra in list_subdirs(&train_dir)?
        .into_iter()
        .filter(|d| d.file_name().is_some_and(|n| n != GOOD))
    {
        findings.push(Finding::warning(
            &extra,
            "ignored: only train/good is used for training",
        ));
    }
    let train = train_images
        .into_iter()
        .map(|path| Item {
            path,
            part: Part::Train,
            label: Label::Normal,
            defect: GOOD.into(),
            mask: None,
        })
        .collect();

    let mut test = Vec::new();
    let test_dir = dir.join("test");
    // Masks found under ground_truth/, keyed by path; those matched to an image are removed.
    let mut masks = discover_masks(&dir.join("ground_truth"), &mut ignored)?;
    if test_dir.is_dir() {
        let mut defect_dirs = list_subdirs(&test_dir)?;
        // Normal test images first, then the defect types in name order.
        defect_dirs.sort_by_key(|d| d.file_name().is_none_or(|n| n != GOOD));
        for defect_dir in defect_dirs {
            let defect = name_of(&defect_dir, "");
            let (images, others) = list_images(&defect_dir)?;
            ignored.extend(others);
            let label = if defect == GOOD {
                Label::Normal
            } else {
                Label::Anomaly
            };
            for path in images {
                let mut mask = None;
                if label == Label::Anomaly {
                    let key = (defect.clone(), stem(&path));
                    if let Some(found) = masks.remove(&key) {
                        mask = Some(found);
                    } else {
                        let expected = mask_path(dir, &defect, &path);
                        findings.push(Finding::warning(
                            &path,
                            format!(
                                "no ground-truth mask (expected {}); pixel metrics skip this image",
                                expected.display()
                            ),
                        ));
                    }
                }
                test.push(Item {
                    path,
                    part: Part::Test,
                    label,
                    defect: defect.clone(),
                    mask,
                });
            }
        }
    } else {
        findings.push(Finding::warning(
            &test_dir,
            "no test folder: the category can be trained on but not evaluated",
        ));
    }
    for ((defect, image_stem), mask) in masks {
        let image = dir
            .join("test")
            .join(&defect)
            .join(format!("{image_stem}.png"));
        findings.push(Finding::error(
            &mask,
            format!("mask with no image (expected {})", image.display()),
        ));
    }
    Ok(Dataset {
        name: name_of(dir, "dataset"),
        root: dir.to_path_buf(),
        train,
        test,
        findings,
        ignored,
    })
}

/// Every mask image under `ground_truth/<defect>/`, keyed by defect and the stem of the image it
/// belongs to (`000_mask.png` belongs to `000`).
fn discover_masks(
    gt_dir: &Path,
    ignored: &mut Vec<PathBuf>,
) -> Result<BTreeMap<(String, String), PathBuf>> {
    let mut masks = BTreeMap::new();
    if !gt_dir.is_dir() {
        return Ok(masks);
    }
    for defect_dir in list_subdirs(gt_dir)? {
        let defect = name_of(&defect_dir, "");
        let (images, others) = list_images(&defect_dir)?;
        ignored.extend(others);
        for mask in images {
            let mask_stem = stem(&mask);
            let image_stem = mask_stem.strip_suffix("_mask").unwrap_or(&mask_stem);
            masks.insert((defect.clone(), image_stem.to_string()), mask);
        }
    }
    Ok(masks)
}

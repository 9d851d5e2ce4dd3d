//! Data layer (SPEC §2): data set discovery, image decoding, the train/val split, the synthetic
//! generator and the data-set checker.
//!
//! Data flow: [`mvtec`] or [`folder`] discovers a [`Dataset`] (paths and labels, nothing decoded),
//! [`split`] divides its normal training images into train/val, [`image_io`] decodes images into
//! CHW `f32` buffers, and [`check`] decodes everything once to report problems.

pub mod anomaly;
pub mod augment;
pub mod check;
pub mod folder;
pub mod image_io;
pub mod loader;
pub mod mvtec;
pub mod split;
pub mod synth;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// File extensions (lower case) that are read as images.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Ground truth of an image: normal (0) or anomalous (1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    /// A defect-free image (label 0).
    Normal,
    /// An image with a defect (label 1).
    Anomaly,
}

impl Label {
    /// The numeric label: 0 normal, 1 anomaly.
    pub fn as_u8(self) -> u8 {
        match self {
            Label::Normal => 0,
            Label::Anomaly => 1,
        }
    }
}

/// Which part of a data set an item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// Normal images for training (later split into train/val).
    Train,
    /// Held-out images, normal and anomalous, for evaluation only.
    Test,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Part::Train => "train",
            Part::Test => "test",
        })
    }
}

/// One image of a data set: where it is and what it is. Nothing is decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Path of the image file.
    pub path: PathBuf,
    /// Train or test.
    pub part: Part,
    /// Normal or anomaly.
    pub label: Label,
    /// Defect type (`good` for normal images).
    pub defect: String,
    /// Ground-truth mask, when there is one (anomalies only).
    pub mask: Option<PathBuf>,
}

/// A discovered data set: its items plus what discovery noticed on the way.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Category or data-set name.
    pub name: String,
    /// Root folder of the data set (paths in a saved split are relative to it).
    pub root: PathBuf,
    /// Normal training images, sorted by path.
    pub train: Vec<Item>,
    /// Test images (normal and anomalous), sorted by defect type then path.
    pub test: Vec<Item>,
    /// Non-fatal findings of discovery, each naming a file.
    pub findings: Vec<Finding>,
    /// Files that were skipped because they are not images (licence files, `.DS_Store`, ...).
    pub ignored: Vec<PathBuf>,
}

impl Dataset {
    /// All items, train first.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.train.iter().chain(self.test.iter())
    }

    /// Test items with a defect.
    pub fn defects(&self) -> impl Iterator<Item = &Item> {
        self.test.iter().filter(|i| i.label == Label::Anomaly)
    }
}

/// How serious a finding is: errors make `data check` fail, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; the data can still be used.
    Warning,
    /// The data is broken here and must be fixed.
    Error,
}

/// A problem found in a data set, naming the file concerned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// The file or folder concerned.
    pub path: PathBuf,
    /// What is wrong, in words.
    pub message: String,
}

impl Finding {
    /// An error about `path`.
    pub fn error(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
        }
    }

    /// A warning about `path`.
    pub fn warning(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tag = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{tag}: {}: {}", self.path.display(), self.message)
    }
}

/// Whether `path` has an image extension (case-insensitive) and is not a hidden file.
pub fn is_image_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'));
    let ext_ok = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
    !hidden && ext_ok
}

/// Lists the entries of `dir`: image files and the other (ignored) files, both sorted.
/// Sub-folders are not descended into.
pub fn list_images(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut images = Vec::new();
    let mut others = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        if path.is_dir() {
            continue;
        }
        if is_image_file(&path) {
            images.push(path);
        } else {
            others.push(path);
        }
    }
    images.sort();
    others.sort();
    Ok((images, others))
}

/// Sorted sub-folders of `dir` (hidden ones skipped).
pub(crate) fn list_subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let path = entry.path();
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if path.is_dir() && !hidden {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// Last component of `path` as a string, or `fallback` when there is none.
pub(crate) fn name_of(path: &Path, fallback: &str) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| fallback.to_string())
}

/// File stem as a string (empty when there is none).
pub fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Fails with [`Error::MissingDir`] when `dir` is not a folder.
pub(crate) fn require_dir(dir: &Path, what: &str) -> Result<()> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(Error::MissingDir {
            path: dir.to_path_buf(),
            what: what.to_string(),
        })
    }
}

/// Opens one MVTec AD category: `path` itself, or `path/category` under a root of categories.
/// Fails, listing what was found, when `path` holds several categories and none is named.
pub fn open_dataset(path: &Path, category: Option<&str>) -> Result<Dataset> {
    let dirs = mvtec::category_dirs(path, category)?;
    match dirs.as_slice() {
        [dir] => mvtec::open_category(dir),
        _ => Err(Error::Unusable(format!(
            "{}: {} categories found ({}); name one",
            path.display(),
            dirs.len(),
            dirs.iter()
                .map(|d| name_of(d, "?"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The image files named by `paths`: files as given, folders expanded to their images (sorted).
/// Fails naming a path that does not exist or a folder without images.
pub fn collect_image_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let (found, _) = list_images(path)?;
            if found.is_empty() {
                return Err(Error::file(path, "no images in this folder"));
            }
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(Error::file(path, "no such file or folder"));
        }
    }
    Ok(files)
}

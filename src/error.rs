//! Error types: every data error names the file or folder it is about.

use std::path::PathBuf;

/// A problem with input data, always naming the path concerned.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A folder the data set needs does not exist.
    #[error("{path}: folder not found ({what})")]
    MissingDir { path: PathBuf, what: String },

    /// The folder of normal training images holds no image.
    #[error(
        "{path}: no images found (png, jpg or jpeg); training needs at least one normal image"
    )]
    EmptyTrain { path: PathBuf },

    /// The path is neither an MVTec AD category nor a folder of categories.
    #[error("{path}: not an MVTec AD category (no train/good folder) nor a folder of categories")]
    NotADataset { path: PathBuf },

    /// A category asked for by name is not under the root.
    #[error("{path}: category folder not found (available: {available})")]
    UnknownCategory { path: PathBuf, available: String },

    /// Reading or writing a file or listing a folder failed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An image could not be decoded (corrupt, truncated or unsupported).
    #[error("{path}: cannot decode image: {source}")]
    Decode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },

    /// An image has a pixel format reconad cannot use.
    #[error("{path}: unsupported pixel format {format}")]
    UnsupportedFormat { path: PathBuf, format: String },

    /// A mask's size differs from the size of its image.
    #[error("{mask}: mask is {mask_w}x{mask_h} but its image {image} is {image_w}x{image_h}")]
    MaskSizeMismatch {
        mask: PathBuf,
        image: PathBuf,
        mask_w: u32,
        mask_h: u32,
        image_w: u32,
        image_h: u32,
    },

    /// A JSON file could not be parsed.
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// A saved train/val split does not match the data set.
    #[error("{path}: split does not match the data set: {reason}")]
    SplitMismatch { path: PathBuf, reason: String },

    /// A setting is out of its valid range.
    #[error("invalid setting {name} = {value}: {reason}")]
    InvalidSetting {
        name: &'static str,
        value: String,
        reason: String,
    },

    /// Refusing to overwrite something that already exists.
    #[error("{path}: already exists ({hint})")]
    AlreadyExists { path: PathBuf, hint: String },
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Result alias for data operations.
pub type DataResult<T> = Result<T, DataError>;

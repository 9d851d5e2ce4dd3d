//! The library's one error type. Every variant names what it is about: the file or folder, or
//! the setting and its allowed range. The command line turns it into one line and exit code 1;
//! `anyhow` is only used there.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in reconad, naming the path or setting concerned.
#[derive(Debug, thiserror::Error)]
pub enum Error {
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
        name: String,
        value: String,
        reason: String,
    },

    /// Refusing to overwrite something that already exists.
    #[error("{path}: already exists ({hint})")]
    AlreadyExists { path: PathBuf, hint: String },

    /// A file or folder reconad cannot use as it is (not a run directory, an unsupported format
    /// version, a missing piece, content that contradicts the rest).
    #[error("{path}: {problem}")]
    File { path: PathBuf, problem: String },

    /// A model architecture or input that does not fit.
    #[error(transparent)]
    Model(#[from] ModelError),

    /// A compute backend that is not compiled in.
    #[error(transparent)]
    Backend(#[from] BackendUnavailable),

    /// The data at hand cannot do what was asked (e.g. a validation set without both classes).
    #[error("{0}")]
    Unusable(String),

    /// A failure inside the tensor framework (serialising weights, reading a tensor).
    #[error("{what}: {detail}")]
    Framework { what: String, detail: String },

    /// An error with what was being done when it happened.
    #[error("{context} — {inner}")]
    Context { context: String, inner: Box<Error> },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// A problem with the file or folder `path`.
    pub fn file(path: impl AsRef<Path>, problem: impl Into<String>) -> Self {
        Self::File {
            path: path.as_ref().to_path_buf(),
            problem: problem.into(),
        }
    }

    /// A setting out of range: its name, the value given, and what is allowed.
    pub fn setting(
        name: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Self::InvalidSetting {
            name: name.into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// A framework failure while doing `what`.
    pub fn framework(what: impl Into<String>, detail: impl std::fmt::Debug) -> Self {
        Self::Framework {
            what: what.into(),
            detail: format!("{detail:?}"),
        }
    }

    /// This error with `context` (what was being done) in front.
    pub fn context(self, context: impl Into<String>) -> Self {
        Self::Context {
            context: context.into(),
            inner: Box::new(self),
        }
    }
}

/// A problem with a model's configuration or input.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The preset name is not known.
    #[error("unknown preset '{0}' (valid: tiny, small, default)")]
    UnknownPreset(String),
    /// The architecture is not valid.
    #[error("invalid model configuration: {0}")]
    InvalidConfig(String),
    /// The input does not fit the model.
    #[error("input of size {height}x{width}: {reason}")]
    BadInput {
        height: usize,
        width: usize,
        reason: String,
    },
}

/// The backend asked for was not compiled in.
#[derive(Debug, thiserror::Error)]
#[error("backend '{asked}' is not compiled into this binary (available: {available}); rebuild with `cargo build --release --features {asked}`")]
pub struct BackendUnavailable {
    /// The backend asked for.
    pub asked: &'static str,
    /// The backends compiled in, comma-separated.
    pub available: String,
}

/// Result alias of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `.context(..)` / `.with_context(..)` on library results and options, as with `anyhow`.
pub trait Context<T> {
    /// Adds what was being done (or, on `None`, says what was missing).
    fn context(self, context: impl Into<String>) -> Result<T>;
    /// [`Context::context`] with a lazily built message.
    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T>;
}

impl<T> Context<T> for Result<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| e.context(context))
    }
    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| e.context(f()))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.ok_or_else(|| Error::Unusable(context.into()))
    }
    fn with_context<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.ok_or_else(|| Error::Unusable(f().into()))
    }
}

/// Returns early with an [`Error::File`] about `path`: `fail_file!(path, "format {}", x)`.
macro_rules! fail_file {
    ($path:expr, $($fmt:tt)+) => {
        return Err($crate::error::Error::file(&$path, format!($($fmt)+)))
    };
}

/// Returns early with an [`Error::Unusable`]: `fail!("no images in {}", what)`.
macro_rules! fail {
    ($($fmt:tt)+) => {
        return Err($crate::error::Error::Unusable(format!($($fmt)+)))
    };
}

pub(crate) use {fail, fail_file};

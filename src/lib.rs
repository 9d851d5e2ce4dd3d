//! reconad: unsupervised visual anomaly detection for industrial inspection.
//!
//! A U-Net convolutional autoencoder is trained on normal images only; images (and pixels) that
//! it reconstructs badly are flagged with a score, a 0/1 label and a heat map. The modules are
//! the pipeline, top to bottom (each uses only those below it):
//!
//! - [`pipeline`]: the verbs as library calls (train and calibrate, ensembles, the demo);
//! - [`eval`]: evaluation on a test set and prediction on files;
//! - [`calibrate`]: the one place that fits scoring on validation data;
//! - [`detector`]: a trained model or an ensemble, opened from disk, scoring images;
//! - [`train`]: training, which owns its run directory;
//! - [`score`]: sliding windows, error maps, fusion, the scoring profile;
//! - [`model`]: the network, its loss and weights;
//! - [`data`]: data sets, split, augmentation, synthetic anomalies and data;
//! - [`image`], [`metrics`], [`report`], [`util`], [`error`], [`device`]: shared ground.
//!
//! The common uses need only the re-exports below:
//!
//! ```no_run
//! use reconad::{open_detector, Backend};
//! # fn main() -> reconad::Result<()> {
//! let detector = open_detector("runs/bottle".as_ref(), Backend::Cpu)?;
//! let image = detector.load_image("part.png".as_ref())?;
//! let scored = detector.score(vec![image])?;
//! println!("score {} (anomalous from {})", scored[0].score, detector.threshold());
//! # Ok(())
//! # }
//! ```

pub mod bench;
pub mod calibrate;
pub mod data;
pub mod detector;
pub mod device;
pub mod error;
pub mod eval;
pub mod image;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod report;
pub mod score;
pub mod train;
pub mod util;

/// Default seed of every random choice (split, synthetic data, training).
pub const DEFAULT_SEED: u64 = 42;

pub use data::{list_images, open_dataset};
pub use detector::{open as open_detector, ScoredImage, Scorer};
pub use device::Backend;
pub use error::{Error, Result};
pub use eval::{evaluate, predict, EvalMetrics, EvalOptions, Prediction};
pub use image::{ChwImage, Size};
pub use pipeline::{train_and_calibrate, Trained};
pub use train::{DataRef, RunDir, TrainConfig, TrainOptions};
pub use util::progress::{NoProgress, Progress};

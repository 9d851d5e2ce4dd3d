//! reconad: unsupervised visual anomaly detection for industrial inspection.
//!
//! A U-Net convolutional autoencoder is trained on normal images only; images (and pixels) that it
//! reconstructs badly are flagged. The modules follow the pipeline:
//! [`data`] (data sets, split, synthetic data, checks) → model → training → scoring → evaluation.

pub mod calibrate;
pub mod cli;
pub mod data;
pub mod device;
pub mod ensemble;
pub mod error;
pub mod eval;
pub mod fsutil;
pub mod inference;
pub mod metrics;
pub mod model;
pub mod report;
pub mod run;
pub mod score;
pub mod train;
pub mod window;

/// Default seed of every random choice (split, synthetic data, training).
pub const DEFAULT_SEED: u64 = 42;

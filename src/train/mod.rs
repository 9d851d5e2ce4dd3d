//! Training (SPEC §4): a U-Net autoencoder fitted on the normal training images of a data set,
//! minus a seeded validation split, into a run directory it owns ([`run_dir`]): settings
//! ([`config`], read from files by [`config_file`]), the loop ([`trainer`]), the CutPaste-val
//! early stopping ([`validate`]) and resumable checkpoints ([`checkpoint`]); optionally a second
//! stage, the discriminative head ([`head`]). Training knows nothing of scoring or evaluation;
//! `pipeline::train_and_calibrate` calibrates a finished run.

pub mod checkpoint;
pub mod config;
pub mod config_file;
pub mod head;
pub mod run_dir;
pub mod trainer;
pub mod validate;

pub use config::{KeepWeights, LrSchedule, OptimizerConfig, TrainConfig};
pub use config_file::load_config_file;
pub use run_dir::{DataRef, RunConfig, RunDir, TrainState};
pub use trainer::{resume, train_new};

use crate::util::progress::{NoProgress, Progress};

/// How to run a training.
#[derive(Clone, Copy)]
pub struct TrainOptions<'a> {
    /// Where epoch progress goes.
    pub progress: &'a dyn Progress,
    /// Stop after this many epochs of this invocation (for tests of resuming); `None` = no limit.
    pub max_epochs_this_call: Option<usize>,
}

impl TrainOptions<'static> {
    /// No progress output, no epoch limit.
    pub fn quiet() -> Self {
        Self {
            progress: &NoProgress,
            max_epochs_this_call: None,
        }
    }
}

/// What a finished (or paused) training run reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Final state.
    pub state: TrainState,
    /// Training images.
    pub train_images: usize,
    /// Validation images (normal).
    pub val_images: usize,
    /// Wall time of this invocation, seconds.
    pub seconds: f64,
    /// Training images processed per second in this invocation (augmented samples).
    pub images_per_second: f64,
    /// The discriminative head's stage, when the run has one and it has started.
    pub head: Option<head::HeadState>,
}

impl TrainSummary {
    /// Whether the run is over: the autoencoder and, when the run has one, the head.
    pub fn finished(&self) -> bool {
        self.state.finished && self.head.as_ref().is_none_or(|h| h.finished)
    }
}

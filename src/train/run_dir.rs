//! A training run's directory (SPEC §4), owned by the trainer: `config.json` (every setting, the
//! seed included), `split.json`, `env.json`, `history.csv`, the best and last weights
//! (`model-best.safetensors`, `model-last.safetensors`, see `model::weights`) and the
//! resumable checkpoint (`checkpoint/`, see [`super::checkpoint`]); with a discriminative head,
//! `head.safetensors` and its checkpoint (see [`super::head`]). Every file is written
//! atomically. Scoring adds `scoring.json` later; the trainer never reads it.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::config::{KeepWeights, TrainConfig};
use super::config_file::fill_legacy_run_fields;
use crate::data::augment::Corruption;
use crate::data::folder::{open_folder, FolderSpec};
use crate::data::mvtec::open_category;
use crate::data::Dataset;
use crate::device::{Backend, BURN_VERSION};
use crate::error::{fail_file, Error, Result};
use crate::model::unet::UNetConfig;
use crate::util::fs::{read_json, write_json_atomic};

/// Version of the run directory format.
pub const RUN_FORMAT_VERSION: u32 = 1;

/// Where the training data came from, so a resumed run reopens the same data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DataRef {
    /// An MVTec AD category folder.
    Mvtec {
        /// The category folder.
        category_dir: PathBuf,
    },
    /// A folder data set.
    Folder(FolderSpec),
}

impl DataRef {
    /// Reopens the data set this reference names.
    pub fn open(&self) -> Result<Dataset> {
        Ok(match self {
            DataRef::Mvtec { category_dir } => open_category(category_dir)?,
            DataRef::Folder(spec) => open_folder(spec)?,
        })
    }
}

/// Everything `config.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunConfig {
    /// Run format version.
    pub format: u32,
    /// reconad version that made the run.
    pub reconad: String,
    /// The data.
    pub data: DataRef,
    /// Training settings (the seed included).
    pub train: TrainConfig,
    /// The resolved architecture.
    pub model: UNetConfig,
}

impl RunConfig {
    /// One line saying what the run trains: input mode, architecture (skips included), loss,
    /// schedule (its epochs on `train_images` images) and which weights it keeps. Logged when
    /// training starts, so that a settings file that trains something else than intended shows
    /// at once.
    pub fn describe(&self, train_images: usize) -> String {
        let t = &self.train;
        let m = &self.model;
        let input = match t.whole_image_size() {
            Some(side) => format!("whole images at {side} px"),
            None => format!(
                "crops of {:?} px from rescales {}-{} px",
                t.augment.input_sizes, t.augment.rescale.0, t.augment.rescale.1
            ),
        };
        let skips = match m.disabled_skips.len() {
            0 => "all skips on".to_string(),
            n if n >= m.depth() => "no skips".to_string(),
            _ => format!("skips off at levels {:?}", m.disabled_skips),
        };
        let epochs = t.epochs_for(train_images);
        let epochs = if epochs > t.epochs {
            format!(
                "{epochs} epochs ({} raised to reach {} optimizer steps)",
                t.epochs, t.min_steps
            )
        } else {
            format!("{epochs} epochs")
        };
        let widths: Vec<String> = m.widths.iter().map(|w| w.to_string()).collect();
        let corruption = match t.augment.corruption {
            Corruption::None => "clean inputs",
            Corruption::Gaussian { .. } => "noisy inputs",
            Corruption::Mask { .. } => "masked inputs",
            Corruption::Restoration(_) => "restoration inputs",
        };
        let head = match &t.head {
            Some(h) => format!(
                "; then a discriminative head (widths {:?}, {} steps)",
                h.arch.widths, h.steps
            ),
            None => String::new(),
        };
        format!(
            "{input}, {corruption}; U-Net widths {} bottleneck {}, {skips}; \
             loss MSE + {}·(1 − SSIM); batch {}, {epochs}, lr {} {}; scored with the {} epoch; seed {}{head}",
            widths.join("-"),
            m.bottleneck,
            t.loss.ssim_weight,
            t.batch_size,
            t.optimizer.lr,
            t.optimizer.schedule.name(),
            match t.keep {
                KeepWeights::Last => "last",
                KeepWeights::Best => "best CutPaste-val",
            },
            t.seed,
        )
    }
}

/// The environment a run ran in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EnvRecord {
    /// reconad version.
    pub reconad: String,
    /// burn version.
    pub burn: String,
    /// Backend name.
    pub backend: String,
    /// Device description.
    pub device: String,
    /// Compiler that built the binary.
    pub rustc: String,
    /// Operating system.
    pub os: String,
    /// CPU model.
    pub cpu: String,
    /// Worker threads.
    pub threads: usize,
    /// GPU, if the backend uses one.
    pub gpu: Option<String>,
}

impl EnvRecord {
    /// Describes this process's environment.
    pub fn current(backend: Backend, device: &burn::tensor::Device) -> Self {
        let os_release = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    l.strip_prefix("PRETTY_NAME=")
                        .map(|v| v.trim_matches('"').to_string())
                })
            });
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines().find_map(|l| {
                    l.strip_prefix("model name")
                        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
                })
            })
            .unwrap_or_else(|| std::env::consts::ARCH.to_string());
        Self {
            reconad: env!("CARGO_PKG_VERSION").into(),
            burn: BURN_VERSION.into(),
            backend: backend.name().into(),
            device: format!("{device:?}"),
            rustc: env!("RECONAD_RUSTC_VERSION").into(),
            os: format!(
                "{} {}{}",
                std::env::consts::OS,
                std::env::consts::ARCH,
                os_release.map(|r| format!(" ({r})")).unwrap_or_default()
            ),
            cpu,
            threads: rayon::current_num_threads(),
            gpu: (backend != Backend::Cpu).then(|| format!("{device:?}")),
        }
    }
}

/// One line of `history.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// Epoch (1-based).
    pub epoch: usize,
    /// Mean training loss of the epoch.
    pub train_loss: f64,
    /// CutPaste-val image AUROC, on evaluation epochs.
    pub val_auroc: Option<f64>,
    /// AUROC of the normal images against the CutPaste patches only.
    pub val_auroc_cutpaste: Option<f64>,
    /// AUROC of the normal images against the scars only.
    pub val_auroc_scar: Option<f64>,
    /// Wall time of the epoch (training and evaluation), seconds.
    pub seconds: f64,
}

/// Training progress saved with each checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Best CutPaste-val AUROC so far.
    pub best_auroc: Option<f64>,
    /// Epoch of the best AUROC.
    pub best_epoch: Option<usize>,
    /// Evaluations since the best one.
    pub evals_since_best: usize,
    /// Whether training is over (early stop or last epoch).
    pub finished: bool,
    /// Every epoch so far.
    pub history: Vec<HistoryRow>,
    /// Weight file of the last completed epoch (relative to the checkpoint folder).
    pub model_file: String,
    /// Optimizer file of the last completed epoch.
    pub optimizer_file: String,
}

impl TrainState {
    /// Training wall time over every epoch so far (all sessions of a resumed run), seconds.
    pub fn train_seconds(&self) -> f64 {
        self.history.iter().map(|h| h.seconds).sum()
    }
}

/// Paths inside a run directory.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The run folder.
    pub root: PathBuf,
}

impl RunDir {
    /// A run directory at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `config.json`.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    /// `split.json`.
    pub fn split(&self) -> PathBuf {
        self.root.join("split.json")
    }
    /// `env.json`.
    pub fn env(&self) -> PathBuf {
        self.root.join("env.json")
    }
    /// `history.csv`.
    pub fn history(&self) -> PathBuf {
        self.root.join("history.csv")
    }
    /// Folder of the last checkpoint.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.root.join("checkpoint")
    }
    /// `checkpoint/state.json`.
    pub fn state(&self) -> PathBuf {
        self.checkpoint_dir().join("state.json")
    }
    /// `checkpoint/head-state.json`: progress of the discriminative head's stage.
    pub fn head_state(&self) -> PathBuf {
        self.checkpoint_dir().join("head-state.json")
    }
    /// Weights of the trained discriminative head.
    pub fn head_model(&self) -> PathBuf {
        self.root.join("head.safetensors")
    }
    /// Weights of the best evaluation.
    pub fn best_model(&self) -> PathBuf {
        self.root.join("model-best.safetensors")
    }
    /// Weights of the last epoch.
    pub fn last_model(&self) -> PathBuf {
        self.root.join("model-last.safetensors")
    }
    /// The weights the run is scored with.
    pub fn scored_model(&self, keep: KeepWeights) -> PathBuf {
        match keep {
            KeepWeights::Best => self.best_model(),
            KeepWeights::Last => self.last_model(),
        }
    }

    /// Prepares the folder of a new run: it must not exist or be empty, unless `force`, which
    /// replaces an earlier run (only a folder holding a run's `config.json`).
    pub fn create(&self, force: bool) -> Result<()> {
        let occupied = self.root.is_dir()
            && std::fs::read_dir(&self.root)
                .map_err(|e| Error::io(&self.root, e))?
                .next()
                .is_some();
        if occupied {
            if !force {
                fail_file!(self.root, "run directory already exists; pass --resume to continue it or --force to replace it");
            }
            if !self.config().is_file() {
                fail_file!(
                    self.root,
                    "not replaced: it has no config.json, so it is not a reconad run"
                );
            }
            std::fs::remove_dir_all(&self.root).map_err(|e| Error::io(&self.root, e))?;
        } else if self.root.exists() && !self.root.is_dir() {
            fail_file!(self.root, "exists and is not a folder");
        }
        std::fs::create_dir_all(self.checkpoint_dir()).map_err(|e| Error::io(&self.root, e))?;
        Ok(())
    }

    /// Writes `config.json`.
    pub fn save_config(&self, config: &RunConfig) -> Result<()> {
        write_json_atomic(&self.config(), config)
    }

    /// Reads `config.json`, checking the format version.
    pub fn load_config(&self) -> Result<RunConfig> {
        if !self.config().is_file() {
            fail_file!(self.root, "no config.json: not a reconad run directory");
        }
        let mut value: serde_json::Value = read_json(&self.config())?;
        if let Some(train) = value.get_mut("train") {
            fill_legacy_run_fields(train);
        }
        let config: RunConfig = serde_json::from_value(value).map_err(|e| Error::Json {
            path: self.config(),
            source: e,
        })?;
        if config.format != RUN_FORMAT_VERSION {
            fail_file!(
                self.config(),
                "run format {} is not the supported format {RUN_FORMAT_VERSION}",
                config.format
            );
        }
        Ok(config)
    }

    /// Reads the last checkpoint's state, if a checkpoint was written.
    pub fn load_state(&self) -> Result<Option<TrainState>> {
        if !self.state().is_file() {
            return Ok(None);
        }
        Ok(Some(read_json(&self.state())?))
    }
}

/// `history.csv` text: `epoch,train_loss,val_auroc,val_auroc_cutpaste,val_auroc_scar,seconds`
/// (AUROC cells empty on epochs without evaluation).
pub fn history_csv(rows: &[HistoryRow]) -> String {
    let mut s =
        String::from("epoch,train_loss,val_auroc,val_auroc_cutpaste,val_auroc_scar,seconds\n");
    let cell = |v: Option<f64>| v.map(|a| format!("{a:.6}")).unwrap_or_default();
    for r in rows {
        s.push_str(&format!(
            "{},{:.8},{},{},{},{:.3}\n",
            r.epoch,
            r.train_loss,
            cell(r.val_auroc),
            cell(r.val_auroc_cutpaste),
            cell(r.val_auroc_scar),
            r.seconds
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_says_what_is_trained() {
        let run = |train: TrainConfig| RunConfig {
            format: RUN_FORMAT_VERSION,
            reconad: "test".into(),
            data: DataRef::Mvtec {
                category_dir: "bottle".into(),
            },
            model: train.model_config(3),
            train,
        };
        // Bottle's 188 training images: 24 steps an epoch, 40 epochs are 960 >= 720 steps.
        let default = run(TrainConfig::default()).describe(188);
        for part in [
            "whole images at 128 px",
            "clean inputs",
            "widths 16-32-64-128 bottleneck 256, no skips",
            "40 epochs, lr 0.001 cosine",
            "scored with the last epoch",
        ] {
            assert!(default.contains(part), "{part:?} not in {default:?}");
        }
        // A 43-image set: 6 steps an epoch, so 120 epochs reach 720 steps.
        let small = run(TrainConfig::default()).describe(43);
        assert!(
            small.contains("120 epochs (40 raised to reach 720 optimizer steps)"),
            "{small}"
        );
        let with_skips = run(TrainConfig {
            no_skips: false,
            keep: KeepWeights::Best,
            ..TrainConfig::default().with_image_size(64)
        })
        .describe(43);
        for part in [
            "all skips on",
            "best CutPaste-val epoch",
            "crops of [64] px",
        ] {
            assert!(with_skips.contains(part), "{part:?} not in {with_skips:?}");
        }
    }
}

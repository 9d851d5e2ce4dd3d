//! A training run's directory (SPEC §4): `config.json` (every setting, the seed included),
//! `split.json`, `env.json`, `history.csv`, and the checkpoints. Every file is written
//! atomically; `checkpoint/state.json` is written last and names the weight files of the last
//! completed epoch, so a run killed at any moment resumes from a consistent checkpoint.
//!
//! Published weights (`model-best.safetensors`, `model-last.safetensors`) are safetensors files
//! (tensor names are the module paths, e.g. `encoders.0.conv1.weight`), readable by any
//! safetensors tool. The resume checkpoint (model and optimizer) is in burn's burnpack format,
//! which keeps the parameter ids the optimizer state is keyed by.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::store::{ModuleRecord, ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};

use crate::data::folder::{open_folder, FolderSpec};
use crate::data::mvtec::open_category;
use crate::data::Dataset;
use crate::device::{Backend, BURN_VERSION};
use crate::fsutil::{read_json, write_atomic, write_json_atomic};
use crate::model::unet::{UNet, UNetConfig};
use crate::train::TrainConfig;

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
    /// Weights of the best evaluation.
    pub fn best_model(&self) -> PathBuf {
        self.root.join("model-best.safetensors")
    }
    /// Weights of the last epoch.
    pub fn last_model(&self) -> PathBuf {
        self.root.join("model-last.safetensors")
    }

    /// Prepares the folder of a new run: it must not exist or be empty, unless `force`, which
    /// replaces an earlier run (only a folder holding a run's `config.json`).
    pub fn create(&self, force: bool) -> Result<()> {
        let occupied = self.root.is_dir()
            && std::fs::read_dir(&self.root)
                .with_context(|| format!("{}: cannot list", self.root.display()))?
                .next()
                .is_some();
        if occupied {
            if !force {
                bail!(
                    "{}: run directory already exists; pass --resume to continue it or --force to replace it",
                    self.root.display()
                );
            }
            if !self.config().is_file() {
                bail!(
                    "{}: not replaced: it has no config.json, so it is not a reconad run",
                    self.root.display()
                );
            }
            std::fs::remove_dir_all(&self.root)
                .with_context(|| format!("{}: cannot remove", self.root.display()))?;
        } else if self.root.exists() && !self.root.is_dir() {
            bail!("{}: exists and is not a folder", self.root.display());
        }
        std::fs::create_dir_all(self.checkpoint_dir())
            .with_context(|| format!("{}: cannot create", self.root.display()))?;
        Ok(())
    }

    /// Writes `config.json`.
    pub fn save_config(&self, config: &RunConfig) -> Result<()> {
        Ok(write_json_atomic(&self.config(), config)?)
    }

    /// Reads `config.json`, checking the format version.
    pub fn load_config(&self) -> Result<RunConfig> {
        if !self.config().is_file() {
            bail!(
                "{}: no config.json: not a reconad run directory",
                self.root.display()
            );
        }
        let config: RunConfig = read_json(&self.config())?;
        if config.format != RUN_FORMAT_VERSION {
            bail!(
                "{}: run format {} is not the supported format {RUN_FORMAT_VERSION}",
                self.config().display(),
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

    /// Writes the checkpoint of a completed epoch: weights and optimizer under new names, then
    /// the state naming them, then history.csv and model-last; older checkpoint files go last.
    pub fn save_checkpoint(
        &self,
        model: &UNet,
        optimizer: &[u8],
        state: &mut TrainState,
    ) -> Result<()> {
        let dir = self.checkpoint_dir();
        state.model_file = format!("model-e{:04}.bpk", state.epochs_done);
        state.optimizer_file = format!("optimizer-e{:04}.bpk", state.epochs_done);
        write_atomic(&dir.join(&state.model_file), &checkpoint_bytes(model)?)?;
        write_atomic(&dir.join(&state.optimizer_file), optimizer)?;
        write_json_atomic(&self.state(), state)?;
        save_model(model, &self.last_model())?;
        write_atomic(&self.history(), history_csv(&state.history).as_bytes())?;
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("{}: cannot list", dir.display()))?
        {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let stale = (name.starts_with("model-e") || name.starts_with("optimizer-e"))
                && name != state.model_file
                && name != state.optimizer_file;
            if stale {
                let _ = std::fs::remove_file(dir.join(name));
            }
        }
        Ok(())
    }
}

/// Serialises a model for a training checkpoint (burnpack: it keeps the parameter ids, which the
/// optimizer state is keyed by).
pub fn checkpoint_bytes(model: &UNet) -> Result<Vec<u8>> {
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| anyhow::anyhow!("cannot serialise the model checkpoint: {e:?}"))?;
    Ok(bytes.to_vec())
}

/// Loads a training checkpoint written by [`checkpoint_bytes`] into `model`.
pub fn load_checkpoint(model: UNet, path: &Path) -> Result<UNet> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("{}: cannot read checkpoint", path.display()))?;
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| anyhow::anyhow!("{}: invalid checkpoint: {e:?}", path.display()))?;
    model.try_load_record(record).map_err(|e| {
        anyhow::anyhow!(
            "{}: checkpoint does not fit the model: {e:?}",
            path.display()
        )
    })
}

/// Serialises a model's weights as safetensors bytes.
pub fn model_bytes(model: &UNet) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None);
    model
        .save_into(&mut store)
        .map_err(|e| anyhow::anyhow!("cannot serialise the model: {e:?}"))?;
    store
        .get_bytes()
        .map_err(|e| anyhow::anyhow!("cannot serialise the model: {e:?}"))
}

/// Writes a model's weights to a safetensors file (atomically).
pub fn save_model(model: &UNet, path: &Path) -> Result<()> {
    Ok(write_atomic(path, &model_bytes(model)?)?)
}

/// Loads safetensors weights from `path` into `model` (whose architecture must match).
pub fn load_model(mut model: UNet, path: &Path) -> Result<UNet> {
    let bytes =
        std::fs::read(path).with_context(|| format!("{}: cannot read weights", path.display()))?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let result = model
        .load_from(&mut store)
        .map_err(|e| anyhow::anyhow!("{}: cannot load weights: {e:?}", path.display()))?;
    if !result.missing.is_empty() {
        bail!(
            "{}: weights do not match the architecture (missing: {})",
            path.display(),
            result
                .missing
                .iter()
                .map(|m| format!("{m:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(model)
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
    use crate::model::unet::Preset;
    use burn::prelude::*;

    #[test]
    fn published_weights_round_trip_and_reject_another_architecture() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let model = Preset::Tiny.config(3).init_seeded(&device, 1);
        save_model(&model, &path).unwrap();
        let loaded = load_model(Preset::Tiny.config(3).init_seeded(&device, 2), &path).unwrap();
        let x = Tensor::<4>::ones([1, 3, 8, 8], &device) * 0.4;
        let (a, b) = (
            model.forward(x.clone()).into_data(),
            loaded.forward(x).into_data(),
        );
        assert_eq!(a.as_slice::<f32>().unwrap(), b.as_slice::<f32>().unwrap());

        let other = Preset::Tiny
            .config(3)
            .with_widths(vec![4, 8, 16, 32])
            .init_seeded(&device, 0);
        let err = load_model(other, &path).unwrap_err();
        assert!(err.to_string().contains("model.safetensors"), "{err}");
    }
}

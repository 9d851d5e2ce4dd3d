//! Resumable training checkpoints: after every epoch the model and optimizer are written under
//! new names (burnpack, which keeps the parameter ids the optimizer state is keyed by), then
//! `checkpoint/state.json` naming them, then `history.csv` and `model-last.safetensors`; older
//! checkpoint files go last. A run killed at any moment resumes from a consistent checkpoint.

use std::path::Path;

use burn::module::Module;
use burn::store::ModuleRecord;

use super::run_dir::{history_csv, RunDir, TrainState};
use crate::error::{Error, Result};
use crate::model::unet::UNet;
use crate::model::weights::save_model;
use crate::util::fs::{write_atomic, write_json_atomic};

/// Writes the checkpoint of a completed epoch: weights and optimizer under new names, then
/// the state naming them, then history.csv and model-last; older checkpoint files go last.
pub fn save_checkpoint(
    run: &RunDir,
    model: &UNet,
    optimizer: &[u8],
    state: &mut TrainState,
) -> Result<()> {
    let dir = run.checkpoint_dir();
    state.model_file = format!("model-e{:04}.bpk", state.epochs_done);
    state.optimizer_file = format!("optimizer-e{:04}.bpk", state.epochs_done);
    write_atomic(&dir.join(&state.model_file), &checkpoint_bytes(model)?)?;
    write_atomic(&dir.join(&state.optimizer_file), optimizer)?;
    write_json_atomic(&run.state(), state)?;
    save_model(model, &run.last_model())?;
    write_atomic(&run.history(), history_csv(&state.history).as_bytes())?;
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let name = entry
            .map_err(|e| Error::io(&dir, e))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        let stale = (name.starts_with("model-e") || name.starts_with("optimizer-e"))
            && name != state.model_file
            && name != state.optimizer_file;
        if stale {
            let _ = std::fs::remove_file(dir.join(name));
        }
    }
    Ok(())
}

/// Serialises a model for a training checkpoint (burnpack: it keeps the parameter ids, which the
/// optimizer state is keyed by).
pub fn checkpoint_bytes<M: Module>(model: &M) -> Result<Vec<u8>> {
    // BatchNorm's running statistics hold the last forward pass's update aside until they are
    // synchronised; `valid` does that in place (the state is shared), so the record has it and a
    // resumed run continues from exactly where the uninterrupted one is.
    let _ = model.valid();
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| Error::framework("cannot serialise the model checkpoint", e))?;
    Ok(bytes.to_vec())
}

/// Loads a training checkpoint written by [`checkpoint_bytes`] into `model`.
pub fn load_checkpoint<M: Module>(model: M, path: &Path) -> Result<M> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| Error::file(path, format!("invalid checkpoint: {e:?}")))?;
    model
        .try_load_record(record)
        .map_err(|e| Error::file(path, format!("checkpoint does not fit the model: {e:?}")))
}

//! Published weights: safetensors files whose tensor names are the module paths (e.g.
//! `encoders.0.conv1.weight`), readable by any safetensors tool.

use std::path::Path;

use burn::store::{ModuleSnapshot, SafetensorsStore};

use crate::error::{fail_file, Error, Result};
use crate::util::fs::write_atomic;
use burn::module::Module;

/// Serialises a model's weights as safetensors bytes.
pub fn model_bytes<M: Module>(model: &M) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None);
    model
        .save_into(&mut store)
        .map_err(|e| Error::framework("cannot serialise the model", e))?;
    store
        .get_bytes()
        .map_err(|e| Error::framework("cannot serialise the model", e))
}

/// Writes a model's weights to a safetensors file (atomically).
pub fn save_model<M: Module>(model: &M, path: &Path) -> Result<()> {
    write_atomic(path, &model_bytes(model)?)
}

/// Loads safetensors weights from `path` into `model` (whose architecture must match).
pub fn load_model<M: Module>(mut model: M, path: &Path) -> Result<M> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut store = SafetensorsStore::from_bytes(Some(bytes));
    let result = model
        .load_from(&mut store)
        .map_err(|e| Error::file(path, format!("cannot load weights: {e:?}")))?;
    if !result.missing.is_empty() {
        fail_file!(
            path,
            "weights do not match the architecture (missing: {})",
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

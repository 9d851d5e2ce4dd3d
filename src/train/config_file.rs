//! Training settings from files: a `--config` JSON file (any subset of the settings, the rest
//! today's defaults) and the settings a run's saved `config.json` lacks because it predates them.

use std::path::Path;

use crate::error::{Error, Result};

use super::config::TrainConfig;

/// Reads a `--config` JSON file of training settings (any subset of [`TrainConfig`]'s fields).
pub fn load_config_file(path: &Path) -> Result<TrainConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::file(path, format!("invalid training config: {e}")))?;
    // serde reads a struct from an array too (fields by position): `[1, 2]` would be seeds.
    if !value.is_object() {
        return Err(Error::file(
            path,
            "invalid training config: expected a JSON object of settings, e.g. {\"epochs\": 40}",
        ));
    }
    let mut config: TrainConfig = serde_json::from_value(value.clone())
        .map_err(|e| Error::file(path, format!("invalid training config: {e}")))?;
    // A file that names the epochs asks for exactly those, as `--epochs` does.
    if value.get("epochs").is_some() && value.get("min_steps").is_none() {
        config.min_steps = 0;
    }
    Ok(config)
}

/// Settings that runs made before they existed did not write, with what those runs did:
/// `(path in the train settings, value)`. A `--config` file without them gets today's defaults;
/// a run's `config.json` without them gets these ([`fill_legacy_run_fields`]).
const LEGACY_RUN_FIELDS: [(&[&str], &str); 5] = [
    (&["no_skips"], "false"),
    (&["head"], "null"),
    (&["min_steps"], "0"),
    (&["keep"], "\"best\""),
    (&["optimizer", "schedule"], "\"constant\""),
];

/// Fills the settings a run's saved `train` object (`config.json`) lacks because the run
/// predates them with the behaviour it had then, so that it resumes and scores as it trained.
pub fn fill_legacy_run_fields(train: &mut serde_json::Value) {
    for (path, value) in LEGACY_RUN_FIELDS {
        let (last, parents) = path.split_last().expect("non-empty path");
        let mut node = &mut *train;
        for key in parents {
            // A missing parent was not written either: its legacy field goes into a new one.
            let Some(map) = node.as_object_mut() else {
                return;
            };
            node = map.entry(*key).or_insert_with(|| serde_json::json!({}));
        }
        if let Some(map) = node.as_object_mut() {
            map.entry(*last)
                .or_insert_with(|| serde_json::from_str(value).expect("valid JSON literal"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::config::{KeepWeights, LrSchedule};

    #[test]
    fn a_config_file_changes_only_the_settings_it_names() {
        // It once switched skips on, kept the best epoch and made the rate constant whenever it
        // did not name them: `{"seed": 43}` trained another model than `--seed 43`.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.json");
        std::fs::write(&file, r#"{"seed": 43, "optimizer": {"lr": 0.002}}"#).unwrap();
        let c = load_config_file(&file).unwrap();
        let mut expected = TrainConfig {
            seed: 43,
            ..TrainConfig::default()
        };
        expected.optimizer.lr = 0.002;
        assert_eq!(c, expected);
        // Naming the epochs asks for exactly those, unless the file names `min_steps` too.
        std::fs::write(&file, r#"{"epochs": 5}"#).unwrap();
        assert_eq!(
            load_config_file(&file).unwrap(),
            TrainConfig::default().with_epochs(5)
        );
        std::fs::write(&file, r#"{"epochs": 5, "min_steps": 100}"#).unwrap();
        let c = load_config_file(&file).unwrap();
        assert_eq!((c.epochs, c.min_steps), (5, 100));
    }

    #[test]
    fn a_runs_old_config_keeps_what_it_trained_with() {
        // A run's config.json from before the fields keeps its skips, its constant rate and
        // its best checkpoint; every new run writes all three.
        let mut old = serde_json::json!({"optimizer": {"lr": 0.01}});
        fill_legacy_run_fields(&mut old);
        let old: TrainConfig = serde_json::from_value(old).unwrap();
        assert!(old.model_config(3).disabled_skips.is_empty());
        assert_eq!(old.optimizer.schedule, LrSchedule::Constant);
        assert_eq!(old.keep, KeepWeights::Best);
        let saved = serde_json::to_value(TrainConfig::default()).unwrap();
        assert_eq!(
            (
                &saved["keep"],
                &saved["no_skips"],
                &saved["optimizer"]["schedule"]
            ),
            (&"last".into(), &true.into(), &"cosine".into())
        );
        let mut again = saved.clone();
        fill_legacy_run_fields(&mut again);
        assert_eq!(again, saved);
        // A run from before `min_steps` trained exactly its epochs.
        let mut old = serde_json::json!({"epochs": 7});
        fill_legacy_run_fields(&mut old);
        let old: TrainConfig = serde_json::from_value(old).unwrap();
        assert_eq!(old.epochs_for(43), 7);
    }
}

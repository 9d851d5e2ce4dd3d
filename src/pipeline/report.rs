//! `reconad report` as a library call: reads evaluation folders and what is known of each one's
//! model (training time, settings, environment; an ensemble's definition) and writes the HTML
//! report of [`crate::report::html`].

use std::path::{Path, PathBuf};

use crate::detector::ensemble::{is_ensemble, ENSEMBLE_FILE};
use crate::error::{fail, Result};
use crate::report::eval_dir::EvalDir;
use crate::report::html::{self, ReportEntry, ReportOptions, ReportStats};
use crate::train::RunDir;

/// Writes the report of the evaluation folders `evals` to `out`.
pub fn write_report(evals: &[PathBuf], out: &Path, options: &ReportOptions) -> Result<ReportStats> {
    if evals.is_empty() {
        fail!("a report needs at least one evaluation folder");
    }
    let entries = evals
        .iter()
        .map(|dir| report_entry(dir))
        .collect::<Result<Vec<_>>>()?;
    html::write(out, &entries, options)
}

/// One evaluation folder and its model's details (whatever of them can still be read).
fn report_entry(dir: &Path) -> Result<ReportEntry> {
    let eval = EvalDir::read(dir)?;
    let model = eval.metrics.model.clone();
    let pretty = |path: PathBuf| -> Option<String> {
        let text = std::fs::read_to_string(path).ok()?;
        let value: serde_json::Value = serde_json::from_str(&text).ok()?;
        serde_json::to_string_pretty(&value).ok()
    };
    let mut details = Vec::new();
    let mut train_seconds = None;
    if is_ensemble(&model) {
        let file = if model.is_dir() {
            model.join(ENSEMBLE_FILE)
        } else {
            model.clone()
        };
        if let Some(text) = pretty(file) {
            details.push(("Ensemble definition (ensemble.json)".to_string(), text));
        }
    } else {
        let run = RunDir::new(&model);
        if let Some(text) = pretty(run.config()) {
            details.push(("Training settings (config.json)".to_string(), text));
        }
        if let Some(text) = pretty(run.env()) {
            details.push(("Environment of the training (env.json)".to_string(), text));
        }
        if let Ok(Some(state)) = run.load_state() {
            train_seconds = Some(state.train_seconds());
        }
    }
    if details.is_empty() {
        details.push((
            "Model".to_string(),
            format!(
                "{}: its settings could not be read (moved or deleted?)",
                model.display()
            ),
        ));
    }
    Ok(ReportEntry {
        eval,
        train_seconds,
        details,
    })
}

//! `reconad benchmark` as a library call: for each category, train a model (or reuse or resume
//! the run already in the output folder), calibrate it on its validation split, evaluate it on
//! its test split with heat maps, and keep a summary table and the HTML report up to date.
//!
//! Layout of the output folder: `runs/<category>/` (run directories), `eval/<category>/`
//! (metrics.json, scores.csv, heatmaps/), `summary.csv`, `summary.md`, `report.html`. A category
//! whose run is finished and whose `eval/<category>/metrics.json` exists is done: a second call
//! skips it, so an interrupted benchmark continues where it stopped.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::calibrate::calibrate_model;
use crate::data::Dataset;
use crate::detector::single::{SingleModel, TrainedModel};
use crate::error::{fail, fail_file, Result};
use crate::report::eval_dir::EvalDir;
use crate::report::html::ReportOptions;
use crate::report::summary::{write_summary, SummaryRow};
use crate::score::ScoringConfig;
use crate::train::{DataRef, RunDir, TrainConfig, TrainOptions};
use crate::util::progress::Progress;

use super::report::write_report;
use super::{evaluate_into, resume_and_calibrate, train_and_calibrate};

/// Settings of a benchmark.
pub struct BenchmarkConfig<'a> {
    /// Output folder.
    pub out: PathBuf,
    /// Training settings of every category's model.
    pub train: TrainConfig,
    /// Scoring settings replacing the calibrated default (applied to each model's base
    /// scoring, calibrated in memory; the run's scoring.json is untouched).
    pub scoring: Option<&'a (dyn Fn(ScoringConfig) -> ScoringConfig + Sync)>,
    /// Retrain and re-evaluate every category, replacing what the folder holds.
    pub force: bool,
    /// A line describing the data, for the summary.
    pub data_description: String,
}

/// What the benchmark did with a category's model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CategoryOutcome {
    /// Everything was done before: nothing ran.
    Skipped,
    /// The finished run was reused; it was evaluated now.
    Reused,
    /// An interrupted run was resumed.
    Resumed,
    /// Trained now.
    Trained,
}

/// One category of the benchmark.
#[derive(Debug, Clone)]
pub struct BenchmarkCategory {
    /// Its row of the summary.
    pub row: SummaryRow,
    /// What was done.
    pub outcome: CategoryOutcome,
    /// Its run directory.
    pub run: PathBuf,
    /// Its evaluation folder.
    pub eval_dir: PathBuf,
}

/// What the benchmark produced.
#[derive(Debug, Clone)]
pub struct BenchmarkResult {
    /// Per category, in order.
    pub categories: Vec<BenchmarkCategory>,
    /// `summary.md`.
    pub summary: PathBuf,
    /// `report.html`.
    pub report: PathBuf,
    /// Wall time of this call, seconds.
    pub seconds: f64,
}

/// Runs the benchmark on `datasets` (each with how to find it again).
pub fn run_benchmark(
    config: &BenchmarkConfig,
    datasets: &[(Dataset, DataRef)],
    progress: &dyn Progress,
) -> Result<BenchmarkResult> {
    let started = Instant::now();
    if datasets.is_empty() {
        fail!("no category to benchmark");
    }
    let mut names = BTreeSet::new();
    for (d, _) in datasets {
        if !names.insert(d.name.as_str()) {
            fail_file!(
                d.root,
                "two data sets are named {:?}: each category needs its own name in the benchmark folder",
                d.name
            );
        }
    }
    config.train.validate()?;
    std::fs::create_dir_all(&config.out)
        .map_err(|e| crate::error::Error::file(&config.out, format!("cannot create: {e}")))?;
    let total = datasets.len();
    let mut categories = Vec::with_capacity(total);
    let mut rows = Vec::with_capacity(total);
    progress.overall(0, total as u64);
    for (i, (dataset, data_ref)) in datasets.iter().enumerate() {
        let name = dataset.name.as_str();
        let tag = format!("[{}/{total}] {name}", i + 1);
        let category = run_category(config, dataset, data_ref, &tag, progress)?;
        progress.note(&format!(
            "{tag}: image AUROC {}, pixel AUROC {}, trained in {} s, {:.2} images/s ({})",
            fmt(category.row.image_auroc),
            fmt(category.row.pixel_auroc),
            category
                .row
                .train_seconds
                .map_or("-".into(), |t| format!("{t:.1}")),
            category.row.images_per_second,
            match category.outcome {
                CategoryOutcome::Skipped => "done before",
                CategoryOutcome::Reused => "finished run reused",
                CategoryOutcome::Resumed => "resumed",
                CategoryOutcome::Trained => "trained now",
            }
        ));
        rows.push(category.row.clone());
        categories.push(category);
        write_summary(&config.out, &rows, &preamble(config, &rows, total))?;
        progress.overall(i as u64 + 1, total as u64);
    }
    let evals: Vec<PathBuf> = categories.iter().map(|c| c.eval_dir.clone()).collect();
    let report = config.out.join("report.html");
    progress.note(&format!("writing the report {}", report.display()));
    write_report(
        &evals,
        &report,
        &ReportOptions {
            title: format!("reconad benchmark: {}", config.data_description),
            ..ReportOptions::default()
        },
    )?;
    Ok(BenchmarkResult {
        categories,
        summary: config.out.join("summary.md"),
        report,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("-".into(), |a| format!("{a:.4}"))
}

/// The lines above the summary table.
fn preamble(config: &BenchmarkConfig, rows: &[SummaryRow], total: usize) -> String {
    let t = &config.train;
    format!(
        "Data: {}. Categories: {} of {total}. Model: preset {}, {}, {}, batch {}, seed {}. \
         Scoring: {}. Test metrics; F1 @ threshold uses the threshold calibrated on validation \
         data, F1-max the best threshold on the test labels (an oracle, for comparison). Train s \
         is the training wall time over all its sessions; score s and images/s cover decoding, \
         scoring, pixel metrics and heat maps.",
        config.data_description,
        rows.len(),
        t.preset.name(),
        match t.whole_image_size() {
            Some(n) => format!("whole images at {n} px"),
            None => format!("crops rescaled {:?} px", t.augment.rescale),
        },
        match t.min_steps {
            0 => format!("{} epochs", t.epochs),
            steps => format!(
                "{} epochs (more on small sets, to reach {steps} steps)",
                t.epochs
            ),
        },
        t.batch_size,
        t.seed,
        if config.scoring.is_some() {
            "the options given, calibrated on validation"
        } else {
            "each model's calibrated profile (chosen on validation)"
        }
    )
}

/// Trains (or reuses) and evaluates one category.
fn run_category(
    config: &BenchmarkConfig,
    dataset: &Dataset,
    data_ref: &DataRef,
    tag: &str,
    progress: &dyn Progress,
) -> Result<BenchmarkCategory> {
    let run = RunDir::new(config.out.join("runs").join(&dataset.name));
    let eval_dir = config.out.join("eval").join(&dataset.name);
    let options = TrainOptions {
        progress,
        max_epochs_this_call: None,
    };
    // The run already in the folder (None: none, or --force), and its state.
    let existing = if config.force || !run.config().is_file() {
        None
    } else {
        let saved = run.load_config()?;
        let train_images = crate::data::split::Split::load(&run.split())
            .ok()
            .map(|s| s.train.len());
        if !trains_the_same(&saved.train, &config.train, train_images) {
            fail_file!(
                run.root,
                "holds a run trained with other settings than this benchmark's ({}); pass --force to retrain it, or choose another --out",
                differing_settings(&saved.train, &config.train).join(", ")
            );
        }
        Some(run.load_state()?)
    };
    let finished_before = existing.is_some()
        && crate::train::head::run_finished(&run, &run.load_config()?)?
        && run.root.join(crate::score::profile::SCORING_FILE).is_file();
    let previous = if finished_before {
        EvalDir::read(&eval_dir).ok()
    } else {
        None
    };
    let outcome = if previous.is_some() {
        CategoryOutcome::Skipped
    } else if finished_before {
        CategoryOutcome::Reused
    } else if existing.is_some() {
        progress.note(&format!("{tag}: resuming {}", run.root.display()));
        resume_and_calibrate(&run, &options)?;
        CategoryOutcome::Resumed
    } else {
        progress.note(&format!(
            "{tag}: training on {} normal images -> {}",
            dataset.train.len(),
            run.root.display()
        ));
        train_and_calibrate(
            &run,
            dataset,
            data_ref.clone(),
            config.train.clone(),
            true,
            &options,
        )?;
        CategoryOutcome::Trained
    };
    let finished = crate::train::head::run_finished(&run, &run.load_config()?)?;
    let Some(state) = run.load_state()?.filter(|_| finished) else {
        fail_file!(run.root, "training did not finish");
    };
    let evaluated = match previous {
        Some(evaluated) => evaluated,
        None => {
            progress.note(&format!(
                "{tag}: evaluating on {} test images -> {}",
                dataset.test.len(),
                eval_dir.display()
            ));
            evaluate_category(config, &run, dataset, &eval_dir, progress)?;
            EvalDir::read(&eval_dir)?
        }
    };
    let train_seconds = Some(state.train_seconds());
    Ok(BenchmarkCategory {
        row: SummaryRow::new(&dataset.name, &evaluated.metrics, train_seconds),
        outcome,
        run: run.root,
        eval_dir,
    })
}

/// Whether a run saved with `saved` trained what `wanted` would train on its `train_images`
/// images: the same settings, or settings that differ only in `min_steps` where both give the
/// same epochs (a run from before `min_steps` on a large set trained exactly today's default).
fn trains_the_same(saved: &TrainConfig, wanted: &TrainConfig, train_images: Option<usize>) -> bool {
    if saved == wanted {
        return true;
    }
    let same_but_min_steps = TrainConfig {
        min_steps: wanted.min_steps,
        ..saved.clone()
    } == *wanted;
    same_but_min_steps && train_images.is_some_and(|n| saved.epochs_for(n) == wanted.epochs_for(n))
}

/// The names of the settings (config.json `train` keys, nested with dots) where `a` and `b`
/// differ.
fn differing_settings(a: &TrainConfig, b: &TrainConfig) -> Vec<String> {
    fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
                let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    let null = serde_json::Value::Null;
                    let sub = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(
                        &sub,
                        x.get(k).unwrap_or(&null),
                        y.get(k).unwrap_or(&null),
                        out,
                    );
                }
            }
            // A whole group present on one side only (the head): named, not dumped.
            (serde_json::Value::Null, serde_json::Value::Object(_)) => {
                out.push(format!("{path}: none there, set here"))
            }
            (serde_json::Value::Object(_), serde_json::Value::Null) => {
                out.push(format!("{path}: set there, none here"))
            }
            _ if a != b => out.push(format!("{path}: {a} there, {b} here")),
            _ => {}
        }
    }
    let (a, b) = (serde_json::to_value(a), serde_json::to_value(b));
    let mut out = Vec::new();
    if let (Ok(a), Ok(b)) = (a, b) {
        walk("", &a, &b, &mut out);
    }
    out
}

/// Evaluates the run's model on the test split with heat maps into `eval_dir` (replacing an
/// earlier evaluation there).
fn evaluate_category(
    config: &BenchmarkConfig,
    run: &RunDir,
    dataset: &Dataset,
    eval_dir: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    let model = TrainedModel::open(&run.root, config.train.backend)?;
    let profile = match config.scoring {
        Some(apply) => {
            let scoring = apply(crate::calibrate::base_scoring(&model));
            scoring.validate(&model.config.model)?;
            calibrate_model(&model, scoring, progress)?
        }
        None => model.load_profile()?,
    };
    let model = SingleModel { model, profile };
    evaluate_into(&model, dataset, eval_dir, progress)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_from_before_min_steps_is_reused_only_where_it_trained_the_same_epochs() {
        let today = TrainConfig::default();
        let old = TrainConfig {
            min_steps: 0,
            ..today.clone()
        };
        // 188 images (bottle): 40 epochs either way; 43 (toothbrush): 40 then, 120 now.
        assert!(trains_the_same(&old, &today, Some(188)));
        assert!(!trains_the_same(&old, &today, Some(43)));
        assert!(!trains_the_same(&old, &today, None));
        assert!(trains_the_same(&today, &today, None));
        // Any other difference is a different training.
        let other_seed = TrainConfig {
            seed: 7,
            ..old.clone()
        };
        assert!(!trains_the_same(&other_seed, &today, Some(188)));
        assert_eq!(
            differing_settings(&old, &today),
            vec!["min_steps: 0 there, 720 here".to_string()]
        );
        let without_head = TrainConfig {
            head: None,
            ..today.clone()
        };
        assert!(!trains_the_same(&without_head, &today, Some(188)));
        assert_eq!(
            differing_settings(&without_head, &today),
            vec!["head: none there, set here".to_string()]
        );
    }
}

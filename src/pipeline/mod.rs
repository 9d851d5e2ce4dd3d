//! The verbs as library calls: train and calibrate a model, train or define an ensemble, run the
//! demo, the benchmark, the report. Each is a short sequence of the stages below it (data → train → calibrate → detector →
//! eval); the command line is a thin layer over these functions.

mod benchmark;
mod demo;
mod report;

pub use benchmark::{
    run_benchmark, BenchmarkCategory, BenchmarkConfig, BenchmarkResult, CategoryOutcome,
};
pub use demo::{run_demo, DemoCategory, DemoConfig, DemoRecipe, DemoResult};
pub use report::write_report;

use std::path::{Path, PathBuf};

use crate::calibrate::{calibrate_and_save, calibrate_ensemble_and_save, default_candidates};
use crate::data::split::Split;
use crate::data::Dataset;
use crate::detector::ensemble::{
    Ensemble, EnsembleDef, Fusion, ENSEMBLE_FILE, ENSEMBLE_FORMAT_VERSION, MIN_VAL_IMAGES,
};
use crate::detector::single::TrainedModel;
use crate::detector::Scorer;
use crate::device::Backend;
use crate::error::{fail, fail_file, Error, Result};
use crate::eval::{self, EvalMetrics, EvalOptions};
use crate::score::profile::ScoringProfile;
use crate::train::{self, DataRef, RunDir, TrainConfig, TrainOptions, TrainSummary};
use crate::util::lock::DirLock;
use crate::util::progress::Progress;

/// A training run and the scoring profile calibrated when it finished.
#[derive(Debug, Clone)]
pub struct Trained {
    /// What training reported.
    pub summary: TrainSummary,
    /// The profile saved as `scoring.json`, when the run finished and was calibrated now.
    pub profile: Option<ScoringProfile>,
}

/// Trains a new run in `run` on `dataset` and, when it finishes, calibrates its scoring on its
/// validation split (`RUN/scoring.json`).
pub fn train_and_calibrate(
    run: &RunDir,
    dataset: &Dataset,
    data: DataRef,
    config: TrainConfig,
    force: bool,
    options: &TrainOptions,
) -> Result<Trained> {
    let _lock = DirLock::acquire(&run.root)?;
    let summary = train::train_new(run, dataset, data, config, force, options)?;
    let profile = calibrate_finished(run, &summary, options.progress)?;
    Ok(Trained { summary, profile })
}

/// Continues an interrupted run from its last checkpoint and calibrates it if it finishes now.
/// A run that had finished before keeps its `scoring.json` (recalibrating is an explicit
/// `reconad calibrate`); one that finished without a profile gets one.
pub fn resume_and_calibrate(run: &RunDir, options: &TrainOptions) -> Result<Trained> {
    let _lock = DirLock::acquire(&run.root)?;
    let finished_before = crate::train::head::run_finished(run, &run.load_config()?)?;
    let summary = train::resume(run, DataRef::open, options)?;
    let has_profile = run.root.join(crate::score::profile::SCORING_FILE).is_file();
    let profile = if finished_before && has_profile {
        None
    } else {
        calibrate_finished(run, &summary, options.progress)?
    };
    Ok(Trained { summary, profile })
}

/// Calibrates a run whose training is over (default candidates); `None` while it is paused.
fn calibrate_finished(
    run: &RunDir,
    summary: &TrainSummary,
    progress: &dyn Progress,
) -> Result<Option<ScoringProfile>> {
    let config = run.load_config()?;
    if !summary.finished() || !run.scored_model(config.train.keep).is_file() {
        return Ok(None);
    }
    let model = TrainedModel::open(&run.root, config.train.backend)?;
    let profile = calibrate_and_save(&model, default_candidates(&model), progress)?;
    tracing::info!(
        "calibrated on {} validation images + {} CutPaste/scar copies{}: working size {}, {:?} error, {:?} statistics, top-k {} %, CutPaste-val AUROC {:.4} (pixel {}), threshold {:.4}",
        profile.val_normal,
        profile.val_anomalous,
        profile.blends_text(),
        profile.config.working_size,
        profile.config.error,
        profile.config.normalization,
        profile.config.top_k_percent,
        profile.val_auroc,
        profile
            .val_pixel_auroc
            .map_or("-".into(), |p| format!("{p:.4}")),
        profile.threshold
    );
    if let Some(h) = &profile.heatmap {
        tracing::info!(
            "heat maps from {:?} error, {:?} statistics (validation pixel AUROC {:.4})",
            h.config.error,
            h.config.normalization,
            h.val_pixel_auroc.unwrap_or(f64::NAN)
        );
    }
    Ok(Some(profile))
}

/// Evaluates `model` on `dataset`'s test split with a heat map per image into `eval_dir`
/// (`metrics.json`, `scores.csv`, `heatmaps/`), replacing an earlier evaluation there.
fn evaluate_into(
    model: &dyn Scorer,
    dataset: &Dataset,
    eval_dir: &Path,
    progress: &dyn Progress,
) -> Result<EvalMetrics> {
    let heatmaps = eval_dir.join("heatmaps");
    if heatmaps.exists() {
        std::fs::remove_dir_all(&heatmaps).map_err(|e| {
            Error::file(
                &heatmaps,
                format!("cannot remove the earlier heat maps: {e}"),
            )
        })?;
    }
    // metrics.json marks a complete evaluation: gone until the new one is written.
    let _ = std::fs::remove_file(eval_dir.join("metrics.json"));
    let options = EvalOptions {
        threshold: None,
        heatmaps: Some(&heatmaps),
        progress,
        skip_unreadable: false,
    };
    let (metrics, rows) = eval::evaluate(model, dataset, &options)?;
    eval::write_outputs(eval_dir, &metrics, &rows)?;
    Ok(metrics)
}

/// How ensemble members differ from the base configuration: each list is cycled over the
/// members (member i takes element i mod len); an empty list changes nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemberVariations {
    /// Training resolutions.
    pub image_sizes: Vec<usize>,
    /// Encoder widths.
    pub widths: Vec<Vec<usize>>,
    /// Skip levels switched off (an empty entry keeps every skip).
    pub disabled_skips: Vec<Vec<usize>>,
}

/// The configuration of member `i` (0-based): the base with seed `seed + i`, the split of
/// `seed` shared by all members, and the variations of member `i`.
pub fn member_config(
    base: &TrainConfig,
    seed: u64,
    i: usize,
    variations: &MemberVariations,
) -> TrainConfig {
    let mut c = base.clone();
    c.seed = seed + i as u64;
    c.split_seed = Some(seed);
    let pick = |n: usize| i % n;
    if !variations.image_sizes.is_empty() {
        c = c.with_image_size(variations.image_sizes[pick(variations.image_sizes.len())]);
    }
    if !variations.widths.is_empty() {
        let widths = variations.widths[pick(variations.widths.len())].clone();
        c.model = Some(c.preset.config(3).with_widths(widths));
    }
    if !variations.disabled_skips.is_empty() {
        c.disabled_skips = variations.disabled_skips[pick(variations.disabled_skips.len())].clone();
        c.no_skips = false;
    }
    c
}

/// What `train_ensemble` did with one member.
#[derive(Debug, Clone, PartialEq)]
pub enum MemberOutcome {
    /// Finished in an earlier call (its best CutPaste-val AUROC).
    FinishedEarlier(Option<f64>),
    /// Resumed from its checkpoint now.
    Resumed,
    /// Trained now from scratch.
    Trained,
}

/// Trains `members` members into `dir/member-N` (skipping finished ones, resuming interrupted
/// ones), all on the split of `seed`, then writes and calibrates `dir/ensemble.json`.
#[allow(clippy::too_many_arguments)]
pub fn train_ensemble(
    dir: &Path,
    dataset: &Dataset,
    data: &DataRef,
    base: &TrainConfig,
    members: usize,
    seed: u64,
    variations: &MemberVariations,
    fusion: Fusion,
    options: &TrainOptions,
) -> Result<(Vec<MemberOutcome>, Ensemble)> {
    if members == 0 {
        fail!("--members 0: an ensemble needs at least one member");
    }
    let configs: Vec<TrainConfig> = (0..members)
        .map(|i| member_config(base, seed, i, variations))
        .collect();
    for c in &configs {
        c.validate()?;
    }
    // Checked before any member trains: the fused score needs every member's validation std.
    let split = Split::new(dataset, base.val_fraction, seed)?;
    if split.val.len() < MIN_VAL_IMAGES {
        fail_file!(
            dataset.root,
            "an ensemble needs at least {MIN_VAL_IMAGES} validation images to z-normalise its members' scores; {} normal training images at val_fraction {} give {}: raise the validation share (val_fraction) or add images",
            dataset.train.len(),
            base.val_fraction,
            split.val.len()
        );
    }
    let _lock = DirLock::acquire(dir)?;
    let mut names = Vec::new();
    let mut outcomes = Vec::new();
    for (i, config) in configs.into_iter().enumerate() {
        let name = format!("member-{}", i + 1);
        let run = RunDir::new(dir.join(&name));
        let state = if run.config().is_file() {
            run.load_state()?
        } else {
            None
        };
        let done = state.is_some() && crate::train::head::run_finished(&run, &run.load_config()?)?;
        let outcome = match state {
            Some(s) if done => MemberOutcome::FinishedEarlier(s.best_auroc),
            Some(_) => {
                options.progress.note(&format!("{name}: resuming"));
                resume_and_calibrate(&run, options)?;
                MemberOutcome::Resumed
            }
            None => {
                options
                    .progress
                    .note(&format!("{name}: training (seed {})", config.seed));
                train_and_calibrate(&run, dataset, data.clone(), config, true, options)?;
                MemberOutcome::Trained
            }
        };
        if let MemberOutcome::FinishedEarlier(best) = &outcome {
            options.progress.note(&format!(
                "{name}: finished earlier (best CutPaste-val AUROC {})",
                best.map_or("-".into(), |a| format!("{a:.4}"))
            ));
        }
        outcomes.push(outcome);
        names.push(PathBuf::from(name));
    }
    let ensemble = write_ensemble(dir, names, fusion, Vec::new(), options.progress)?;
    Ok((outcomes, ensemble))
}

/// Writes `dir/ensemble.json` for `members` (run directories, relative to `dir` or absolute),
/// after opening and checking every member and calibrating the fused score on their common
/// validation set; nothing is written when a member is refused.
pub fn create_ensemble(
    dir: &Path,
    members: Vec<PathBuf>,
    fusion: Fusion,
    weights: Vec<f64>,
    progress: &dyn Progress,
) -> Result<Ensemble> {
    let _lock = DirLock::acquire(dir)?;
    write_ensemble(dir, members, fusion, weights, progress)
}

/// [`create_ensemble`] under a lock the caller holds.
fn write_ensemble(
    dir: &Path,
    members: Vec<PathBuf>,
    fusion: Fusion,
    weights: Vec<f64>,
    progress: &dyn Progress,
) -> Result<Ensemble> {
    let def = EnsembleDef {
        format: ENSEMBLE_FORMAT_VERSION,
        members,
        fusion,
        weights,
        calibration: None,
    };
    let mut ensemble = Ensemble::from_def(dir.join(ENSEMBLE_FILE), def, Backend::Cpu)?;
    calibrate_ensemble_and_save(&mut ensemble, progress)?;
    Ok(ensemble)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_cycle_through_the_variations_and_share_the_split_seed() {
        let base = TrainConfig::default();
        let variations = MemberVariations {
            image_sizes: vec![96, 128],
            widths: vec![vec![8, 16, 32, 64]],
            disabled_skips: vec![vec![], vec![0, 1], vec![0]],
        };
        let members: Vec<TrainConfig> = (0..4)
            .map(|i| member_config(&base, 10, i, &variations))
            .collect();
        assert_eq!(
            members.iter().map(|c| c.seed).collect::<Vec<_>>(),
            [10, 11, 12, 13]
        );
        assert!(members.iter().all(|c| c.split_seed == Some(10)));
        assert_eq!(
            members.iter().map(|c| c.val_size).collect::<Vec<_>>(),
            [96, 128, 96, 128]
        );
        assert!(members
            .iter()
            .all(|c| c.model.as_ref().unwrap().widths == vec![8, 16, 32, 64]));
        assert_eq!(
            members
                .iter()
                .map(|c| c.disabled_skips.clone())
                .collect::<Vec<_>>(),
            [vec![], vec![0, 1], vec![0], vec![]]
        );
        // No variations: only the seed differs.
        let plain = member_config(&base, 5, 2, &MemberVariations::default());
        assert_eq!(
            plain,
            TrainConfig {
                seed: 7,
                split_seed: Some(5),
                ..base
            }
        );
    }
}

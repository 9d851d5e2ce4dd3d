//! The verbs as library calls: train and calibrate a model, train or define an ensemble, run the
//! demo. Each is a short sequence of the stages below it (data → train → calibrate → detector →
//! eval); the command line is a thin layer over these functions.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::calibrate::{calibrate_and_save, calibrate_ensemble_and_save, default_candidates};
use crate::data::augment::Corruption;
use crate::data::check::{check_dataset, CheckOptions};
use crate::data::image_io::ChannelMode;
use crate::data::mvtec::open_category;
use crate::data::split::{Split, DEFAULT_VAL_FRACTION};
use crate::data::synth::{self, SynthCategory, SynthConfig};
use crate::data::Dataset;
use crate::detector::ensemble::{
    Ensemble, EnsembleDef, Fusion, ENSEMBLE_FILE, ENSEMBLE_FORMAT_VERSION, MIN_VAL_IMAGES,
};
use crate::detector::single::{SingleModel, TrainedModel};
use crate::device::Backend;
use crate::error::{fail, fail_file, Result};
use crate::eval::{self, EvalMetrics, EvalOptions};
use crate::model::unet::Preset;
use crate::score::profile::ScoringProfile;
use crate::train::{
    self, DataRef, KeepWeights, LrSchedule, OptimizerConfig, RunDir, TrainConfig, TrainOptions,
    TrainSummary,
};
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
    let finished_before = run.load_state()?.is_some_and(|s| s.finished);
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
    if !summary.state.finished || !run.scored_model(config.train.keep).is_file() {
        return Ok(None);
    }
    let model = TrainedModel::open(&run.root, config.train.backend)?;
    let profile = calibrate_and_save(&model, default_candidates(&model), progress)?;
    tracing::info!(
        "calibrated on {} validation images + {} CutPaste/scar copies: working size {}, {:?} error, {:?} statistics, top-k {} %, CutPaste-val AUROC {:.4} (pixel {}), threshold {:.4}",
        profile.val_normal,
        profile.val_anomalous,
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
        let outcome = match state {
            Some(s) if s.finished => MemberOutcome::FinishedEarlier(s.best_auroc),
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

/// Settings of the demo (`reconad demo`).
#[derive(Debug, Clone, PartialEq)]
pub struct DemoConfig {
    /// Output folder (data, runs, evaluations).
    pub out: PathBuf,
    /// Seed of every random choice.
    pub seed: u64,
    /// Architecture preset.
    pub preset: Preset,
    /// Training resolution: the whole-image side, or the bottom of the crop recipe's rescale
    /// range [N, 2N].
    pub image_size: usize,
    /// Maximum epochs per category.
    pub epochs: usize,
    /// Learning rate.
    pub lr: f64,
    /// Early-stop patience (evaluations every 2 epochs).
    pub patience: usize,
    /// Normal training images generated per category.
    pub train_images: usize,
    /// Validation share of them.
    pub val_fraction: f64,
    /// Categories (all when empty).
    pub categories: Vec<SynthCategory>,
    /// How the demo models are trained.
    pub recipe: DemoRecipe,
    /// Inpainting block side of the `crops` recipe (0 = clean inputs).
    pub mask_patch: usize,
}

/// Training recipe of the demo models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum DemoRecipe {
    /// The product's training default (`TrainConfig::default()`) at the demo's size: whole
    /// images, no skip connections, cosine learning rate.
    Default,
    /// The earlier demo recipe: random rescaled crops (rescale [N, 2N]), a U-Net with its
    /// skips, inpainting of `mask_patch` blocks, constant learning rate.
    Crops,
}

/// One category of the demo: its training, its test metrics and where they are.
#[derive(Debug, Clone)]
pub struct DemoCategory {
    /// Category name.
    pub name: &'static str,
    /// Training result.
    pub trained: Trained,
    /// Test metrics.
    pub metrics: EvalMetrics,
    /// Folder of metrics.json, scores.csv and heatmaps/.
    pub eval_dir: PathBuf,
}

/// What the demo produced.
#[derive(Debug, Clone)]
pub struct DemoResult {
    /// The generated data set.
    pub data: PathBuf,
    /// The model runs.
    pub runs: PathBuf,
    /// Per category.
    pub categories: Vec<DemoCategory>,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// The main job on the built-in synthetic data set: generate it, check it, train a model per
/// category, calibrate it and evaluate it with heat maps.
pub fn run_demo(config: &DemoConfig, progress: &dyn Progress) -> Result<DemoResult> {
    let started = Instant::now();
    let data = config.out.join("data");
    let synth_config = SynthConfig {
        seed: config.seed,
        train: config.train_images,
        categories: if config.categories.is_empty() {
            SynthCategory::ALL.to_vec()
        } else {
            config.categories.clone()
        },
        ..SynthConfig::default()
    };
    let written = synth::generate(&data, &synth_config, true)?;
    progress.note(&format!(
        "generated {written} synthetic images in {} ({:.1} s)",
        data.display(),
        started.elapsed().as_secs_f64()
    ));
    let check = CheckOptions {
        val_fraction: DEFAULT_VAL_FRACTION,
        seed: config.seed,
        channels: ChannelMode::Auto,
    };
    let runs = config.out.join("runs");
    let mut categories = Vec::new();
    for category in &synth_config.categories {
        let dataset = open_category(&data.join(category.name()))?;
        let report = check_dataset(&dataset, &check);
        if !report.is_ok() {
            fail!(
                "the generated data set {} failed its check:\n{}",
                dataset.root.display(),
                report.to_text()
            );
        }
        let run = runs.join(category.name());
        progress.note(&format!(
            "\n== {}: training a {} U-Net at {} px on {} normal images -> {}",
            category.name(),
            config.preset.name(),
            config.image_size,
            dataset.train.len(),
            run.display()
        ));
        let mut train_config = TrainConfig {
            seed: config.seed,
            preset: config.preset,
            batch_size: 8,
            epochs: config.epochs,
            eval_every: 2,
            patience: config.patience,
            val_fraction: config.val_fraction,
            optimizer: OptimizerConfig {
                lr: config.lr,
                ..Default::default()
            },
            ..TrainConfig::default()
        };
        train_config = match config.recipe {
            DemoRecipe::Default => train_config.with_whole_image(config.image_size),
            DemoRecipe::Crops => {
                train_config.no_skips = false;
                train_config.optimizer.schedule = LrSchedule::Constant;
                train_config.keep = KeepWeights::Best;
                train_config.with_image_size(config.image_size)
            }
        };
        if config.recipe == DemoRecipe::Crops && config.mask_patch > 0 {
            train_config.augment.corruption = Corruption::Mask {
                patch: config.mask_patch,
                ratio: 0.3,
            };
        }
        let data_ref = DataRef::Mvtec {
            category_dir: std::path::absolute(&dataset.root).unwrap_or(dataset.root.clone()),
        };
        let options = TrainOptions {
            progress,
            max_epochs_this_call: None,
        };
        let trained = train_and_calibrate(
            &RunDir::new(&run),
            &dataset,
            data_ref,
            train_config,
            true,
            &options,
        )?;
        let model = TrainedModel::open(&run, Backend::Cpu)?;
        let profile = model.load_profile()?;
        let model = SingleModel { model, profile };
        let eval_dir = config.out.join("eval").join(category.name());
        let heatmaps = eval_dir.join("heatmaps");
        let options = EvalOptions {
            threshold: None,
            heatmaps: Some(&heatmaps),
            progress,
            skip_unreadable: false,
        };
        let (metrics, rows) = eval::evaluate(&model, &dataset, &options)?;
        eval::write_outputs(&eval_dir, &metrics, &rows)?;
        progress.note(&eval::summary_table(&metrics));
        categories.push(DemoCategory {
            name: category.name(),
            trained,
            metrics,
            eval_dir,
        });
    }
    Ok(DemoResult {
        data,
        runs,
        categories,
        seconds: started.elapsed().as_secs_f64(),
    })
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

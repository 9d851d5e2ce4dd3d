//! `reconad demo` as a library call: the main job on the built-in synthetic data set.

use std::path::PathBuf;
use std::time::Instant;

use crate::data::augment::Corruption;
use crate::data::check::{check_dataset, CheckOptions};
use crate::data::image_io::ChannelMode;
use crate::data::loader::steps_per_epoch;
use crate::data::mvtec::open_category;
use crate::data::split::{Split, DEFAULT_VAL_FRACTION};
use crate::data::synth::{self, SynthCategory, SynthConfig};
use crate::detector::single::{SingleModel, TrainedModel};
use crate::device::Backend;
use crate::error::{fail, Result};
use crate::eval::{self, EvalMetrics};
use crate::model::unet::Preset;
use crate::report::html::ReportOptions;
use crate::train::head::HeadTrainConfig;
use crate::train::{
    DataRef, KeepWeights, LrSchedule, OptimizerConfig, RunDir, TrainConfig, TrainOptions,
};
use crate::util::progress::Progress;

use super::report::write_report;
use super::{evaluate_into, train_and_calibrate, Trained};

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
    /// Train the default's discriminative head after the autoencoder (recipe `default`), for as
    /// many optimizer steps as the autoencoder had: the demo's epochs stay its time budget.
    pub head: bool,
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
    /// The HTML report.
    pub report: PathBuf,
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
            // The demo's epochs are its time budget: exactly those, however few images.
            epochs: config.epochs,
            min_steps: 0,
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
        train_config.head = match (config.recipe, &train_config.head) {
            (DemoRecipe::Default, Some(head)) if config.head => {
                let train_images = Split::new(&dataset, config.val_fraction, config.seed)?
                    .train
                    .len();
                Some(HeadTrainConfig {
                    steps: (config.epochs * steps_per_epoch(train_images, train_config.batch_size))
                        .max(1),
                    ..head.clone()
                })
            }
            _ => None,
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
        let metrics = evaluate_into(&model, &dataset, &eval_dir, progress)?;
        progress.note(&eval::summary_table(&metrics));
        categories.push(DemoCategory {
            name: category.name(),
            trained,
            metrics,
            eval_dir,
        });
    }
    let report = config.out.join("report.html");
    let evals: Vec<PathBuf> = categories.iter().map(|c| c.eval_dir.clone()).collect();
    let options = ReportOptions {
        title: "reconad demo: the built-in synthetic data set".into(),
        ..ReportOptions::default()
    };
    write_report(&evals, &report, &options)?;
    Ok(DemoResult {
        data,
        runs,
        categories,
        report,
        seconds: started.elapsed().as_secs_f64(),
    })
}

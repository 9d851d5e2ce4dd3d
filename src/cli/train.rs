//! `reconad train`: train (or resume) a model and calibrate it when it finishes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use reconad::data::anomaly::restoration::RestorationConfig;
use reconad::data::augment::Corruption;
use reconad::data::image_io::ChannelMode;
use reconad::device::Backend;
use reconad::pipeline::{resume_and_calibrate, train_and_calibrate};
use reconad::train::{KeepWeights, RunDir, TrainConfig, TrainOptions};

use super::args::{DataSourceArgs, TrainSettingsArgs};
use super::progress::Bars;

/// Train a U-Net autoencoder on the normal images of a data set.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: DataSourceArgs,
    /// Run directory to create (or to continue with --resume).
    #[arg(long, value_name = "RUN")]
    out: Option<PathBuf>,
    #[command(flatten)]
    settings: TrainSettingsArgs,
    /// Seed of every random choice.
    #[arg(long)]
    seed: Option<u64>,
    /// Training resolution: batches of N px, rescale range [N, 2N], validation at N px.
    #[arg(long, value_name = "N")]
    image_size: Option<usize>,
    /// Whole-image mode for aligned parts: every sample is the full frame at long side N (no
    /// rescale, no crop), scored as one window at N px.
    #[arg(long, value_name = "N", conflicts_with = "image_size")]
    whole_image: Option<usize>,
    /// Weight λ of the (1 − SSIM) loss term.
    #[arg(long, allow_negative_numbers = true)]
    ssim_weight: Option<f64>,
    /// Restoration training: inputs with Perlin-mask regions filled from another altered
    /// training image (DRAEM-style, half of them clean); the target stays the clean image.
    #[arg(long)]
    restoration: bool,
    /// Keep the U-Net's skip connections (the default switches them all off).
    #[arg(long)]
    keep_skips: bool,
    /// Switch off the skip connection of a level (0 = shallowest; repeatable); the others stay.
    #[arg(long = "disable-skip", value_name = "LEVEL")]
    disable_skip: Vec<usize>,
    /// Share of normal training images held out for validation.
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Channel policy: `auto` (gray model when every training image is gray; a mix of gray and
    /// colour is refused), `rgb` or `gray` (every image converted, here and when scoring).
    #[arg(long, value_enum)]
    channels: Option<ChannelMode>,
    /// Compute backend.
    #[arg(long, value_enum)]
    backend: Option<Backend>,
    /// Continue an interrupted run (RUN, or the --out folder) from its last checkpoint.
    #[arg(long, value_name = "RUN", num_args = 0..=1)]
    resume: Option<Option<PathBuf>>,
    /// Replace an existing run directory.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl Args {
    /// The training settings given on the command line (a resumed run keeps its own).
    fn given_settings(&self) -> Vec<&'static str> {
        let s = &self.settings;
        [
            ("--config", s.config.is_some()),
            ("--preset", s.preset.is_some()),
            ("--epochs", s.epochs.is_some()),
            ("--batch", s.batch.is_some()),
            ("--eval-every", s.eval_every.is_some()),
            ("--patience", s.patience.is_some()),
            ("--keep", s.keep.is_some()),
            ("--seed", self.seed.is_some()),
            ("--image-size", self.image_size.is_some()),
            ("--whole-image", self.whole_image.is_some()),
            ("--ssim-weight", self.ssim_weight.is_some()),
            ("--restoration", self.restoration),
            ("--keep-skips", self.keep_skips),
            ("--disable-skip", !self.disable_skip.is_empty()),
            ("--val-fraction", self.val_fraction.is_some()),
            ("--channels", self.channels.is_some()),
            ("--backend", self.backend.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, given)| given.then_some(name))
        .collect()
    }

    /// The settings: defaults, then the --config file, then the command-line options.
    fn config(&self) -> Result<TrainConfig> {
        // On a GPU the GPU default replaces the CPU one (a --config file and the options given
        // still win).
        let gpu = self.backend.is_some_and(|b| b != Backend::Cpu);
        let base = if gpu {
            TrainConfig::default().gpu_default()
        } else {
            TrainConfig::default()
        };
        let mut c = self.settings.apply_on(base)?;
        if let Some(size) = self.image_size {
            c = c.with_image_size(size);
        }
        if let Some(size) = self.whole_image {
            c = c.with_whole_image(size);
        }
        c.seed = self.seed.unwrap_or(c.seed);
        c.val_fraction = self.val_fraction.unwrap_or(c.val_fraction);
        c.channels = self.channels.unwrap_or(c.channels);
        c.backend = self.backend.unwrap_or(c.backend);
        if let Some(l) = self.ssim_weight {
            c.loss.ssim_weight = l;
        }
        if self.keep_skips || !self.disable_skip.is_empty() {
            c.no_skips = false;
        }
        c.disabled_skips.extend(&self.disable_skip);
        if self.restoration {
            c.augment.corruption = Corruption::Restoration(RestorationConfig::default());
        }
        c.validate().with_context(|| match &self.settings.config {
            Some(file) => format!(
                "training settings from {} and the command line",
                file.display()
            ),
            None => "training settings from the command line".into(),
        })?;
        Ok(c)
    }
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let bars = Bars::new(!args.quiet);
    let options = TrainOptions {
        progress: &bars,
        max_epochs_this_call: None,
    };
    let run = match &args.resume {
        Some(resume) => resume.as_ref().or(args.out.as_ref()),
        None => args.out.as_ref(),
    };
    let Some(run) = run else {
        bail!(if args.resume.is_some() {
            "--resume needs the run directory: --resume RUN or --out RUN --resume"
        } else {
            "--out RUN is required: the run directory to create"
        });
    };
    let trained = if args.resume.is_some() {
        let given = args.given_settings();
        if !given.is_empty() {
            bail!(
                "--resume continues {} with the settings saved in its config.json; {} would be ignored — leave {} out, or start a new run",
                run.display(),
                given.join(", "),
                if given.len() == 1 { "it" } else { "them" }
            );
        }
        resume_and_calibrate(&RunDir::new(run), &options)?
    } else {
        let config = args.config()?;
        let (dataset, data_ref) = args.source.open_one(config.seed)?;
        train_and_calibrate(
            &RunDir::new(run),
            &dataset,
            data_ref,
            config,
            args.force,
            &options,
        )?
    };
    let summary = &trained.summary;
    let s = &summary.state;
    let kept = match RunDir::new(run).load_config()?.train.keep {
        KeepWeights::Last => "the last epoch's weights kept",
        KeepWeights::Best => "the best epoch's weights kept",
    };
    println!(
        "{} after {} epoch(s), {kept}: best CutPaste-val AUROC {} at epoch {}; {} train / {} val images; {:.1} s, {:.2} images/s",
        if s.finished { "finished" } else { "paused" },
        s.epochs_done,
        s.best_auroc.map_or("-".into(), |a| format!("{a:.4}")),
        s.best_epoch.map_or("-".into(), |e| e.to_string()),
        summary.train_images,
        summary.val_images,
        summary.seconds,
        summary.images_per_second
    );
    println!("run directory: {}", run.display());
    Ok(ExitCode::SUCCESS)
}

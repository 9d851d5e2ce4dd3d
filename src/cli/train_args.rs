//! Training options shared by `train` and `benchmark`: the settings file and presets
//! ([`TrainSettingsArgs`]) plus resolution, loss, architecture, data and backend options.

use anyhow::{Context, Result};
use reconad::data::anomaly::restoration::RestorationConfig;
use reconad::data::augment::Corruption;
use reconad::data::image_io::ChannelMode;
use reconad::device::Backend;
use reconad::train::head::HeadTrainConfig;
use reconad::train::TrainConfig;

use super::args::TrainSettingsArgs;

/// How to train a model: defaults, then a `--config` file, then these options.
#[derive(Debug, clap::Args)]
pub struct TrainModelArgs {
    #[command(flatten)]
    pub settings: TrainSettingsArgs,
    /// Seed of every random choice.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Training resolution: batches of N px, rescale range [N, 2N], validation at N px.
    #[arg(long, value_name = "N")]
    pub image_size: Option<usize>,
    /// Whole-image mode for aligned parts: every sample is the full frame at long side N (no
    /// rescale, no crop), scored as one window at N px.
    #[arg(long, value_name = "N", conflicts_with = "image_size")]
    pub whole_image: Option<usize>,
    /// Weight λ of the (1 − SSIM) loss term.
    #[arg(long, allow_negative_numbers = true)]
    pub ssim_weight: Option<f64>,
    /// Restoration training: inputs with Perlin-mask regions filled from another altered
    /// training image (DRAEM-style, half of them clean); the target stays the clean image.
    #[arg(long)]
    pub restoration: bool,
    /// Train a discriminative head after the autoencoder (the default: DRAEM's second network, a
    /// small U-Net on the image beside its reconstruction, learning Perlin-mask anomalies with
    /// focal loss; calibration then also tries its map). With --resume, adds a head to a finished
    /// run that has none.
    #[arg(long, conflicts_with = "no_head")]
    pub head: bool,
    /// Keep the U-Net's skip connections (the default switches them all off).
    #[arg(long)]
    pub keep_skips: bool,
    /// Switch off the skip connection of a level (0 = shallowest; repeatable); the others stay.
    #[arg(long = "disable-skip", value_name = "LEVEL")]
    pub disable_skip: Vec<usize>,
    /// Share of normal training images held out for validation.
    #[arg(long)]
    pub val_fraction: Option<f64>,
    /// Channel policy: `auto` (gray model when every training image is gray; a mix of gray and
    /// colour is refused), `rgb` or `gray` (every image converted, here and when scoring).
    #[arg(long, value_enum)]
    pub channels: Option<ChannelMode>,
    /// Compute backend.
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
}

impl TrainModelArgs {
    /// The training settings given on the command line (a resumed run keeps its own).
    pub fn given_settings(&self) -> Vec<&'static str> {
        let s = &self.settings;
        [
            ("--config", s.config.is_some()),
            ("--preset", s.preset.is_some()),
            ("--epochs", s.epochs.is_some()),
            ("--min-steps", s.min_steps.is_some()),
            ("--batch", s.batch.is_some()),
            ("--eval-every", s.eval_every.is_some()),
            ("--patience", s.patience.is_some()),
            ("--keep", s.keep.is_some()),
            ("--seed", self.seed.is_some()),
            ("--image-size", self.image_size.is_some()),
            ("--whole-image", self.whole_image.is_some()),
            ("--ssim-weight", self.ssim_weight.is_some()),
            ("--restoration", self.restoration),
            ("--head", self.head),
            ("--no-head", s.no_head),
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
    pub fn config(&self) -> Result<TrainConfig> {
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
        if self.head && c.head.is_none() {
            c.head = Some(HeadTrainConfig::default());
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

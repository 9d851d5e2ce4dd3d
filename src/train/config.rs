//! Training settings: every field is saved in the run's `config.json` under `train`; a JSON file
//! with any subset of them can be given with `--config`.

use serde::{Deserialize, Serialize};

use crate::data::anomaly::blend::SoftBlendConfig;
use crate::data::anomaly::cutpaste::CutPasteConfig;
use crate::data::augment::AugmentConfig;
use crate::data::image_io::ChannelMode;
use crate::data::loader::steps_per_epoch;
use crate::data::split::DEFAULT_VAL_FRACTION;
use crate::device::Backend;
use crate::error::{Context, Error, Result};
use crate::image::Size;
use crate::model::loss::LossConfig;
use crate::model::unet::{Norm, Preset, UNetConfig};
use crate::util::memory;

use super::head::HeadTrainConfig;

/// Adam settings (PyTorch's defaults, epsilon included; burn's default epsilon is 1e-5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OptimizerConfig {
    /// Learning rate.
    pub lr: f64,
    /// L2 weight decay.
    pub weight_decay: f32,
    /// Adam β1.
    pub beta1: f32,
    /// Adam β2.
    pub beta2: f32,
    /// Adam ε.
    pub epsilon: f32,
    /// Learning-rate schedule over the epochs (a run's `config.json` without it: `constant`,
    /// see `config_file::fill_legacy_run_fields`).
    pub schedule: LrSchedule,
}

/// How the learning rate changes over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// `lr` throughout.
    #[default]
    Constant,
    /// Cosine decay from `lr` at the first epoch to 1 % of it at the last (per epoch, so a
    /// resumed run follows the same curve).
    Cosine,
}

impl LrSchedule {
    /// The name as written in settings files.
    pub fn name(self) -> &'static str {
        match self {
            LrSchedule::Constant => "constant",
            LrSchedule::Cosine => "cosine",
        }
    }

    /// The learning rate of `epoch` (1-based) of `epochs`, from the base rate `lr`.
    pub fn lr(self, lr: f64, epoch: usize, epochs: usize) -> f64 {
        match self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine => {
                let t = (epoch.saturating_sub(1)) as f64 / (epochs.max(2) - 1) as f64;
                let floor = 0.01 * lr;
                floor + 0.5 * (lr - floor) * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
            }
        }
    }
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            weight_decay: 1e-5,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            schedule: LrSchedule::Cosine,
        }
    }
}

/// Which weights a run is scored with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum KeepWeights {
    /// The epoch with the best CutPaste-val AUROC, with an early stop after `patience`
    /// evaluations without improvement. What files without the field mean.
    #[default]
    Best,
    /// The last epoch of a fixed schedule: every epoch runs, validation is recorded but picks
    /// no epoch (on a handful of validation images the best epoch is noise; EXPERIMENTS.md).
    Last,
}

/// Every training setting. Saved as `config.json` in the run directory; a JSON file with any
/// subset of these fields can be passed with `--config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Seed of every random choice (split, weights, augmentation, CutPaste).
    pub seed: u64,
    /// Seed of the train/val split only, when it must differ from `seed` (ensemble members
    /// share one split, so that they share one validation set).
    pub split_seed: Option<u64>,
    /// Architecture preset (ignored when `model` is given).
    pub preset: Preset,
    /// Explicit architecture; its channel count is set from the data.
    pub model: Option<UNetConfig>,
    /// Skip levels to switch off (0 = shallowest), applied on top of the preset.
    pub disabled_skips: Vec<usize>,
    /// Switch off every skip connection, whatever the depth (an autoencoder: it cannot copy a
    /// defect through a skip). The default (a run's `config.json` without it: `false`).
    pub no_skips: bool,
    /// Loss.
    pub loss: LossConfig,
    /// Optimizer.
    pub optimizer: OptimizerConfig,
    /// Images per batch.
    pub batch_size: usize,
    /// Number of epochs (raised on a small training set to reach `min_steps`, see
    /// [`TrainConfig::epochs_for`]; fewer with `keep: best` when patience runs out).
    pub epochs: usize,
    /// Fewest optimizer steps of a run: when `epochs` epochs give fewer (a small training set:
    /// 43 images in batches of 8 are 6 steps an epoch), more epochs are trained, so that a set
    /// of 43 images trains as many steps as one of 150. 0 = exactly `epochs` (a run's
    /// `config.json` without it; a `--config` file or `--epochs` that names the epochs but not
    /// this).
    pub min_steps: usize,
    /// Evaluate the CutPaste-val AUROC every this many epochs (and after the last). With
    /// `keep: last` it only records the curve in `history.csv`, so the default (5) keeps it
    /// cheap: each evaluation cost 1.2 s (5 validation images) to 5.4 s (21) on 2 cores.
    pub eval_every: usize,
    /// Stop after this many evaluations without improvement (only when keeping the best).
    pub patience: usize,
    /// Which weights the run is scored with: by default `last` (with the cosine schedule, a
    /// fixed schedule); a run's `config.json` without it: `best`.
    pub keep: KeepWeights,
    /// Share of normal training images held out for validation.
    pub val_fraction: f64,
    /// Channel policy.
    pub channels: ChannelMode,
    /// Augmentation.
    pub augment: AugmentConfig,
    /// Side of the (square) validation images.
    pub val_size: usize,
    /// Share of pixels averaged for the validation image score, as a fraction (0.01 = 1 %).
    #[serde(rename = "val_top_k")]
    pub val_top_k_fraction: f64,
    /// Gaussian smoothing (σ, pixels at `val_size`) of validation error maps before top-k.
    pub val_sigma: f64,
    /// CutPaste validation set.
    pub cutpaste: CutPasteConfig,
    /// Soft blends of the validation set (the pixel proxy that chooses the heat maps).
    pub blend: SoftBlendConfig,
    /// Compute backend.
    pub backend: Backend,
    /// A discriminative head trained after the autoencoder (the default; `--no-head` or `null`:
    /// none).
    pub head: Option<HeadTrainConfig>,
}

/// Largest image side of any training or validation setting (a bound before the memory
/// estimate, so that arithmetic on sizes never overflows).
pub const MAX_SIDE_PX: usize = 16384;

/// Bytes per activation float of one training step ([`TrainConfig::check_memory`]).
const TRAIN_BYTES_FACTOR: u64 = 10;

/// The default's fewest optimizer steps ([`TrainConfig::min_steps`]): what 40 epochs of a
/// 150-image set in batches of 8 give. Leaves bottle's 40 epochs (24 steps each) as they are and
/// trains a 43-image set 120 epochs (measured in EXPERIMENTS.md, Round 6).
pub const DEFAULT_MIN_STEPS: usize = 720;

/// Side of the default whole-image training on a CPU.
pub const CPU_WHOLE_IMAGE_SIZE: usize = 128;

/// Side of the default whole-image training on a GPU (DRAEM's and RIAD's 256 px).
pub const GPU_WHOLE_IMAGE_SIZE: usize = 256;

impl Default for TrainConfig {
    /// The CPU default (issue 10 item 7): whole images at 128 px, the small preset without skip
    /// connections, batch 8, Adam at 1e-3 on a cosine schedule, 40 epochs (at least 720 steps),
    /// the last epoch kept, then a discriminative head (720 steps). Trains a category of 50–200
    /// images in 25–31 min on 2 cores (measured), in < 1 GB.
    fn default() -> Self {
        Self {
            seed: crate::DEFAULT_SEED,
            split_seed: None,
            preset: Preset::Small,
            model: None,
            disabled_skips: Vec::new(),
            no_skips: true,
            loss: LossConfig::default(),
            optimizer: OptimizerConfig::default(),
            batch_size: 8,
            epochs: 40,
            min_steps: DEFAULT_MIN_STEPS,
            eval_every: 5,
            patience: 10,
            keep: KeepWeights::Last,
            val_fraction: DEFAULT_VAL_FRACTION,
            channels: ChannelMode::Auto,
            augment: AugmentConfig::default(),
            val_size: 256,
            val_top_k_fraction: 0.01,
            val_sigma: 2.0,
            cutpaste: CutPasteConfig::default(),
            blend: SoftBlendConfig::default(),
            backend: Backend::Cpu,
            // Chosen on validation over seven runs of three categories (EXPERIMENTS.md, Round 7).
            head: Some(HeadTrainConfig::default()),
        }
        .with_whole_image(CPU_WHOLE_IMAGE_SIZE)
    }
}

impl TrainConfig {
    /// Sets the training resolution: batches of `size`, rescale range [size, 2·size], validation
    /// images of `size`.
    pub fn with_image_size(mut self, size: usize) -> Self {
        self.augment.input_sizes = vec![size];
        self.augment.rescale = (size as u32, 2 * size as u32);
        self.val_size = size;
        self
    }

    /// Whole-image mode (SPEC §8, for aligned parts): every sample is the full frame resized so
    /// that its long side is `size`, at one scale, with no crop, so the model learns what
    /// belongs where; validation at the same size. (A rescale range of one size and one input
    /// size equal to it is exactly that: the random rescale and crop become the identity.)
    pub fn with_whole_image(mut self, size: usize) -> Self {
        self.augment.input_sizes = vec![size];
        self.augment.rescale = (size as u32, size as u32);
        self.val_size = size;
        self
    }

    /// The GPU default (issue 10 item 7): whole images at [`GPU_WHOLE_IMAGE_SIZE`] px, the
    /// `default` preset without skips, 100 epochs; everything else as it is.
    pub fn gpu_default(self) -> Self {
        Self {
            preset: Preset::Default,
            model: None,
            epochs: 100,
            ..self
        }
        .with_whole_image(GPU_WHOLE_IMAGE_SIZE)
    }

    /// Exactly `epochs` epochs, however few steps they give (`min_steps` 0).
    pub fn with_epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self.min_steps = 0;
        self
    }

    /// The epochs a run on `train_images` images trains: `epochs`, or more when those give fewer
    /// than `min_steps` optimizer steps.
    pub fn epochs_for(&self, train_images: usize) -> usize {
        let steps = steps_per_epoch(train_images, self.batch_size);
        if steps == 0 {
            return self.epochs;
        }
        self.epochs.max(self.min_steps.div_ceil(steps))
    }

    /// The side of whole-image training ([`TrainConfig::with_whole_image`]), if this is one.
    pub fn whole_image_size(&self) -> Option<usize> {
        let (lo, hi) = self.augment.rescale;
        (lo == hi && self.augment.input_sizes == [lo as usize]).then_some(lo as usize)
    }

    /// The architecture for `channels` input channels.
    pub fn model_config(&self, channels: usize) -> UNetConfig {
        let mut model = self
            .model
            .clone()
            .unwrap_or_else(|| self.preset.config(channels));
        model.channels = channels;
        let all: Vec<usize> = if self.no_skips {
            (0..model.depth()).collect()
        } else {
            Vec::new()
        };
        for &l in self.disabled_skips.iter().chain(&all) {
            if !model.disabled_skips.contains(&l) {
                model.disabled_skips.push(l);
            }
        }
        model
    }

    /// Checks every setting, naming the one that is wrong.
    pub fn validate(&self) -> Result<()> {
        let fail = |name: &str, value: String, why: &str| Err(Error::setting(name, value, why));
        if let Some(head) = &self.head {
            head.validate()?;
        }
        if !(self.loss.ssim_weight >= 0.0 && self.loss.ssim_weight.is_finite()) {
            return fail(
                "loss.ssim_weight (λ)",
                format!("{:?}", self.loss.ssim_weight),
                "must be >= 0 (0.5-1.0 sensible)",
            );
        }
        if self.batch_size == 0 {
            return fail(
                "batch_size",
                "0".into(),
                "must be at least 1 (2 or more for BatchNorm)",
            );
        }
        if self.epochs == 0 {
            return fail("epochs", "0".into(), "must be at least 1");
        }
        if self.eval_every == 0 {
            return fail("eval_every", "0".into(), "must be at least 1");
        }
        if self.patience == 0 {
            return fail("patience", "0".into(), "must be at least 1 evaluation");
        }
        let o = &self.optimizer;
        if !(o.lr > 0.0 && o.lr <= 1.0) {
            return fail("optimizer.lr", format!("{:?}", o.lr), "must be in (0, 1]");
        }
        if !(o.weight_decay >= 0.0 && o.weight_decay <= 1.0) {
            return fail(
                "optimizer.weight_decay",
                format!("{:?}", o.weight_decay),
                "must be in [0, 1]",
            );
        }
        for (name, beta) in [("optimizer.beta1", o.beta1), ("optimizer.beta2", o.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                return fail(name, format!("{:?}", beta), "must be in [0, 1)");
            }
        }
        if !(o.epsilon > 0.0 && o.epsilon <= 1.0) {
            return fail(
                "optimizer.epsilon",
                format!("{:?}", o.epsilon),
                "must be in (0, 1]",
            );
        }
        if !(self.val_fraction > 0.0 && self.val_fraction <= 0.5) {
            return fail(
                "val_fraction",
                format!("{:?}", self.val_fraction),
                "must be in (0, 0.5] (0.1 default)",
            );
        }
        for (name, side) in [
            ("val_size", self.val_size),
            ("augment.rescale max", self.augment.rescale.1 as usize),
        ]
        .into_iter()
        .chain(
            self.augment
                .input_sizes
                .iter()
                .map(|&s| ("augment.input_sizes", s)),
        ) {
            if side > MAX_SIDE_PX {
                return fail(
                    name,
                    side.to_string(),
                    &format!("must be at most {MAX_SIDE_PX} px"),
                );
            }
        }
        if !(self.val_sigma >= 0.0 && self.val_sigma <= self.val_size as f64) {
            return fail(
                "val_sigma",
                format!("{:?}", self.val_sigma),
                &format!("must be in [0, val_size = {}] px", self.val_size),
            );
        }
        if !(self.val_top_k_fraction > 0.0 && self.val_top_k_fraction <= 1.0) {
            return fail(
                "val_top_k",
                format!("{:?}", self.val_top_k_fraction),
                "must be in (0, 1]",
            );
        }
        if let Err(e) = self.augment.validate() {
            return Err(Error::Unusable(format!("invalid setting: {e}")));
        }
        if let Err(e) = self.cutpaste.validate() {
            return Err(Error::Unusable(format!("invalid setting: {e}")));
        }
        if let Err(e) = self.blend.validate() {
            return Err(Error::Unusable(format!("invalid setting: {e}")));
        }
        let model = self.model_config(3);
        model.validate()?;
        for &size in self.augment.input_sizes.iter().chain([&self.val_size]) {
            model
                .check_input(Size::square(size))
                .map_err(Error::from)
                .with_context(|| {
                    format!("training/validation size {size} does not fit the model")
                })?;
        }
        if self.val_size < 11 {
            return fail(
                "val_size",
                self.val_size.to_string(),
                "must be at least 11 (SSIM window)",
            );
        }
        if model.norm == Norm::Batch && self.batch_size < 2 {
            return fail(
                "batch_size",
                self.batch_size.to_string(),
                "must be at least 2: BatchNorm over one image learns nothing (its loss drops to 0)",
            );
        }
        self.check_memory(memory::available_bytes())
    }

    /// Fails when one training step (the largest batch side) would not fit in `available`
    /// bytes: block outputs, kept for the backward pass with their gradients, ~10 floats per
    /// activation (measured: 350 MB peak for the CPU default; the old crop default at 512 px,
    /// batch 32 was OOM-killed at 23 GB where this says 41 GB).
    pub fn check_memory(&self, available: Option<u64>) -> Result<()> {
        let side = self
            .augment
            .input_sizes
            .iter()
            .copied()
            .max()
            .unwrap_or(0)
            .max(self.val_size);
        let floats = self.model_config(3).activation_floats(side);
        let needed = (self.batch_size as u64)
            .saturating_mul(floats)
            .saturating_mul(4 * TRAIN_BYTES_FACTOR);
        memory::check_fits(
            &format!(
                "training {side} px samples in batches of {}",
                self.batch_size
            ),
            needed,
            available,
            "lower the training size (--image-size / --whole-image), --batch or --preset",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_bounded_and_memory_is_estimated_before_training() {
        let ok = TrainConfig::default();
        ok.validate().unwrap();
        let err = |f: &dyn Fn(&mut TrainConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c.validate().unwrap_err().to_string()
        };
        assert!(err(&|c| c.optimizer.beta1 = 5.0).contains("optimizer.beta1"));
        assert!(err(&|c| c.optimizer.epsilon = -1.0).contains("optimizer.epsilon"));
        assert!(err(&|c| c.optimizer.lr = f64::INFINITY).contains("optimizer.lr"));
        assert!(err(&|c| c.val_sigma = 1e300).contains("val_sigma"));
        assert!(err(&|c| c.batch_size = 1).contains("BatchNorm"));
        assert!(err(&|c| c.val_fraction = f64::NAN).contains("val_fraction"));
        assert!(err(&|c| *c = c.clone().with_whole_image(100_000)).contains("at most 16384"));
        // The CPU default fits in 1 GiB; the old crop default (default preset, crops of 512 px,
        // batch 32) that the OOM killer stopped at 23 GB does not fit in 24 GiB.
        ok.check_memory(Some(1 << 30)).unwrap();
        let old = TrainConfig {
            preset: Preset::Default,
            batch_size: 32,
            no_skips: false,
            ..TrainConfig::default()
        }
        .with_image_size(512);
        let e = old.check_memory(Some(24 << 30)).unwrap_err().to_string();
        assert!(e.contains("--batch") && e.contains("512 px"), "{e}");
    }

    #[test]
    fn whole_image_mode_is_one_scale_with_no_rescale_range() {
        let c = TrainConfig::default().with_whole_image(128);
        assert_eq!(c.whole_image_size(), Some(128));
        assert_eq!((c.augment.rescale, c.val_size), ((128, 128), 128));
        c.validate().unwrap();
        assert_eq!(
            TrainConfig::default()
                .with_image_size(128)
                .whole_image_size(),
            None
        );
        assert_eq!(
            TrainConfig::default()
                .with_image_size(128)
                .whole_image_size(),
            None
        );
        // The CPU default: whole images, no skips at any depth.
        let d = TrainConfig::default();
        assert_eq!(d.whole_image_size(), Some(CPU_WHOLE_IMAGE_SIZE));
        assert_eq!(d.model_config(3).disabled_skips, vec![0, 1, 2, 3]);
        let tiny = TrainConfig {
            preset: Preset::Tiny,
            ..d.clone()
        };
        assert_eq!(
            tiny.model_config(1).disabled_skips.len(),
            tiny.model_config(1).depth()
        );
        let gpu = d.clone().gpu_default();
        assert_eq!(gpu.whole_image_size(), Some(GPU_WHOLE_IMAGE_SIZE));
        assert!(gpu.no_skips && gpu.preset == Preset::Default);
        gpu.validate().unwrap();
        // The cosine schedule: lr at the first epoch, 1 % of it at the last, halfway between.
        let s = LrSchedule::Cosine;
        assert_eq!(s.lr(1e-3, 1, 40), 1e-3);
        assert!((s.lr(1e-3, 40, 40) - 1e-5).abs() < 1e-12);
        assert!((s.lr(1e-3, 21, 41) - 0.505e-3).abs() < 1e-9);
        assert_eq!(LrSchedule::Constant.lr(1e-3, 40, 40), 1e-3);
    }

    #[test]
    fn small_training_sets_train_more_epochs_to_reach_min_steps() {
        let d = TrainConfig::default();
        // Bottle (188 images, 24 steps an epoch) keeps its 40 epochs; toothbrush (43) and
        // metal_plate (49: a last batch of one is dropped) train 120, 6 steps each.
        assert_eq!(
            [188, 43, 49, 150, 2].map(|n| d.epochs_for(n)),
            [40, 120, 120, 40, 720]
        );
        assert_eq!(d.clone().with_epochs(3).epochs_for(43), 3);
        assert_eq!(d.epochs_for(0), 40);
    }
}

//! U-Net convolutional autoencoder (SPEC §3): encoder blocks of two 3x3 convs + BatchNorm +
//! LeakyReLU, 2x2 max-pool down, a bottleneck block, 2x transposed-conv up, concat skip, block,
//! a 1x1 conv to the input's channel count and a sigmoid. Fully convolutional: any input side
//! divisible by 2^depth works.
//!
//! Skip connections let a U-Net learn the identity and reconstruct defects too; each skip can be
//! switched off (`skips`), the shallowest first being the usual choice.

use std::sync::Mutex;

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

use super::activation::leaky_relu;
use super::conv::conv3x3_forward;
use super::conv::up::up2x2_forward;
use super::norm::conv_batch_norm_leaky_relu;
use super::pool::max_pool2x2;
use crate::error::ModelError;
use crate::image::Size;

/// Normalisation inside the conv blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// BatchNorm after each conv (SPEC default).
    Batch,
    /// No normalisation.
    None,
}

/// Architecture of the U-Net.
#[derive(Config, Debug, PartialEq)]
pub struct UNetConfig {
    /// Input (and output) channels: 1 gray, 3 RGB.
    #[config(default = 3)]
    pub channels: usize,
    /// Encoder widths, shallowest first; the depth is their count.
    #[config(default = "vec![32, 64, 128, 256]")]
    pub widths: Vec<usize>,
    /// Bottleneck width.
    #[config(default = 512)]
    pub bottleneck: usize,
    /// Normalisation in the blocks.
    #[config(default = "Norm::Batch")]
    pub norm: Norm,
    /// Negative slope of the LeakyReLU.
    #[config(default = 0.2)]
    pub leaky_slope: f64,
    /// Levels (0 = shallowest) whose skip connection is switched off.
    #[config(default = "Vec::new()")]
    pub disabled_skips: Vec<usize>,
}

/// A named architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// For tests: widths 4-8-16, bottleneck 32.
    Tiny,
    /// For CPU experiments: widths 16-32-64-128, bottleneck 256.
    Small,
    /// SPEC default: widths 32-64-128-256, bottleneck 512.
    Default,
}

impl Preset {
    /// The architecture of this preset for `channels` input channels.
    pub fn config(self, channels: usize) -> UNetConfig {
        let (widths, bottleneck) = match self {
            Preset::Tiny => (vec![4, 8, 16], 32),
            Preset::Small => (vec![16, 32, 64, 128], 256),
            Preset::Default => (vec![32, 64, 128, 256], 512),
        };
        UNetConfig::new()
            .with_channels(channels)
            .with_widths(widths)
            .with_bottleneck(bottleneck)
    }

    /// The name as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Tiny => "tiny",
            Preset::Small => "small",
            Preset::Default => "default",
        }
    }

    /// Parses a preset name, with an error listing the valid ones.
    pub fn parse(name: &str) -> Result<Self, ModelError> {
        match name {
            "tiny" => Ok(Preset::Tiny),
            "small" => Ok(Preset::Small),
            "default" => Ok(Preset::Default),
            other => Err(ModelError::UnknownPreset(other.to_string())),
        }
    }
}

impl UNetConfig {
    /// Number of down-sampling levels.
    pub fn depth(&self) -> usize {
        self.widths.len()
    }

    /// Input sides must be multiples of this.
    pub fn side_multiple(&self) -> usize {
        1 << self.depth()
    }

    /// Checks the configuration's values.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |msg: String| Err(ModelError::InvalidConfig(msg));
        if !(self.channels == 1 || self.channels == 3) {
            return bad(format!("channels = {} (must be 1 or 3)", self.channels));
        }
        if self.widths.is_empty() || self.widths.contains(&0) || self.bottleneck == 0 {
            return bad("widths and bottleneck must be non-empty and positive".into());
        }
        if let Some(&level) = self.disabled_skips.iter().find(|&&l| l >= self.depth()) {
            return bad(format!(
                "disabled skip {level} does not exist (levels 0..{})",
                self.depth()
            ));
        }
        if !(self.leaky_slope >= 0.0 && self.leaky_slope < 1.0) {
            return bad(format!(
                "leaky_slope = {} (must be in [0, 1))",
                self.leaky_slope
            ));
        }
        Ok(())
    }

    /// Floats of the block outputs of one forward pass over a `side`-px square input: every
    /// encoder and decoder level and the bottleneck (the unit of the memory estimates).
    pub fn activation_floats(&self, side: usize) -> u64 {
        let side = side as u64;
        let plane = |l: usize| (side.checked_shr(l as u32).unwrap_or(0)).saturating_pow(2);
        let levels = self.widths.iter().enumerate().fold(0u64, |sum, (l, &w)| {
            sum.saturating_add((2 * w as u64).saturating_mul(plane(l)))
        });
        levels.saturating_add((self.bottleneck as u64).saturating_mul(plane(self.depth())))
    }

    /// Checks that an input of `height` x `width` fits: both divisible by 2^depth.
    pub fn check_input(&self, size: Size) -> Result<(), ModelError> {
        let m = self.side_multiple();
        let Size { width, height } = size;
        if height == 0 || width == 0 || !height.is_multiple_of(m) || !width.is_multiple_of(m) {
            return Err(ModelError::BadInput {
                height,
                width,
                reason: format!(
                    "sides must be positive multiples of {m} (2^depth for depth {})",
                    self.depth()
                ),
            });
        }
        Ok(())
    }

    /// Builds the model with weights drawn now from the device's generator seeded with `seed`.
    /// burn draws parameters lazily from a process-wide generator; the seeding and drawing happen
    /// under a lock, so models built concurrently in one process are still reproducible.
    pub fn init_seeded(&self, device: &Device, seed: u64) -> UNet {
        init_seeded_with(device, seed, || self.init(device))
    }

    /// Builds the model on `device`; its weights are drawn at first use from the device's
    /// generator (see [`UNetConfig::init_seeded`] for reproducible weights).
    pub fn init(&self, device: &Device) -> UNet {
        let block = |cin, cout| ConvBlock::new(cin, cout, self.norm, self.leaky_slope, device);
        let mut encoders = Vec::new();
        let mut c = self.channels;
        for &w in &self.widths {
            encoders.push(block(c, w));
            c = w;
        }
        let bottleneck = block(c, self.bottleneck);
        let mut ups = Vec::new();
        let mut decoders = Vec::new();
        let mut c = self.bottleneck;
        for (level, &w) in self.widths.iter().enumerate().rev() {
            ups.push(
                ConvTranspose2dConfig::new([c, w], [2, 2])
                    .with_stride([2, 2])
                    .init(device),
            );
            let skip = !self.disabled_skips.contains(&level);
            decoders.push(block(if skip { 2 * w } else { w }, w));
            c = w;
        }
        UNet {
            encoders,
            bottleneck,
            ups,
            decoders,
            head: Conv2dConfig::new([c, self.channels], [1, 1]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            skips: (0..self.depth())
                .map(|l| !self.disabled_skips.contains(&l))
                .collect(),
        }
    }
}

/// Builds a module with `build` and draws all its weights at once from the device's generator
/// seeded with `seed`, under a process-wide lock (burn's generator is global and draws lazily).
pub fn init_seeded_with<M: Module>(device: &Device, seed: u64, build: impl FnOnce() -> M) -> M {
    static INIT: Mutex<()> = Mutex::new(());
    let _guard = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    device.seed(seed);
    let model = build();
    struct Materialise;
    impl ModuleVisitor for Materialise {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    model.visit(&mut Materialise);
    model
}

/// Two 3x3 convs, each followed by an optional BatchNorm and a LeakyReLU.
#[derive(Module, Debug)]
pub struct ConvBlock {
    conv1: Conv2d,
    norm1: Option<BatchNorm>,
    conv2: Conv2d,
    norm2: Option<BatchNorm>,
    slope: f64,
}

impl ConvBlock {
    /// A block from `cin` to `cout` channels.
    pub(crate) fn new(cin: usize, cout: usize, norm: Norm, slope: f64, device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let bn = || (norm == Norm::Batch).then(|| BatchNormConfig::new(cout).init(device));
        Self {
            conv1: conv(cin, cout),
            norm1: bn(),
            conv2: conv(cout, cout),
            norm2: bn(),
            slope,
        }
    }

    /// `[N, cin, H, W]` → `[N, cout, H, W]`.
    pub(crate) fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let layer = |conv: &Conv2d, norm: &Option<BatchNorm>, x| match norm {
            Some(n) => conv_batch_norm_leaky_relu(conv, n, x, self.slope),
            None => leaky_relu(conv3x3_forward(conv, x), self.slope),
        };
        let x = layer(&self.conv1, &self.norm1, x);
        layer(&self.conv2, &self.norm2, x)
    }
}

/// The U-Net autoencoder.
#[derive(Module, Debug)]
pub struct UNet {
    encoders: Vec<ConvBlock>,
    bottleneck: ConvBlock,
    ups: Vec<ConvTranspose2d>,
    decoders: Vec<ConvBlock>,
    head: Conv2d,
    pool: MaxPool2d,
    skips: Vec<bool>,
}

impl UNet {
    /// Reconstructs a batch `[N, C, H, W]` with values in [0, 1]. H and W must be multiples of
    /// 2^depth (see [`UNetConfig::check_input`]).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut skips = Vec::with_capacity(self.encoders.len());
        let mut x = x;
        for enc in &self.encoders {
            x = enc.forward(x);
            skips.push(x.clone());
            x = max_pool2x2(&self.pool, x);
        }
        x = self.bottleneck.forward(x);
        for (i, (up, dec)) in self.ups.iter().zip(&self.decoders).enumerate() {
            let level = self.encoders.len() - 1 - i;
            x = up2x2_forward(up, x);
            let skip = skips.pop().expect("one skip per level");
            if self.skips[level] {
                x = Tensor::cat(vec![x, skip], 1);
            }
            x = dec.forward(x);
        }
        sigmoid(self.head.forward(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_has_the_input_shape_in_unit_range() {
        let device = Device::flex();
        let cfg = Preset::Tiny.config(3);
        let model = cfg.init_seeded(&device, 0);
        let x = Tensor::<4>::ones([2, 3, 16, 24], &device) * 0.5;
        let y = model.forward(x);
        assert_eq!(y.dims(), [2, 3, 16, 24]);
        let data = y.into_data();
        assert!(data
            .as_slice::<f32>()
            .unwrap()
            .iter()
            .all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn disabled_skips_shrink_the_decoder_and_still_run() {
        let device = Device::flex();
        let full = Preset::Tiny.config(1).init_seeded(&device, 0);
        let cut = Preset::Tiny
            .config(1)
            .with_disabled_skips(vec![0, 1])
            .init_seeded(&device, 0);
        assert!(cut.num_params() < full.num_params());
        let y = cut.forward(Tensor::<4>::zeros([1, 1, 8, 8], &device));
        assert_eq!(y.dims(), [1, 1, 8, 8]);
    }

    #[test]
    fn presets_and_input_checks() {
        assert_eq!(Preset::Default.config(3).widths, vec![32, 64, 128, 256]);
        assert_eq!(Preset::Small.config(3).bottleneck, 256);
        let err = Preset::parse("huge").unwrap_err();
        assert!(err.to_string().contains("huge") && err.to_string().contains("tiny"));
        let cfg = Preset::Default.config(3);
        assert!(cfg.check_input(Size::new(128, 256)).is_ok());
        let err = cfg.check_input(Size::new(128, 100)).unwrap_err();
        assert!(err.to_string().contains("multiples of 16"), "{err}");
        assert!(cfg.clone().with_disabled_skips(vec![4]).validate().is_err());
        assert!(cfg.with_channels(2).validate().is_err());
    }

    #[test]
    fn seeded_initialisation_is_reproducible() {
        let device = Device::flex();
        let x = Tensor::<4>::ones([1, 3, 8, 8], &device) * 0.3;
        let output = |seed: u64| {
            let model = Preset::Tiny.config(3).init_seeded(&device, seed);
            model
                .forward(x.clone())
                .into_data()
                .as_slice::<f32>()
                .unwrap()
                .to_vec()
        };
        let (a, b, c) = (output(9), output(9), output(10));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}

//! The discriminative head (DRAEM's second network, issue 10 item 4): a small U-Net, skips on,
//! that reads an image beside its reconstruction and gives a per-pixel anomaly logit. It is
//! trained on synthetic anomalies with their masks (`train::head`), so it learns which
//! differences between input and reconstruction are defects rather than the reconstruction's
//! usual blur.

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

use super::conv::up::up2x2_forward;
use super::pool::max_pool2x2;
use super::unet::{init_seeded_with, ConvBlock, Norm};
use crate::error::ModelError;

/// Architecture of the head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadConfig {
    /// Encoder widths, shallowest first (every level has its skip).
    pub widths: Vec<usize>,
    /// Bottleneck width.
    pub bottleneck: usize,
}

impl Default for HeadConfig {
    /// Widths 16-32-64-128, bottleneck 256: the small preset's widths, every skip on (chosen
    /// over 8-16-32-64 / 128 on validation, EXPERIMENTS.md Rounds 9–10).
    fn default() -> Self {
        Self {
            widths: vec![16, 32, 64, 128],
            bottleneck: 256,
        }
    }
}

impl HeadConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.widths.is_empty() || self.widths.contains(&0) || self.bottleneck == 0 {
            return Err(ModelError::InvalidConfig(
                "head widths and bottleneck must be non-empty and positive".into(),
            ));
        }
        Ok(())
    }

    /// Input sides must be multiples of this.
    pub fn side_multiple(&self) -> usize {
        1 << self.widths.len()
    }

    /// Builds the head for images of `channels` channels with weights drawn now from the
    /// device's generator seeded with `seed`.
    pub fn init_seeded(&self, channels: usize, device: &Device, seed: u64) -> SegHead {
        init_seeded_with(device, seed, || self.init(channels, device))
    }

    fn init(&self, channels: usize, device: &Device) -> SegHead {
        const SLOPE: f64 = 0.2;
        let block = |cin, cout| ConvBlock::new(cin, cout, Norm::Batch, SLOPE, device);
        let mut encoders = Vec::new();
        let mut c = 2 * channels;
        for &w in &self.widths {
            encoders.push(block(c, w));
            c = w;
        }
        let bottleneck = block(c, self.bottleneck);
        let (mut ups, mut decoders) = (Vec::new(), Vec::new());
        let mut c = self.bottleneck;
        for &w in self.widths.iter().rev() {
            ups.push(
                ConvTranspose2dConfig::new([c, w], [2, 2])
                    .with_stride([2, 2])
                    .init(device),
            );
            decoders.push(block(2 * w, w));
            c = w;
        }
        SegHead {
            encoders,
            bottleneck,
            ups,
            decoders,
            out: Conv2dConfig::new([c, 1], [1, 1]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
        }
    }
}

/// The discriminative head.
#[derive(Module, Debug)]
pub struct SegHead {
    encoders: Vec<ConvBlock>,
    bottleneck: ConvBlock,
    ups: Vec<ConvTranspose2d>,
    decoders: Vec<ConvBlock>,
    out: Conv2d,
    pool: MaxPool2d,
}

impl SegHead {
    /// Anomaly logits `[N, 1, H, W]` of images `[N, C, H, W]` and their reconstructions (same
    /// shape); H and W multiples of [`HeadConfig::side_multiple`].
    pub fn logits(&self, input: Tensor<4>, recon: Tensor<4>) -> Tensor<4> {
        let mut x = Tensor::cat(vec![input, recon], 1); // [N, 2C, H, W]
        let mut skips = Vec::with_capacity(self.encoders.len());
        for enc in &self.encoders {
            x = enc.forward(x);
            skips.push(x.clone());
            x = max_pool2x2(&self.pool, x);
        }
        x = self.bottleneck.forward(x);
        for (up, dec) in self.ups.iter().zip(&self.decoders) {
            let skip = skips.pop().expect("one skip per level");
            x = dec.forward(Tensor::cat(vec![up2x2_forward(up, x), skip], 1));
        }
        self.out.forward(x)
    }

    /// Input sides must be multiples of this (2^depth).
    pub fn side_multiple(&self) -> usize {
        1 << self.encoders.len()
    }

    /// Anomaly probability `[N, 1, H, W]` in [0, 1].
    pub fn probability(&self, input: Tensor<4>, recon: Tensor<4>) -> Tensor<4> {
        sigmoid(self.logits(input, recon))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_maps_an_image_pair_to_one_probability_plane() {
        let device = Device::flex();
        let cfg = HeadConfig {
            widths: vec![4, 8],
            bottleneck: 8,
        };
        let head = cfg.init_seeded(3, &device, 1);
        let x = Tensor::<4>::ones([2, 3, 16, 12], &device) * 0.5;
        let p = head.probability(x.clone(), x.clone() * 0.9);
        assert_eq!(p.dims(), [2, 1, 16, 12]);
        let values = p.into_data().try_into_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| (0.0..=1.0).contains(v)));
        let again = cfg
            .init_seeded(3, &device, 1)
            .probability(x.clone(), x * 0.9);
        assert_eq!(again.into_data().try_into_vec::<f32>().unwrap(), values);
        assert!(HeadConfig {
            widths: vec![],
            bottleneck: 4
        }
        .validate()
        .is_err());
    }
}

//! Restoration training samples (DRAEM, with FAIR's no-DTD texture source): a Perlin-mask region
//! of the clean image is replaced by a photometrically altered *other* normal image, blended at a
//! random opacity; half of the samples stay clean. The model learns to give back the clean image,
//! so at test time it removes defects instead of copying them. No CutPaste here: validation uses
//! CutPaste and scars, a different generator family, so model selection is not circular.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::perlin::perlin_mask;
use super::texture::random_ops;
use crate::image::ChwImage;

/// Settings of the restoration samples (DRAEM's defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RestorationConfig {
    /// Share of samples left clean (input = target).
    pub clean_share: f64,
    /// Perlin lattice of 2^a x 2^b cells, a and b drawn from 0..=this.
    pub max_log2_cells: u32,
    /// Noise threshold of the mask (higher: smaller blobs).
    pub threshold: f32,
    /// The clean image shows through the texture by up to this share (DRAEM's β = 0.8·U(0, 1):
    /// texture opacity 0.2–1).
    pub max_show_through: f32,
    /// Distinct photometric ops applied to the texture source.
    pub texture_ops: usize,
    /// Retries when a mask comes out empty, before the sample is left clean.
    pub retries: usize,
}

impl Default for RestorationConfig {
    fn default() -> Self {
        Self {
            clean_share: 0.5,
            max_log2_cells: 5,
            threshold: 0.5,
            max_show_through: 0.8,
            texture_ops: 3,
            retries: 3,
        }
    }
}

impl RestorationConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), String> {
        if !(0.0..1.0).contains(&self.clean_share) {
            return Err(format!(
                "restoration clean_share = {} must be in [0, 1)",
                self.clean_share
            ));
        }
        if self.max_log2_cells > 8 {
            return Err(format!(
                "restoration max_log2_cells = {} must be at most 8",
                self.max_log2_cells
            ));
        }
        if !(self.threshold > -1.0 && self.threshold < 1.0) {
            return Err(format!(
                "restoration threshold = {} must be in (-1, 1)",
                self.threshold
            ));
        }
        if !(0.0..1.0).contains(&self.max_show_through) {
            return Err(format!(
                "restoration max_show_through = {} must be in [0, 1)",
                self.max_show_through
            ));
        }
        if self.texture_ops > super::texture::OP_COUNT || self.retries > 100 {
            return Err(format!(
                "restoration texture_ops = {} (at most {}), retries = {} (at most 100)",
                self.texture_ops,
                super::texture::OP_COUNT,
                self.retries
            ));
        }
        Ok(())
    }
}

/// A restoration input and the mask of what was altered (1 = anomalous pixel).
#[derive(Debug, Clone, PartialEq)]
pub struct RestorationSample {
    /// The model input.
    pub input: ChwImage,
    /// Per-pixel anomaly mask, row-major (all zero for a clean sample).
    pub mask: Vec<f32>,
}

/// Makes one restoration input from `clean`, taking the texture from `source` (another normal
/// image of the same size, or `clean` itself).
pub fn restoration_sample(
    clean: &ChwImage,
    source: &ChwImage,
    config: &RestorationConfig,
    rng: &mut ChaCha8Rng,
) -> RestorationSample {
    let size = clean.size();
    let plane = size.area();
    let untouched = || RestorationSample {
        input: clean.clone(),
        mask: vec![0.0; plane],
    };
    if rng.random::<f64>() < config.clean_share || source.size() != size {
        return untouched();
    }
    let Some(mask) = (0..=config.retries)
        .map(|_| perlin_mask(size, config.max_log2_cells, config.threshold, rng))
        .find(|m| m.iter().any(|&v| v > 0.0))
    else {
        return untouched();
    };
    let texture = random_ops(source, config.texture_ops, rng);
    let show = rng.random::<f32>() * config.max_show_through;
    let mut input = clean.clone();
    for c in 0..clean.channels.min(texture.channels) {
        for (i, &m) in mask.iter().enumerate() {
            if m > 0.0 {
                let k = c * plane + i;
                input.data[k] = show * clean.data[k] + (1.0 - show) * texture.data[k];
            }
        }
    }
    RestorationSample { input, mask }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Size;
    use rand::SeedableRng;

    fn image(value: f32) -> ChwImage {
        let mut img = ChwImage::zeros(3, Size::square(32));
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = value + 0.2 * ((i % 32) as f32 / 32.0);
        }
        img
    }

    #[test]
    fn only_masked_pixels_change_and_about_half_stay_clean() {
        let (clean, source) = (image(0.1), image(0.7));
        let config = RestorationConfig::default();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let mut altered = 0;
        for _ in 0..60 {
            let s = restoration_sample(&clean, &source, &config, &mut rng);
            let plane = 32 * 32;
            for c in 0..3 {
                for (i, &m) in s.mask.iter().enumerate() {
                    let (a, b) = (s.input.data[c * plane + i], clean.data[c * plane + i]);
                    if m == 0.0 {
                        assert_eq!(a, b, "unmasked pixels are untouched");
                    }
                }
            }
            altered += usize::from(s.mask.iter().any(|&m| m > 0.0));
        }
        assert!((15..=45).contains(&altered), "{altered} of 60 altered");
        let never = RestorationConfig {
            clean_share: 0.0,
            ..config
        };
        let s = restoration_sample(&clean, &source, &never, &mut rng);
        assert!(s.mask.iter().any(|&m| m > 0.0));
        assert_ne!(s.input, clean);
        assert!(RestorationConfig {
            clean_share: 1.0,
            ..RestorationConfig::default()
        }
        .validate()
        .is_err());
    }
}

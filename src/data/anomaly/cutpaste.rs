//! CutPaste validation anomalies (SPEC §4): on validation images only, cut a patch and paste it
//! elsewhere in the same image (area 2–15 %, aspect ratio 0.3–3.3, optional rotation, colour
//! jitter, soft blending), or paste a thin "scar". Deterministic for a seed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::image::ChwImage;

/// Most synthetic copies of one kind per validation image.
pub const MAX_COPIES_PER_IMAGE: usize = 100;

/// Settings of the CutPaste validation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CutPasteConfig {
    /// Patch area as a share of the image, (min, max).
    pub area: (f64, f64),
    /// Patch aspect ratio (width / height), (min, max); drawn log-uniformly.
    pub aspect: (f64, f64),
    /// Rotate pasted patches by a random angle (in degrees, ±this; 0 = off).
    pub max_rotation_deg: f64,
    /// Colour jitter: brightness/contrast factors drawn in [1 − j, 1 + j] per channel.
    pub jitter: f64,
    /// Width of the soft blending border, as a share of the image side.
    pub soft_edge: f64,
    /// Scar width as a share of the image side, (min, max).
    pub scar_width: (f64, f64),
    /// Scar length as a share of the image side, (min, max).
    pub scar_length: (f64, f64),
    /// CutPaste versions per validation image.
    pub cutpaste_per_image: usize,
    /// Scar versions per validation image.
    pub scars_per_image: usize,
}

impl Default for CutPasteConfig {
    fn default() -> Self {
        Self {
            area: (0.02, 0.15),
            aspect: (0.3, 3.3),
            max_rotation_deg: 45.0,
            jitter: 0.1,
            soft_edge: 0.01,
            scar_width: (2.0 / 256.0, 16.0 / 256.0),
            scar_length: (10.0 / 256.0, 25.0 / 256.0),
            cutpaste_per_image: 3,
            scars_per_image: 3,
        }
    }
}

impl CutPasteConfig {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), String> {
        let range = |name: &str, (lo, hi): (f64, f64), max: f64| {
            if lo > 0.0 && lo <= hi && hi <= max {
                Ok(())
            } else {
                Err(format!(
                    "cutpaste.{name} = ({lo}, {hi}) must satisfy 0 < min <= max <= {max}"
                ))
            }
        };
        range("area", self.area, 0.5)?;
        range("aspect", self.aspect, 100.0)?;
        range("scar_width", self.scar_width, 0.5)?;
        range("scar_length", self.scar_length, 1.0)?;
        for (name, n) in [
            ("cutpaste_per_image", self.cutpaste_per_image),
            ("scars_per_image", self.scars_per_image),
        ] {
            if n > MAX_COPIES_PER_IMAGE {
                return Err(format!(
                    "cutpaste.{name} = {n} must be at most {MAX_COPIES_PER_IMAGE}"
                ));
            }
        }
        if self.cutpaste_per_image + self.scars_per_image == 0 {
            return Err(
                "cutpaste: at least one CutPaste or scar version per image is needed".into(),
            );
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(format!(
                "cutpaste.jitter = {} must be in [0, 1)",
                self.jitter
            ));
        }
        Ok(())
    }
}

/// Smallest scar width in pixels.
pub const MIN_SCAR_WIDTH_PX: f64 = 2.0;
/// Smallest scar length in pixels.
pub const MIN_SCAR_LENGTH_PX: f64 = 8.0;

/// One synthetic-anomaly kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasteKind {
    /// A rectangular patch of 2–15 % of the image.
    CutPaste,
    /// A thin, long rotated patch.
    Scar,
}

/// Returns a copy of `image` with one pasted patch of `kind`, and the pasted region's mask.
pub fn paste(
    image: &ChwImage,
    kind: PasteKind,
    config: &CutPasteConfig,
    rng: &mut ChaCha8Rng,
) -> (ChwImage, Vec<bool>) {
    let (w, h) = (image.width as f64, image.height as f64);
    let side = w.min(h);
    let (pw, ph) = match kind {
        PasteKind::CutPaste => {
            let area = rng.random_range(config.area.0..=config.area.1) * w * h;
            let aspect = (rng.random_range(config.aspect.0.ln()..=config.aspect.1.ln())).exp();
            (
                (area * aspect).sqrt().min(w * 0.9),
                (area / aspect).sqrt().min(h * 0.9),
            )
        }
        // A scar stays at least 2 px wide and 8 px long, so it is still a visible structure at
        // low validation resolutions.
        PasteKind::Scar => (
            (rng.random_range(config.scar_width.0..=config.scar_width.1) * side)
                .max(MIN_SCAR_WIDTH_PX),
            (rng.random_range(config.scar_length.0..=config.scar_length.1) * side)
                .max(MIN_SCAR_LENGTH_PX),
        ),
    };
    let (pw, ph) = (pw.max(1.0), ph.max(1.0));
    let angle = if config.max_rotation_deg > 0.0 {
        rng.random_range(-config.max_rotation_deg..=config.max_rotation_deg)
            .to_radians()
    } else {
        0.0
    };
    // Centres such that the unrotated source and the rotated target stay inside the image.
    let reach = 0.5
        * (pw * angle.cos().abs() + ph * angle.sin().abs())
            .max(pw * angle.sin().abs() + ph * angle.cos().abs());
    let centre = |rng: &mut ChaCha8Rng, half_w: f64, half_h: f64| {
        let x = if w > 2.0 * half_w {
            rng.random_range(half_w..=w - half_w)
        } else {
            w / 2.0
        };
        let y = if h > 2.0 * half_h {
            rng.random_range(half_h..=h - half_h)
        } else {
            h / 2.0
        };
        (x, y)
    };
    let source = centre(rng, pw / 2.0, ph / 2.0);
    let mut target = centre(rng, reach, reach);
    // Move the target away from the source when they overlap much.
    for _ in 0..8 {
        if (target.0 - source.0).abs() > pw / 2.0 || (target.1 - source.1).abs() > ph / 2.0 {
            break;
        }
        target = centre(rng, reach, reach);
    }
    let gains: Vec<f64> = (0..image.channels)
        .map(|_| 1.0 + rng.random_range(-config.jitter..=config.jitter))
        .collect();
    let offsets: Vec<f64> = (0..image.channels)
        .map(|_| rng.random_range(-config.jitter..=config.jitter) * 0.5)
        .collect();
    let soft = (config.soft_edge * side).max(0.5);
    let (sin, cos) = angle.sin_cos();

    let mut out = image.clone();
    let mut mask = vec![false; image.width * image.height];
    let x0 = (target.0 - reach).floor().max(0.0) as usize;
    let x1 = ((target.0 + reach).ceil() as usize).min(image.width);
    let y0 = (target.1 - reach).floor().max(0.0) as usize;
    let y1 = ((target.1 + reach).ceil() as usize).min(image.height);
    let plane = image.width * image.height;
    for y in y0..y1 {
        for x in x0..x1 {
            let (dx, dy) = (x as f64 + 0.5 - target.0, y as f64 + 0.5 - target.1);
            // Patch-local coordinates (inverse rotation).
            let (u, v) = (cos * dx + sin * dy, -sin * dx + cos * dy);
            let inside = (pw / 2.0 - u.abs()).min(ph / 2.0 - v.abs());
            if inside <= 0.0 {
                continue;
            }
            let alpha = (inside / soft).min(1.0);
            let sx = ((source.0 + u).floor().max(0.0) as usize).min(image.width - 1);
            let sy = ((source.1 + v).floor().max(0.0) as usize).min(image.height - 1);
            for c in 0..image.channels {
                let src = f64::from(image.data[c * plane + sy * image.width + sx]);
                let jittered = ((src - 0.5) * gains[c] + 0.5 + offsets[c]).clamp(0.0, 1.0);
                let old = f64::from(out.data[c * plane + y * image.width + x]);
                out.data[c * plane + y * image.width + x] =
                    (old * (1.0 - alpha) + jittered * alpha) as f32;
            }
            mask[y * image.width + x] = true;
        }
    }
    (out, mask)
}

/// A labelled validation sample: an image and 0 (normal) or 1 (synthetic anomaly).
#[derive(Debug, Clone)]
pub struct ValSample {
    /// The image.
    pub image: ChwImage,
    /// 0 normal, 1 CutPaste / scar.
    pub label: u8,
    /// Which synthetic anomaly (none for normal images).
    pub kind: Option<PasteKind>,
    /// Index of the validation image it was made from (itself, for normal images).
    pub source: usize,
    /// Where the synthetic anomaly is (row-major over the image; empty for normal images).
    pub mask: Vec<bool>,
}

/// Builds the CutPaste validation set: every validation image as normal, plus its CutPaste and
/// scar versions as anomalies. Deterministic for `seed`.
pub fn build_val_set(images: &[ChwImage], config: &CutPasteConfig, seed: u64) -> Vec<ValSample> {
    let mut set = Vec::new();
    for (i, image) in images.iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(
            seed ^ (0xC07_9A57E << 20) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        set.push(ValSample {
            image: image.clone(),
            label: 0,
            kind: None,
            source: i,
            mask: Vec::new(),
        });
        let kinds = std::iter::repeat_n(PasteKind::CutPaste, config.cutpaste_per_image)
            .chain(std::iter::repeat_n(PasteKind::Scar, config.scars_per_image));
        for kind in kinds {
            let (pasted, mask) = paste(image, kind, config, &mut rng);
            set.push(ValSample {
                image: pasted,
                label: 1,
                kind: Some(kind),
                source: i,
                mask,
            });
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(size: usize) -> ChwImage {
        let mut img = ChwImage::zeros(3, crate::image::Size::square(size));
        for c in 0..3 {
            for y in 0..size {
                for x in 0..size {
                    img.data[(c * size + y) * size + x] =
                        ((x + 2 * y + 7 * c) % size) as f32 / size as f32;
                }
            }
        }
        img
    }

    #[test]
    fn cutpaste_area_and_scar_shape_are_in_range() {
        let img = gradient(128);
        let cfg = CutPasteConfig {
            max_rotation_deg: 0.0,
            ..Default::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..20 {
            let (out, mask) = paste(&img, PasteKind::CutPaste, &cfg, &mut rng);
            let share = mask.iter().filter(|&&m| m).count() as f64 / (128.0 * 128.0);
            assert!((0.015..=0.16).contains(&share), "area {share}");
            assert_ne!(out.data, img.data);
            let (_, scar) = paste(&img, PasteKind::Scar, &cfg, &mut rng);
            let share = scar.iter().filter(|&&m| m).count() as f64 / (128.0 * 128.0);
            assert!(share < 0.01 && share > 0.0, "scar area {share}");
        }
    }

    #[test]
    fn pixels_outside_the_mask_are_untouched() {
        let img = gradient(64);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let (out, mask) = paste(
            &img,
            PasteKind::CutPaste,
            &CutPasteConfig::default(),
            &mut rng,
        );
        for (i, &m) in mask.iter().enumerate() {
            if !m {
                for c in 0..3 {
                    assert_eq!(out.data[c * 64 * 64 + i], img.data[c * 64 * 64 + i]);
                }
            }
        }
    }

    #[test]
    fn val_set_is_deterministic_and_labelled() {
        let imgs = vec![gradient(32), gradient(48)];
        let one_each = CutPasteConfig {
            cutpaste_per_image: 1,
            scars_per_image: 1,
            ..CutPasteConfig::default()
        };
        let a = build_val_set(&imgs, &one_each, 3);
        let b = build_val_set(&imgs, &one_each, 3);
        let c = build_val_set(&imgs, &one_each, 4);
        // The default: several copies per image, each knowing its source.
        let many = build_val_set(&imgs, &CutPasteConfig::default(), 3);
        assert_eq!(many.len(), 14);
        assert_eq!(many.iter().filter(|s| s.source == 1).count(), 7);
        assert_eq!(a.len(), 6);
        assert_eq!(
            a.iter().map(|s| s.label).collect::<Vec<_>>(),
            vec![0, 1, 1, 0, 1, 1]
        );
        assert!(a.iter().zip(&b).all(|(x, y)| x.image == y.image));
        assert!(a.iter().zip(&c).any(|(x, y)| x.image != y.image));
    }
}

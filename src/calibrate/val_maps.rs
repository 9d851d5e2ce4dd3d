//! The validation samples a calibration scores, and their error maps computed once for several
//! candidates: candidates that cut images into the same windows (the 12 whole-image candidates
//! differ only in error maps and statistics) share one model pass, whose reconstructions give
//! every error kind any of them needs; each candidate then takes its own maps out. The maps are
//! computed in the same chunks as a lone calibration computes them, so a shared calibration
//! gives the same profile to the bit.

use burn::prelude::*;

use super::ValidationSource;
use crate::data::anomaly::blend::{build_blend_set, BlendSample};
use crate::data::anomaly::cutpaste::{build_val_set, ValSample};
use crate::error::Result;
use crate::image::ChwImage;
use crate::model::unet::UNetConfig;
use crate::model::Networks;
use crate::score::maps::scale_maps_of_kinds;
use crate::score::{ErrorKind, ScoringConfig};
use crate::util::progress::Progress;

/// Most bytes of shared validation maps; above it each candidate computes its own in chunks.
pub const MAX_SHARED_BYTES: usize = 512 << 20;

/// The groups of validation samples, in the order their maps are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The normal validation images.
    Normal = 0,
    /// Their CutPaste and scar copies.
    Copies = 1,
    /// Their soft blends.
    Blends = 2,
}

/// Every validation sample of a calibration at the working resolution.
pub struct ValSamples {
    /// Normal images and their CutPaste / scar copies.
    pub val_set: Vec<ValSample>,
    /// Soft blends (none by default).
    pub blends: Vec<BlendSample>,
}

impl ValSamples {
    /// The samples of `val` at `config`'s working resolution (deterministic for its seed).
    pub fn build(config: &ScoringConfig, val: &ValidationSource) -> Self {
        let working: Vec<ChwImage> = val.images.iter().map(|i| config.to_working(i)).collect();
        Self {
            val_set: build_val_set(&working, val.cutpaste, val.seed),
            blends: build_blend_set(&working, val.blend, val.seed),
        }
    }

    /// The images of `group`, in order.
    pub fn group(&self, group: Group) -> Vec<&ChwImage> {
        match group {
            Group::Normal => self.labelled(0),
            Group::Copies => self.labelled(1),
            Group::Blends => self.blends.iter().map(|b| &b.image).collect(),
        }
    }

    fn labelled(&self, label: u8) -> Vec<&ChwImage> {
        self.val_set
            .iter()
            .filter(|s| s.label == label)
            .map(|s| &s.image)
            .collect()
    }
}

/// Images per model call of a calibration with `config` (bounds memory; the same for a lone
/// and a shared calibration, so that both compute the same numbers).
pub fn chunk_len(config: &ScoringConfig) -> usize {
    config.batch_size.max(4)
}

/// Error maps of every validation sample for several error kinds: per group, per sample,
/// `[scale * kinds + kind]`.
pub struct ValMaps {
    kinds: Vec<ErrorKind>,
    groups: [Vec<Vec<Vec<f32>>>; 3],
}

impl ValMaps {
    /// Computes the maps of every error kind of `candidates` on `val`, or `None` when they do
    /// not share windows and batch size (or there are fewer than two, or the maps would exceed
    /// [`MAX_SHARED_BYTES`]).
    pub fn for_candidates(
        model: &Networks,
        model_config: &UNetConfig,
        candidates: &[ScoringConfig],
        val: &ValidationSource,
        device: &Device,
        progress: &dyn Progress,
    ) -> Result<Option<Self>> {
        let Some(first) = candidates.first() else {
            return Ok(None);
        };
        let shared = candidates.len() >= 2
            && candidates
                .iter()
                .all(|c| c.same_windows(first) && c.batch_size == first.batch_size);
        if !shared {
            return Ok(None);
        }
        let mut kinds: Vec<ErrorKind> = Vec::new();
        for c in candidates {
            for &k in c.error.kinds() {
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
        }
        let samples = ValSamples::build(first, val);
        let count = samples.val_set.len() + samples.blends.len();
        let area = samples.val_set.first().map_or(0, |s| s.image.size().area());
        let bytes = count * first.windows.len() * kinds.len() * area * size_of::<f32>();
        if bytes > MAX_SHARED_BYTES {
            return Ok(None);
        }
        progress.start("scoring validation images", count as u64);
        let chunk = chunk_len(first);
        let mut groups: [Vec<Vec<Vec<f32>>>; 3] = Default::default();
        for (g, out) in [Group::Normal, Group::Copies, Group::Blends]
            .into_iter()
            .zip(&mut groups)
        {
            for part in samples.group(g).chunks(chunk) {
                let part: Vec<ChwImage> = part.iter().map(|&i| i.clone()).collect();
                out.extend(scale_maps_of_kinds(
                    model,
                    model_config,
                    first,
                    &kinds,
                    &part,
                    device,
                )?);
                progress.advance(part.len() as u64);
            }
        }
        progress.finish();
        Ok(Some(Self { kinds, groups }))
    }

    /// The maps of samples `start..start + count` of `group` for `config` (one of the
    /// candidates), in the order of its `map_specs`.
    pub fn select(
        &self,
        group: Group,
        start: usize,
        count: usize,
        config: &ScoringConfig,
    ) -> Vec<Vec<Vec<f32>>> {
        self.groups[group as usize][start..start + count]
            .iter()
            .map(|all| {
                (0..config.windows.len())
                    .flat_map(|s| config.error.kinds().iter().map(move |k| (s, k)))
                    .map(|(s, k)| {
                        let at = self
                            .kinds
                            .iter()
                            .position(|x| x == k)
                            .expect("a kind of one of the candidates");
                        all[s * self.kinds.len() + at].clone()
                    })
                    .collect()
            })
            .collect()
    }
}

//! The scoring profile: everything the scoring pipeline needs besides the weights, fitted on
//! validation data by calibration (the `calibrate` module) and saved beside the model as
//! `scoring.json`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::fuse::ScaleStats;
use super::{is_zero, ErrorMaps, Normalization, ScoringConfig};
use crate::error::{fail_file, Context, Result};
use crate::image::Size;
use crate::metrics::F1Max;
use crate::model::unet::UNetConfig;
use crate::util::fs::read_json;

/// File name of the scoring profile in a run directory.
pub const SCORING_FILE: &str = "scoring.json";

/// Version of the `scoring.json` format.
pub const SCORING_FORMAT_VERSION: u32 = 1;

/// One top-k candidate and its CutPaste-val AUROC.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TopKChoice {
    /// k in percent.
    #[serde(rename = "top_k")]
    pub top_k_percent: f64,
    /// Mean filter side before the top-k (0 = none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub score_filter: usize,
    /// CutPaste-val image AUROC with this k.
    pub val_auroc: f64,
}

/// Everything the scoring pipeline needs besides the weights; saved as `scoring.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoringProfile {
    /// Format version.
    pub format: u32,
    /// Settings, `top_k` being the chosen one.
    pub config: ScoringConfig,
    /// Per-scale statistics of the validation normal images (same order as the windows).
    pub stats: Vec<ScaleStats>,
    /// CutPaste-val AUROC of every top-k candidate.
    pub top_k_auroc: Vec<TopKChoice>,
    /// Decision threshold on the image score (anomalous when score ≥ threshold).
    pub threshold: f64,
    /// How the threshold was chosen.
    pub threshold_rule: String,
    /// Normal validation images.
    pub val_normal: usize,
    /// Synthetic anomalies of the validation set.
    pub val_anomalous: usize,
    /// CutPaste-val AUROC at the chosen k.
    pub val_auroc: f64,
    /// F1 / precision / recall on the validation set at the threshold.
    pub val_f1: F1Max,
    /// Image scores of the validation normal images at the chosen k (for ensembles and audits).
    pub val_normal_scores: Vec<f64>,
    /// Image scores of the validation set's synthetic anomalies (CutPaste and scar copies) at
    /// the chosen k: with [`Self::val_normal_scores`], what the threshold was chosen from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub val_anomalous_scores: Vec<f64>,
    /// Mean of the fused anomaly maps of the validation normal images (for ensembles of maps).
    #[serde(default)]
    pub val_map_mean: f64,
    /// Standard deviation of those maps' pixels.
    #[serde(default)]
    pub val_map_std: f64,
    /// CutPaste-val AUROC of every working resolution tried (the best was kept).
    #[serde(default)]
    pub working_size_auroc: Vec<WorkingSizeChoice>,
    /// Soft blends in the validation set ([`crate::data::anomaly::blend`], opt-in; 0: none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub val_blends: usize,
    /// Pixel AUROC of the fused maps on the validation set, which chooses the heat-map profile:
    /// every pixel of the normal images against the CutPaste and scar copies' masks, or against
    /// the soft blends' masks when the validation set has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_pixel_auroc: Option<f64>,
    /// With soft blends: the same against the CutPaste and scar copies' masks (reported, not
    /// used for a choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_pixel_auroc_cutpaste: Option<f64>,
    /// The profile whose fused map is the anomaly map (heat maps, pixel metrics, ensembles of
    /// maps) when calibration found another candidate of the same family of maps clearly better
    /// at localising (validation pixel AUROC, by calibration's `HEATMAP_MARGIN`) than the
    /// one that scores images best; absent: this profile's own map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heatmap: Option<Box<ScoringProfile>>,
}

/// One working-resolution candidate and its CutPaste-val AUROC (at its best k).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WorkingSizeChoice {
    /// Long side of the working resolution.
    pub working_size: usize,
    /// CutPaste-val image AUROC.
    pub val_auroc: f64,
    /// The error maps of the candidate, where candidates differ in them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorMaps>,
    /// The normalisation of the candidate, where candidates differ in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<Normalization>,
    /// Its validation pixel AUROC ([`ScoringProfile::val_pixel_auroc`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_pixel_auroc: Option<f64>,
    /// Its pixel AUROC on the CutPaste copies ([`ScoringProfile::val_pixel_auroc_cutpaste`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_pixel_auroc_cutpaste: Option<f64>,
}

impl ScoringProfile {
    /// ` + N soft blends` for a validation set with soft blends, else nothing (for messages).
    pub fn blends_text(&self) -> String {
        match self.val_blends {
            0 => String::new(),
            n => format!(" + {n} soft blends"),
        }
    }

    /// The profile that makes the anomaly map: [`ScoringProfile::heatmap`] or this one.
    pub fn map_profile(&self) -> &ScoringProfile {
        self.heatmap.as_deref().unwrap_or(self)
    }

    /// Reads a saved profile, checking its format and that it (and its heat-map profile) fits
    /// `model`.
    pub fn load(path: &Path, model: &UNetConfig) -> Result<Self> {
        let profile: ScoringProfile = read_json(path)?;
        profile.check(path, model)?;
        if let Some(h) = &profile.heatmap {
            if h.heatmap.is_some() {
                fail_file!(path, "a heat-map profile cannot have a heat-map profile");
            }
            h.check(path, model)
                .with_context(|| format!("{}: heat-map profile", path.display()))?;
        }
        Ok(profile)
    }

    /// Checks a loaded profile against `model` (`path` names it in errors).
    fn check(&self, path: &Path, model: &UNetConfig) -> Result<()> {
        let profile = self;
        if profile.format != SCORING_FORMAT_VERSION {
            fail_file!(
                path,
                "scoring format {} is not the supported format {SCORING_FORMAT_VERSION}",
                profile.format
            );
        }
        profile
            .config
            .validate(model)
            .with_context(|| format!("{}: invalid scoring settings", path.display()))?;
        let specs = profile.config.map_specs();
        if profile.stats.len() != specs.len()
            || profile
                .stats
                .iter()
                .zip(&specs)
                .any(|(s, &(w, k))| (s.window, s.kind) != (w, k))
        {
            fail_file!(
                path,
                "the statistics do not match the windows and error maps"
            );
        }
        if profile.config.normalization == Normalization::Location {
            let size = Size::square(profile.config.working_size);
            if let Some(s) = profile.stats.iter().find(|s| {
                s.location.as_ref().is_none_or(|l| {
                    l.size != size || l.mean.len() != size.area() || l.std.len() != size.area()
                })
            }) {
                fail_file!(
                    path,
                    "location normalisation: the per-pixel statistics of window {} are missing or not {}x{}",
                    s.window,
                    size.width,
                    size.height
                );
            }
        }
        for s in &profile.stats {
            let values = s.location.iter().flat_map(|l| l.mean.iter().chain(&l.std));
            if !(s.mean.is_finite() && s.std.is_finite() && s.std >= 0.0)
                || values.clone().any(|v| !v.is_finite())
            {
                fail_file!(
                    path,
                    "the statistics of window {} are not finite or have a negative std",
                    s.window
                );
            }
        }
        Ok(())
    }
}

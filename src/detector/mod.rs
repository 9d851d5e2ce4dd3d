//! A detector: something that turns images into anomaly maps, scores and labels. A single
//! trained model with its scoring profile ([`single`]) or an ensemble of them ([`ensemble`]);
//! [`open`] tells them apart by what a path holds. Detectors read what training and
//! calibration wrote; they never change it.

pub mod ensemble;
pub mod single;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::device::Backend;
use crate::error::{fail_file, Result};
use crate::image::ChwImage;
use crate::score::profile::ScoringProfile;
use crate::train::RunConfig;
use ensemble::{is_ensemble, Ensemble, EnsembleDescription};
use single::{SingleModel, TrainedModel};

/// One image scored: its anomaly map at the working resolution and its score.
pub struct ScoredImage {
    /// The image at its original size (for heat maps).
    pub original: ChwImage,
    /// Fused, smoothed anomaly map at the working resolution (of the heat-map profile when the
    /// scoring profile has one).
    pub map: ChwImage,
    /// Image score (at the profile's top-k; for an ensemble, the fused z-score).
    pub score: f64,
    /// For an ensemble: every member's own image score (empty for a single model).
    pub member_scores: Vec<f64>,
    /// The image score under each of [`Scorer::score_candidates`] (same order; empty when
    /// there are none).
    pub candidate_scores: Vec<f64>,
}

/// What `eval` and `predict` need from a model or an ensemble.
pub trait Scorer: Sync {
    /// The model directory or ensemble definition.
    fn source(&self) -> &Path;
    /// Decodes an image for this scorer (fails on a channel-count mismatch).
    fn load_image(&self, path: &Path) -> Result<ChwImage>;
    /// Scores decoded images (any size).
    fn score(&self, images: Vec<ChwImage>) -> Result<Vec<ScoredImage>>;
    /// The calibrated decision threshold on the image score.
    fn threshold(&self) -> f64;
    /// How the threshold was chosen.
    fn threshold_rule(&self) -> String;
    /// Value of the anomaly map drawn orange in heat maps, given the threshold in use.
    fn heatmap_scale(&self, threshold: f64) -> f64;
    /// Images per scoring call.
    fn chunk(&self) -> usize;
    /// Image-score candidates, (score filter side, top-k percent), to report test AUROCs for
    /// (empty: none).
    fn score_candidates(&self) -> Vec<(usize, f64)>;
    /// Member model directories (empty for a single model).
    fn members(&self) -> Vec<PathBuf>;
    /// The scoring settings and calibration, for `metrics.json`.
    fn describe(&self) -> ScoringDescription;
    /// The training configuration of the (first) model: its data set and settings.
    fn run_config(&self) -> &RunConfig;
}

/// What `metrics.json` records of the scoring used: a single model's profile, or an ensemble's
/// definition and every member's profile.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ScoringDescription {
    /// A single model's scoring profile.
    Single(Box<ScoringProfile>),
    /// An ensemble.
    Ensemble(EnsembleDescription),
}

impl ScoringDescription {
    /// The chosen top-k in percent (single models only).
    pub fn top_k_percent(&self) -> Option<f64> {
        match self {
            ScoringDescription::Single(p) => Some(p.config.top_k_percent),
            ScoringDescription::Ensemble(_) => None,
        }
    }

    /// The CutPaste-val AUROC of the calibrated scoring.
    pub fn val_auroc(&self) -> Option<f64> {
        match self {
            ScoringDescription::Single(p) => Some(p.val_auroc),
            ScoringDescription::Ensemble(e) => e.ensemble.calibration.as_ref().map(|c| c.val_auroc),
        }
    }
}

/// Opens what `path` holds, ready to score: an ensemble (folder with `ensemble.json`, or the
/// file itself) with its calibration, or a run directory with its saved scoring profile.
pub fn open(path: &Path, backend: Backend) -> Result<Box<dyn Scorer>> {
    if is_ensemble(path) {
        let ensemble = Ensemble::open(path, backend)?;
        if ensemble.def.calibration.is_none() {
            fail_file!(
                ensemble.path,
                "the ensemble has no calibration; write it with `reconad ensemble create`"
            );
        }
        return Ok(Box::new(ensemble));
    }
    let model = TrainedModel::open(path, backend)?;
    let profile = model.load_profile()?;
    Ok(Box::new(SingleModel { model, profile }))
}

//! Ensembles of 3–5 models (SPEC §6). Each member's image score is z-normalised with the mean and
//! std of that member's scores on the **validation normal images** (saved in its `scoring.json`
//! at calibration, never from a test set), and the z-scores are averaged (or their median, or a
//! weighted mean). Anomaly maps are fused the same way: each member's fused map is z-normalised
//! with the statistics of its validation normal maps, resized to the largest member working
//! resolution and averaged, so an ensemble also gives heat maps and pixel metrics.
//!
//! The ensemble's threshold is chosen like a single model's: Youden's J on a CutPaste validation
//! set, here the members' common validation images (members must share their train/val split;
//! `reconad ensemble train` makes them so) with copies made at the largest member working
//! resolution, scored by every member and fused.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::single::TrainedModel;
use super::{ScoredImage, Scorer, ScoringDescription};
use crate::device::Backend;
use crate::error::{fail_file, Context, Result};
use crate::image::ChwImage;
use crate::metrics::F1Max;
use crate::score::profile::ScoringProfile;
use crate::train::RunConfig;
use crate::util::fs::read_json;

/// File name of an ensemble definition inside its folder.
pub const ENSEMBLE_FILE: &str = "ensemble.json";

/// Version of the ensemble definition format.
pub const ENSEMBLE_FORMAT_VERSION: u32 = 1;

/// Guard of the member z-normalisation: `(s − mean) / (std + EPS)`.
pub const EPS: f64 = 1e-6;

/// Heat maps of an ensemble are in z-units of the members' validation maps: this value is drawn
/// orange (3 standard deviations above the normal mean).
pub const HEATMAP_Z: f64 = 3.0;

/// How member z-scores are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Mean of the z-scores.
    #[default]
    Mean,
    /// Median of the z-scores.
    Median,
    /// Weighted mean (`weights` in the definition).
    Weighted,
}

/// The ensemble's own calibration on the common validation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleCalibration {
    /// Threshold on the fused score.
    pub threshold: f64,
    /// How it was chosen.
    pub threshold_rule: String,
    /// CutPaste-val AUROC of the fused score.
    pub val_auroc: f64,
    /// CutPaste-val AUROC of every member on the same set.
    pub member_val_auroc: Vec<f64>,
    /// F1 / precision / recall on the validation set at the threshold.
    pub val_f1: F1Max,
    /// Normal validation images.
    pub val_normal: usize,
    /// Synthetic anomalies.
    pub val_anomalous: usize,
}

/// `ensemble.json`: the members and how they are fused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleDef {
    /// Format version.
    pub format: u32,
    /// Member run directories (relative paths are relative to the definition's folder).
    pub members: Vec<PathBuf>,
    /// How member z-scores are combined.
    #[serde(default)]
    pub fusion: Fusion,
    /// Weights of [`Fusion::Weighted`], one per member.
    #[serde(default)]
    pub weights: Vec<f64>,
    /// Calibration of the fused score (written by `ensemble train` / `ensemble create`).
    #[serde(default)]
    pub calibration: Option<EnsembleCalibration>,
}

/// Validation images a member needs: its scores are z-normalised with their std.
pub const MIN_VAL_IMAGES: usize = 2;

/// What `metrics.json` records of an ensemble: its definition and every member's
/// normalisation and scoring profile.
#[derive(Debug, Clone, Serialize)]
pub struct EnsembleDescription {
    /// The definition (members, fusion, calibration).
    pub ensemble: EnsembleDef,
    /// Every member.
    pub members: Vec<MemberDescription>,
}

/// One member in [`EnsembleDescription`].
#[derive(Debug, Clone, Serialize)]
pub struct MemberDescription {
    /// Member run directory.
    pub model: PathBuf,
    /// Mean of its validation normal image scores.
    pub val_score_mean: f64,
    /// Std of its validation normal image scores.
    pub val_score_std: f64,
    /// Its scoring profile.
    pub scoring: ScoringProfile,
}

/// One member: its model, profile, and the validation statistics it is normalised with.
pub struct Member {
    /// The model and its scoring profile.
    pub model: TrainedModel,
    /// Its scoring profile.
    pub profile: ScoringProfile,
    /// Mean of its validation normal image scores.
    pub score_mean: f64,
    /// Std of its validation normal image scores.
    pub score_std: f64,
}

impl Member {
    /// `(score − mean) / (std + EPS)` with the member's validation statistics.
    pub fn z(&self, score: f64) -> f64 {
        (score - self.score_mean) / (self.score_std + EPS)
    }
}

/// A loaded ensemble.
pub struct Ensemble {
    /// The definition file.
    pub path: PathBuf,
    /// Its content.
    pub def: EnsembleDef,
    /// The members, in definition order.
    pub members: Vec<Member>,
}

/// The definition file named by `path`: the file itself, or `path/ensemble.json`.
pub fn definition_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join(ENSEMBLE_FILE)
    } else {
        path.to_path_buf()
    }
}

/// True when `path` is an ensemble folder or definition file.
pub fn is_ensemble(path: &Path) -> bool {
    definition_path(path).is_file() && !path.join("config.json").is_file()
}

impl EnsembleDef {
    /// Checks the definition on its own (member count, weights).
    pub fn validate(&self, path: &Path) -> Result<()> {
        if self.format != ENSEMBLE_FORMAT_VERSION {
            fail_file!(
                path,
                "ensemble format {} is not the supported format {ENSEMBLE_FORMAT_VERSION}",
                self.format
            );
        }
        if self.members.is_empty() {
            fail_file!(path, "the ensemble has no members");
        }
        if self.fusion == Fusion::Weighted
            && (self.weights.len() != self.members.len()
                || self.weights.iter().any(|w| !(w.is_finite() && *w >= 0.0))
                || self.weights.iter().sum::<f64>() <= 0.0)
        {
            fail_file!(path, "weighted fusion needs one non-negative weight per member ({} members, {} weights) with a positive sum",
                self.members.len(),
                self.weights.len()
            );
        }
        Ok(())
    }

    /// Member directory `i` resolved against the definition's folder.
    pub fn member_dir(&self, path: &Path, i: usize) -> PathBuf {
        let m = &self.members[i];
        if m.is_absolute() {
            m.clone()
        } else {
            path.parent().unwrap_or(Path::new(".")).join(m)
        }
    }
}

impl Ensemble {
    /// Opens an ensemble (folder or definition file) and every member; fails naming the member
    /// when one is missing, uncalibrated, or cannot be fused with the others.
    pub fn open(path: &Path, backend: Backend) -> Result<Self> {
        let path = definition_path(path);
        if !path.is_file() {
            fail_file!(path, "ensemble definition not found");
        }
        let def: EnsembleDef = read_json(&path)?;
        Self::from_def(path, def, backend)
    }

    /// An ensemble from a definition held in memory, to be saved at `path`.
    pub fn from_def(path: PathBuf, def: EnsembleDef, backend: Backend) -> Result<Self> {
        def.validate(&path)?;
        let mut members = Vec::new();
        for i in 0..def.members.len() {
            let dir = def.member_dir(&path, i);
            let model = TrainedModel::open(&dir, backend)
                .with_context(|| format!("{}: member {}", path.display(), dir.display()))?;
            let profile = model
                .load_profile()
                .with_context(|| format!("{}: member {}", path.display(), dir.display()))?;
            if profile.val_normal_scores.len() < MIN_VAL_IMAGES {
                fail_file!(path, "member {} has {} validation normal score(s) in scoring.json; its scores cannot be z-normalised (recalibrate it)",
                    dir.display(),
                    profile.val_normal_scores.len()
                );
            }
            let (mean, std) = mean_std_f64(&profile.val_normal_scores);
            members.push(Member {
                model,
                profile,
                score_mean: mean,
                score_std: std,
            });
        }
        let channels = members[0].model.config.model.channels;
        if let Some(m) = members
            .iter()
            .find(|m| m.model.config.model.channels != channels)
        {
            fail_file!(
                path,
                "members cannot be fused: {} has {} channel(s), {} has {channels}",
                m.model.run.root.display(),
                m.model.config.model.channels,
                members[0].model.run.root.display()
            );
        }
        Ok(Self { path, def, members })
    }

    /// The largest working resolution among the members.
    pub fn max_working_size(&self) -> usize {
        self.members
            .iter()
            .map(|m| m.profile.config.working_size)
            .max()
            .unwrap_or(1)
    }

    /// Fuses member z-scores with the definition's rule.
    pub fn fuse_scores(&self, z: &[f64]) -> f64 {
        fuse_z(z, self.def.fusion, &self.def.weights)
    }
}

/// Mean and population std of `values`.
fn mean_std_f64(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// Combines z-scores: mean, median, or weighted mean.
pub fn fuse_z(z: &[f64], fusion: Fusion, weights: &[f64]) -> f64 {
    match fusion {
        Fusion::Mean => z.iter().sum::<f64>() / z.len() as f64,
        Fusion::Median => {
            let mut v = z.to_vec();
            v.sort_by(f64::total_cmp);
            let n = v.len();
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }
        }
        Fusion::Weighted => {
            let total: f64 = weights.iter().sum();
            z.iter().zip(weights).map(|(a, w)| a * w).sum::<f64>() / total
        }
    }
}

impl Scorer for Ensemble {
    fn source(&self) -> &Path {
        &self.path
    }

    fn load_image(&self, path: &Path) -> Result<ChwImage> {
        self.members[0].model.load_image(path)
    }

    fn score(&self, images: Vec<ChwImage>) -> Result<Vec<ScoredImage>> {
        let per_member: Vec<Vec<ScoredImage>> = self
            .members
            .iter()
            .map(|m| m.model.score(images.clone(), &m.profile))
            .collect::<Result<_>>()?;
        let side = self.max_working_size();
        let mut out = Vec::with_capacity(images.len());
        for (i, original) in images.into_iter().enumerate() {
            let scores: Vec<f64> = per_member.iter().map(|s| s[i].score).collect();
            let z: Vec<f64> = self
                .members
                .iter()
                .zip(&scores)
                .map(|(m, &s)| m.z(s))
                .collect();
            // Maps: each member's z-normalised map at the largest working resolution, fused.
            let size = original.size().fit_long_side(side);
            let maps: Vec<Vec<f32>> = self
                .members
                .iter()
                .zip(&per_member)
                .map(|(m, s)| {
                    let map = s[i].map.resized(size);
                    let maps = m.profile.map_profile();
                    let scale = 1.0 / (maps.val_map_std + EPS);
                    map.data
                        .iter()
                        .map(|&v| ((f64::from(v) - maps.val_map_mean) * scale) as f32)
                        .collect()
                })
                .collect();
            let mut zs = vec![0.0f64; maps.len()];
            let fused_map: Vec<f32> = (0..size.area())
                .map(|p| {
                    for (z, map) in zs.iter_mut().zip(&maps) {
                        *z = f64::from(map[p]);
                    }
                    fuse_z(&zs, self.def.fusion, &self.def.weights) as f32
                })
                .collect();
            out.push(ScoredImage {
                original,
                map: ChwImage::map(size, fused_map),
                score: self.fuse_scores(&z),
                member_scores: scores,
                candidate_scores: Vec::new(),
            });
        }
        Ok(out)
    }

    fn threshold(&self) -> f64 {
        self.def
            .calibration
            .as_ref()
            .map_or(f64::NAN, |c| c.threshold)
    }

    fn threshold_rule(&self) -> String {
        self.def
            .calibration
            .as_ref()
            .map_or("uncalibrated".into(), |c| c.threshold_rule.clone())
    }

    fn heatmap_scale(&self, _threshold: f64) -> f64 {
        HEATMAP_Z
    }

    fn chunk(&self) -> usize {
        8
    }

    fn score_candidates(&self) -> Vec<(usize, f64)> {
        Vec::new()
    }

    fn members(&self) -> Vec<PathBuf> {
        self.members
            .iter()
            .map(|m| m.model.run.root.clone())
            .collect()
    }

    fn describe(&self) -> ScoringDescription {
        ScoringDescription::Ensemble(EnsembleDescription {
            ensemble: self.def.clone(),
            members: self
                .members
                .iter()
                .map(|m| MemberDescription {
                    model: m.model.run.root.clone(),
                    val_score_mean: m.score_mean,
                    val_score_std: m.score_std,
                    scoring: m.profile.clone(),
                })
                .collect(),
        })
    }

    fn run_config(&self) -> &RunConfig {
        &self.members[0].model.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusion_rules() {
        assert_eq!(fuse_z(&[1.0, 2.0, 6.0], Fusion::Mean, &[]), 3.0);
        assert_eq!(fuse_z(&[1.0, 6.0, 2.0], Fusion::Median, &[]), 2.0);
        assert_eq!(fuse_z(&[1.0, 6.0, 2.0, 3.0], Fusion::Median, &[]), 2.5);
        assert_eq!(fuse_z(&[1.0, 3.0], Fusion::Weighted, &[3.0, 1.0]), 1.5);
    }

    #[test]
    fn definitions_are_validated() {
        let p = Path::new("e/ensemble.json");
        let mut def = EnsembleDef {
            format: ENSEMBLE_FORMAT_VERSION,
            members: vec!["a".into(), "/abs/b".into()],
            fusion: Fusion::Weighted,
            weights: vec![1.0],
            calibration: None,
        };
        assert!(def
            .validate(p)
            .unwrap_err()
            .to_string()
            .contains("one non-negative weight"));
        def.weights = vec![1.0, 2.0];
        def.validate(p).unwrap();
        assert_eq!(def.member_dir(p, 0), PathBuf::from("e/a"));
        assert_eq!(def.member_dir(p, 1), PathBuf::from("/abs/b"));
        def.members.clear();
        assert!(def
            .validate(p)
            .unwrap_err()
            .to_string()
            .contains("no members"));
    }
}

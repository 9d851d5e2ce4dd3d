//! Calibration of the scoring pipeline on the validation split, never on test labels
//! (SPEC §5, §7): per-scale z-normalisation statistics from the validation normal images, the
//! top-k chosen by CutPaste-val AUROC, and the decision threshold. The result is the model's
//! `scoring.json`.

use anyhow::{Context, Result};
use burn::prelude::*;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use crate::data::cutpaste::{build_val_set, CutPasteConfig};
use crate::data::image_io::ChwImage;
use crate::metrics::{auroc, f1_at, f1_max, F1Max};
use crate::model::unet::{UNet, UNetConfig};
use crate::score::{fuse, image_score, mean_std, scale_maps_parallel, ScaleStats, ScoringConfig};

/// Version of the `scoring.json` format.
pub const SCORING_FORMAT_VERSION: u32 = 1;

/// How the decision threshold is chosen (documented in the README).
pub const THRESHOLD_RULE: &str = "F1-optimal threshold on the CutPaste validation set (validation normal images vs their CutPaste and scar copies): the lowest validation score predicted anomalous at the best F1";

/// One top-k candidate and its CutPaste-val AUROC.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TopKChoice {
    /// k in percent.
    pub top_k: f64,
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
    /// Mean of the fused anomaly maps of the validation normal images (for ensembles of maps).
    #[serde(default)]
    pub val_map_mean: f64,
    /// Standard deviation of those maps' pixels.
    #[serde(default)]
    pub val_map_std: f64,
    /// CutPaste-val AUROC of every working resolution tried (the best was kept).
    #[serde(default)]
    pub working_size_auroc: Vec<WorkingSizeChoice>,
}

/// One working-resolution candidate and its CutPaste-val AUROC (at its best k).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WorkingSizeChoice {
    /// Long side of the working resolution.
    pub working_size: usize,
    /// CutPaste-val image AUROC.
    pub val_auroc: f64,
}

/// The validation data a calibration uses: the normal validation images (any size; they are
/// resized to the working resolution) and how to make their CutPaste / scar copies.
pub struct ValidationSource<'a> {
    /// Normal validation images.
    pub images: &'a [ChwImage],
    /// CutPaste settings of the run.
    pub cutpaste: &'a CutPasteConfig,
    /// Seed of the CutPaste copies.
    pub seed: u64,
}

/// Builds the scoring profile of `model` from the validation set `val` and `config` (whose
/// `top_k` is replaced by the best candidate).
pub fn calibrate(
    model: &UNet,
    model_config: &UNetConfig,
    mut config: ScoringConfig,
    val: &ValidationSource,
    device: &Device,
    progress: &ProgressBar,
) -> Result<ScoringProfile> {
    config.validate(model_config)?;
    if val.images.is_empty() {
        anyhow::bail!("calibration needs validation images, the split has none");
    }
    let working: Vec<ChwImage> = val.images.iter().map(|i| config.to_working(i)).collect();
    let val_set = build_val_set(&working, val.cutpaste, val.seed);
    let labels: Vec<u8> = val_set.iter().map(|s| s.label).collect();
    progress.set_length(val_set.len() as u64);
    // The normal images' scale maps are kept (the statistics come from them); the anomalies are
    // scored in chunks after, so memory is bounded by the normal images.
    let chunk = config.batch_size.max(4);
    let normal: Vec<&ChwImage> = val_set
        .iter()
        .filter(|s| s.label == 0)
        .map(|s| &s.image)
        .collect();
    let mut normal_maps = Vec::with_capacity(normal.len());
    for part in normal.chunks(chunk) {
        let part: Vec<ChwImage> = part.iter().map(|&i| i.clone()).collect();
        normal_maps.extend(scale_maps_parallel(
            model,
            model_config,
            &config,
            &part,
            device,
        )?);
        progress.inc(part.len() as u64);
    }
    let stats: Vec<ScaleStats> = config
        .map_specs()
        .into_iter()
        .enumerate()
        .map(|(s, (window, kind))| {
            let (mean, std) = mean_std(normal_maps.iter().map(|m| m[s].as_slice()));
            ScaleStats {
                window,
                kind,
                mean,
                std,
            }
        })
        .collect();
    // Image scores of every validation sample for every top-k candidate: [sample][candidate].
    let ks = &config.top_k_candidates;
    let scores_from_fused =
        |fused: &[f32]| -> Vec<f64> { ks.iter().map(|&k| image_score(fused, k)).collect() };
    let scores_of = |maps: &[Vec<f32>], img: &ChwImage| -> Vec<f64> {
        scores_from_fused(&fuse(maps, &stats, &config, img.width, img.height))
    };
    // The normal images' fused maps: their scores, and their statistics (for ensembles of maps).
    let normal_fused: Vec<Vec<f32>> = normal_maps
        .iter()
        .zip(&normal)
        .map(|(m, img)| fuse(m, &stats, &config, img.width, img.height))
        .collect();
    let (map_mean, map_std) = mean_std(normal_fused.iter().map(Vec::as_slice));
    let mut normal_iter = normal_fused.iter();
    let mut sample_scores: Vec<Vec<f64>> = Vec::with_capacity(val_set.len());
    let mut pending: Vec<usize> = Vec::new();
    let flush = |pending: &mut Vec<usize>, out: &mut Vec<Vec<f64>>| -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let part: Vec<ChwImage> = pending.iter().map(|&i| val_set[i].image.clone()).collect();
        let maps = scale_maps_parallel(model, model_config, &config, &part, device)?;
        for (i, m) in pending.iter().zip(&maps) {
            out[*i] = scores_of(m, &val_set[*i].image);
        }
        progress.inc(part.len() as u64);
        pending.clear();
        Ok(())
    };
    for (i, sample) in val_set.iter().enumerate() {
        if sample.label == 0 {
            let fused = normal_iter.next().expect("one fused map per normal image");
            sample_scores.push(scores_from_fused(fused));
        } else {
            sample_scores.push(Vec::new());
            pending.push(i);
            if pending.len() == chunk {
                flush(&mut pending, &mut sample_scores)?;
            }
        }
    }
    flush(&mut pending, &mut sample_scores)?;

    let mut choices = Vec::new();
    let mut best: Option<(TopKChoice, Vec<f64>)> = None;
    for (c, &k) in config.top_k_candidates.iter().enumerate() {
        let scores: Vec<f64> = sample_scores.iter().map(|s| s[c]).collect();
        let a = auroc(&scores, &labels).context("CutPaste-val AUROC needs both classes")?;
        let choice = TopKChoice {
            top_k: k,
            val_auroc: a,
        };
        choices.push(choice);
        if best.as_ref().is_none_or(|(b, _)| a > b.val_auroc) {
            best = Some((choice, scores));
        }
    }
    let (choice, scores) = best.expect("at least one candidate");
    config.top_k = choice.top_k;
    let f1 = f1_max(&scores, &labels).context("threshold needs anomalies")?;
    let threshold = f1.threshold;
    let working_size = config.working_size;
    Ok(ScoringProfile {
        format: SCORING_FORMAT_VERSION,
        config,
        stats,
        top_k_auroc: choices,
        threshold,
        threshold_rule: THRESHOLD_RULE.into(),
        val_normal: labels.iter().filter(|&&l| l == 0).count(),
        val_anomalous: labels.iter().filter(|&&l| l != 0).count(),
        val_auroc: choice.val_auroc,
        val_f1: f1_at(&scores, &labels, threshold),
        val_normal_scores: scores
            .iter()
            .zip(&labels)
            .filter(|(_, &l)| l == 0)
            .map(|(&s, _)| s)
            .collect(),
        val_map_mean: map_mean,
        val_map_std: map_std,
        working_size_auroc: vec![WorkingSizeChoice {
            working_size,
            val_auroc: choice.val_auroc,
        }],
    })
}

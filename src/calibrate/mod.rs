//! Calibration: the one place that fits a scoring profile on validation data, never on test
//! labels (SPEC §5, §7). For a single model: per-scale z-normalisation statistics from the
//! validation normal images, the top-k chosen by CutPaste-val AUROC, the working resolution
//! chosen among candidates the same way, and the decision threshold. For an ensemble: the
//! threshold on the fused score of the members' common validation set (`ensemble`). Both use
//! one threshold rule, [`choose_threshold`] (`threshold`).

use burn::prelude::*;

mod choice;
mod ensemble;
mod threshold;
pub mod val_maps;

pub use choice::{CandidateChoice, MapFamily, HEATMAP_MARGIN};
pub use ensemble::{calibrate_ensemble, calibrate_ensemble_and_save};
pub use threshold::{choose_threshold, ThresholdChoice, THRESHOLD_RULE};

use crate::data::anomaly::blend::SoftBlendConfig;
use crate::data::anomaly::cutpaste::CutPasteConfig;
use crate::data::split::Split;
use crate::detector::single::TrainedModel;
use crate::error::{fail, Context, Result};
use crate::image::{ChwImage, Size};
use crate::metrics::auroc;
use crate::model::unet::UNetConfig;
use crate::model::Networks;
use crate::score::fuse::{fuse, image_score, mean_std, ScaleStats};
use crate::score::location::PixelMoments;
use crate::score::maps::scale_maps_parallel;
use crate::score::profile::{
    ScoringProfile, TopKChoice, WorkingSizeChoice, SCORING_FORMAT_VERSION,
};
use crate::score::{score_filter_for, ErrorMaps, Normalization, ScoringConfig};
use crate::util::fs::write_json_atomic;
use crate::util::progress::Progress;
use val_maps::{chunk_len, Group, ValMaps, ValSamples};

/// The validation data a calibration uses: the normal validation images (any size; they are
/// resized to the working resolution) and how to make their CutPaste / scar copies and soft
/// blends.
pub struct ValidationSource<'a> {
    /// Normal validation images.
    pub images: &'a [ChwImage],
    /// CutPaste settings of the run.
    pub cutpaste: &'a CutPasteConfig,
    /// Soft-blend settings of the run.
    pub blend: &'a SoftBlendConfig,
    /// Seed of the CutPaste copies.
    pub seed: u64,
}

/// Builds the scoring profile of `model` from the validation set `val` and `config` (whose
/// `top_k` is replaced by the best candidate). With `shared`, the error maps are taken from
/// it (computed once for several candidates, `config` among them) instead of a model pass.
pub fn calibrate(
    model: &Networks,
    model_config: &UNetConfig,
    mut config: ScoringConfig,
    val: &ValidationSource,
    shared: Option<&ValMaps>,
    device: &Device,
    progress: &dyn Progress,
) -> Result<ScoringProfile> {
    config.validate(model_config)?;
    if val.images.is_empty() {
        fail!("calibration needs validation images, the split has none");
    }
    let ValSamples { val_set, blends } = ValSamples::build(&config, val);
    let labels: Vec<u8> = val_set.iter().map(|s| s.label).collect();
    progress.start("calibrating", (val_set.len() + blends.len()) as u64);
    // The error maps of samples `start..` of a group: shared, or from a model pass.
    let maps_of = |group: Group, start: usize, images: &[ChwImage]| match shared {
        Some(s) => Ok(s.select(group, start, images.len(), &config)),
        None => scale_maps_parallel(model, model_config, &config, images, device),
    };
    // The normal images' scale maps are kept (the statistics come from them); the anomalies are
    // scored in chunks after, so memory is bounded by the normal images.
    let chunk = chunk_len(&config);
    let normal: Vec<&ChwImage> = val_set
        .iter()
        .filter(|s| s.label == 0)
        .map(|s| &s.image)
        .collect();
    let mut normal_maps = Vec::with_capacity(normal.len());
    for (c, part) in normal.chunks(chunk).enumerate() {
        let part: Vec<ChwImage> = part.iter().map(|&i| i.clone()).collect();
        normal_maps.extend(maps_of(Group::Normal, c * chunk, &part)?);
        progress.advance(part.len() as u64);
    }
    let specs = config.map_specs();
    let global: Vec<(f64, f64)> = (0..specs.len())
        .map(|s| mean_std(normal_maps.iter().map(|m| m[s].as_slice())))
        .collect();
    let location = config.normalization == Normalization::Location;
    let moments: Vec<PixelMoments> = if location {
        let size = Size::square(config.working_size);
        (0..specs.len())
            .map(|s| {
                let mut m = PixelMoments::new(size);
                normal_maps.iter().for_each(|maps| m.add(&maps[s]));
                m
            })
            .collect()
    } else {
        Vec::new()
    };
    // `left_out`: the validation image whose own maps stay out of the location statistics
    // (leave-one-out, so no image is judged against statistics it is part of).
    let stats_of = |left_out: Option<usize>| -> Result<Vec<ScaleStats>> {
        specs
            .iter()
            .enumerate()
            .map(|(s, &(window, kind))| {
                let (mean, std) = global[s];
                let location = match moments.get(s) {
                    None => None,
                    Some(m) => Some(
                        m.stats(left_out.map(|j| normal_maps[j][s].as_slice()), std)
                            .with_context(|| {
                                format!(
                                    "location normalisation needs at least 3 validation images, the split has {}",
                                    m.count()
                                )
                            })?,
                    ),
                };
                Ok(ScaleStats {
                    window,
                    kind,
                    mean,
                    std,
                    location,
                })
            })
            .collect()
    };
    let stats = stats_of(None)?;
    let loo: Vec<Vec<ScaleStats>> = if location {
        (0..normal.len())
            .map(|j| stats_of(Some(j)))
            .collect::<Result<_>>()?
    } else {
        Vec::new()
    };
    let stats_for = |source: usize| loo.get(source).unwrap_or(&stats);
    // Image score candidates: every (score filter, top-k) pair.
    let candidates = config.score_candidates();
    let scores_from_fused = |fused: &[f32], size: Size| -> Vec<f64> {
        candidates
            .iter()
            .map(|&(f, k)| image_score(fused, size, f, k))
            .collect()
    };
    // The normal images' fused maps: their scores, and their statistics (for ensembles of maps).
    let normal_fused: Vec<Vec<f32>> = normal_maps
        .iter()
        .zip(&normal)
        .enumerate()
        .map(|(j, (m, img))| fuse(m, stats_for(j), &config, img.size()))
        .collect();
    let (map_mean, map_std) = mean_std(normal_fused.iter().map(Vec::as_slice));
    // Pixel AUROC on the CutPaste copies and on the soft blends, each against every pixel of
    // the normal images.
    let mut pixels = PixelVal::default();
    for (fused, img) in normal_fused.iter().zip(&normal) {
        pixels.add(fused, img.size(), None);
    }
    let mut blend_pixels = pixels.clone();
    let mut normal_iter = normal_fused.iter().zip(&normal);
    let mut sample_scores: Vec<Vec<f64>> = Vec::with_capacity(val_set.len());
    let mut pending: Vec<usize> = Vec::new();
    let mut copies_done = 0;
    let mut flush = |pending: &mut Vec<usize>, out: &mut Vec<Vec<f64>>| -> Result<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let part: Vec<ChwImage> = pending.iter().map(|&i| val_set[i].image.clone()).collect();
        let maps = maps_of(Group::Copies, copies_done, &part)?;
        copies_done += part.len();
        for (&i, m) in pending.iter().zip(&maps) {
            let sample = &val_set[i];
            let size = sample.image.size();
            let fused = fuse(m, stats_for(sample.source), &config, size);
            pixels.add(&fused, size, Some(&sample.mask));
            out[i] = scores_from_fused(&fused, size);
        }
        progress.advance(part.len() as u64);
        pending.clear();
        Ok(())
    };
    for (i, sample) in val_set.iter().enumerate() {
        if sample.label == 0 {
            let (fused, img) = normal_iter.next().expect("one fused map per normal image");
            sample_scores.push(scores_from_fused(fused, img.size()));
        } else {
            sample_scores.push(Vec::new());
            pending.push(i);
            if pending.len() == chunk {
                flush(&mut pending, &mut sample_scores)?;
            }
        }
    }
    flush(&mut pending, &mut sample_scores)?;
    for (c, part) in blends.chunks(chunk).enumerate() {
        let images: Vec<ChwImage> = part.iter().map(|b| b.image.clone()).collect();
        let maps = maps_of(Group::Blends, c * chunk, &images)?;
        for (sample, m) in part.iter().zip(&maps) {
            let size = sample.image.size();
            let fused = fuse(m, stats_for(sample.source), &config, size);
            blend_pixels.add(&fused, size, Some(&sample.mask));
        }
        progress.advance(part.len() as u64);
    }
    // With soft blends they choose the heat maps, the copies' pixel AUROC is reported beside.
    let (val_pixel_auroc, val_pixel_auroc_cutpaste) = if blends.is_empty() {
        (pixels.auroc(), None)
    } else {
        (blend_pixels.auroc(), pixels.auroc())
    };

    let mut choices = Vec::new();
    let mut best: Option<(TopKChoice, Vec<f64>)> = None;
    for (c, &(filter, k)) in candidates.iter().enumerate() {
        let scores: Vec<f64> = sample_scores.iter().map(|s| s[c]).collect();
        let a = auroc(&scores, &labels).context("CutPaste-val AUROC needs both classes")?;
        let choice = TopKChoice {
            top_k_percent: k,
            score_filter: filter,
            val_auroc: a,
        };
        choices.push(choice);
        if best.as_ref().is_none_or(|(b, _)| a > b.val_auroc) {
            best = Some((choice, scores));
        }
    }
    let (choice, scores) = best.expect("at least one candidate");
    config.top_k_percent = choice.top_k_percent;
    config.score_filter = choice.score_filter;
    progress.finish();
    let threshold = choose_threshold(&scores, &labels)?;
    let working_size = config.working_size;
    Ok(ScoringProfile {
        format: SCORING_FORMAT_VERSION,
        config,
        stats,
        top_k_auroc: choices,
        threshold: threshold.threshold,
        threshold_rule: THRESHOLD_RULE.into(),
        val_normal: labels.iter().filter(|&&l| l == 0).count(),
        val_anomalous: labels.iter().filter(|&&l| l != 0).count(),
        val_blends: blends.len(),
        val_auroc: choice.val_auroc,
        val_f1: threshold.at_threshold,
        val_normal_scores: scores
            .iter()
            .zip(&labels)
            .filter(|(_, &l)| l == 0)
            .map(|(&s, _)| s)
            .collect(),
        val_anomalous_scores: scores
            .iter()
            .zip(&labels)
            .filter(|(_, &l)| l != 0)
            .map(|(&s, _)| s)
            .collect(),
        val_map_mean: map_mean,
        val_map_std: map_std,
        working_size_auroc: vec![WorkingSizeChoice {
            working_size,
            val_auroc: choice.val_auroc,
            error: None,
            normalization: None,
            val_pixel_auroc,
            val_pixel_auroc_cutpaste,
        }],
        val_pixel_auroc,
        val_pixel_auroc_cutpaste,
        heatmap: None,
    })
}

/// Largest side at which validation pixel AUROC is computed (maps and masks are box-averaged
/// down to it): enough to rank pixels, and bounded memory at any working size.
const PIXEL_VAL_SIDE: usize = 128;

/// Pixels of the validation maps and their labels (0 for every pixel of a normal image, the
/// pasted region's mask for a synthetic anomaly), for the validation pixel AUROC.
#[derive(Default, Clone)]
struct PixelVal {
    scores: Vec<f64>,
    labels: Vec<u8>,
}

impl PixelVal {
    /// Adds a fused map of `size` and, for an anomaly, its mask (same size).
    fn add(&mut self, map: &[f32], size: Size, mask: Option<&[bool]>) {
        let scale = (PIXEL_VAL_SIDE as f64 / size.width.max(size.height) as f64).min(1.0);
        let small = Size::new(
            ((size.width as f64 * scale).round() as usize).max(1),
            ((size.height as f64 * scale).round() as usize).max(1),
        );
        let shrink = |data: Vec<f32>| ChwImage::map(size, data).resized(small).data;
        self.scores
            .extend(shrink(map.to_vec()).into_iter().map(f64::from));
        match mask {
            None => self.labels.extend(std::iter::repeat_n(0, small.area())),
            Some(m) => {
                let m = shrink(m.iter().map(|&b| f32::from(u8::from(b))).collect());
                self.labels
                    .extend(m.into_iter().map(|v| u8::from(v >= 0.5)));
            }
        }
    }

    /// The pixel AUROC (`None` without both classes).
    fn auroc(&self) -> Option<f64> {
        auroc(&self.scores, &self.labels)
    }
}

/// Default scoring candidates for `model`; calibration keeps the one with the best CutPaste-val
/// AUROC, and within each the best image-score readout (top-k % of the fused map, with or without
/// a mean filter of [`score_filter_for`] first). A whole-image model is scored as one window at
/// its training size, with each error map (squared, 1 − SSIM, both fused by max and by mean,
/// MSGMS; with a discriminative head also the head's map, alone and fused with 1 − SSIM)
/// normalised globally and, when the split has at least 3 validation images, per location.
/// Otherwise one candidate per working resolution: the bottom and the top of its training
/// rescale range (the scales whole training images were seen at), multi-scale windows, squared
/// error (and the head's map, with a head).
pub fn default_candidates(model: &TrainedModel) -> Vec<ScoringConfig> {
    let readouts = |c: ScoringConfig| ScoringConfig {
        score_filter_candidates: vec![0, score_filter_for(c.working_size)],
        ..c
    };
    if let Some(size) = model.config.train.whole_image_size() {
        let val_images = Split::load(&model.run.split()).map_or(0, |s| s.val.len());
        let has_head = model.model.head.is_some();
        let mut normalizations = vec![Normalization::Validation];
        if val_images >= 3 {
            normalizations.push(Normalization::Location);
        }
        return normalizations
            .into_iter()
            .flat_map(|normalization| {
                [
                    ErrorMaps::Squared,
                    ErrorMaps::Ssim,
                    ErrorMaps::Both,
                    ErrorMaps::BothMean,
                    ErrorMaps::Msgms,
                    ErrorMaps::Head,
                    ErrorMaps::HeadSsim,
                ]
                .into_iter()
                .filter(move |e| has_head || !e.needs_head())
                .map(move |error| ScoringConfig {
                    error,
                    normalization,
                    ..ScoringConfig::whole_image(size)
                })
            })
            .map(readouts)
            .filter(|c| c.validate(&model.config.model).is_ok())
            .collect();
    }
    let (lo, hi) = model.config.train.augment.rescale;
    let mut sizes = vec![lo as usize, hi as usize];
    sizes.dedup();
    let errors: &[ErrorMaps] = if model.model.head.is_some() {
        &[ErrorMaps::Squared, ErrorMaps::Head]
    } else {
        &[ErrorMaps::Squared]
    };
    sizes
        .into_iter()
        .flat_map(|size| {
            errors.iter().map(move |&error| ScoringConfig {
                error,
                ..ScoringConfig::for_working_size(size)
            })
        })
        .map(readouts)
        .filter(|c| c.validate(&model.config.model).is_ok())
        .collect()
}

/// The settings scoring options are applied to: the run's saved ones, else the defaults at the
/// top of the training rescale range.
pub fn base_scoring(model: &TrainedModel) -> ScoringConfig {
    model.load_profile().map(|p| p.config).unwrap_or_else(|_| {
        ScoringConfig::for_working_size(model.config.train.augment.rescale.1 as usize)
    })
}

/// Calibrates `config` on `model`'s own validation split (its data set reopened, its split file
/// reused).
pub fn calibrate_model(
    model: &TrainedModel,
    config: ScoringConfig,
    progress: &dyn Progress,
) -> Result<ScoringProfile> {
    let val_images = model.val_images(None)?;
    calibrate(
        &model.model,
        &model.config.model,
        config,
        &validation_source(model, &val_images),
        None,
        &model.device,
        progress,
    )
}

/// `model`'s validation set: `images` (its decoded validation split) and its run's settings.
fn validation_source<'a>(model: &'a TrainedModel, images: &'a [ChwImage]) -> ValidationSource<'a> {
    ValidationSource {
        images,
        cutpaste: &model.config.train.cutpaste,
        blend: &model.config.train.blend,
        seed: model.config.train.seed,
    }
}

/// Calibrates every candidate and keeps the best by CutPaste-val AUROC (on ties, the better
/// validation pixel AUROC, then the first), its heat maps its own or, when clearly better, its
/// family's best localiser's ([`CandidateChoice`]); the profile lists every candidate's AUROC. Candidates that cut images
/// into the same windows share one model pass over the validation set ([`ValMaps`]).
pub fn calibrate_best(
    model: &TrainedModel,
    candidates: Vec<ScoringConfig>,
    progress: &dyn Progress,
) -> Result<ScoringProfile> {
    calibrate_candidates(model, candidates, true, progress)
}

/// [`calibrate_best`], with `share` = false: every candidate makes its own model pass (the
/// reference the shared pass is checked against).
pub fn calibrate_candidates(
    model: &TrainedModel,
    candidates: Vec<ScoringConfig>,
    share: bool,
    progress: &dyn Progress,
) -> Result<ScoringProfile> {
    let val_images = model.val_images(None)?;
    let val = validation_source(model, &val_images);
    // Candidates are validated before the shared pass needs their error kinds.
    for c in &candidates {
        c.validate(&model.config.model)?;
    }
    let shared = if share {
        ValMaps::for_candidates(
            &model.model,
            &model.config.model,
            &candidates,
            &val,
            &model.device,
            progress,
        )?
    } else {
        None
    };
    let errors_differ = candidates.windows(2).any(|w| w[0].error != w[1].error);
    let normalizations_differ = candidates
        .windows(2)
        .any(|w| w[0].normalization != w[1].normalization);
    let mut choice = CandidateChoice::default();
    let mut tried = Vec::new();
    for config in candidates {
        let error = errors_differ.then_some(config.error);
        let normalization = normalizations_differ.then_some(config.normalization);
        let profile = calibrate(
            &model.model,
            &model.config.model,
            config,
            &val,
            shared.as_ref(),
            &model.device,
            progress,
        )?;
        tried.extend(
            profile
                .working_size_auroc
                .iter()
                .map(|&c| WorkingSizeChoice {
                    error,
                    normalization,
                    ..c
                }),
        );
        choice.offer(profile);
    }
    let mut best = choice
        .finish()
        .context("no scoring configuration to calibrate")?;
    best.working_size_auroc = tried;
    Ok(best)
}

/// [`calibrate_best`], saved as the run's `scoring.json`.
pub fn calibrate_and_save(
    model: &TrainedModel,
    candidates: Vec<ScoringConfig>,
    progress: &dyn Progress,
) -> Result<ScoringProfile> {
    let profile = calibrate_best(model, candidates, progress)?;
    write_json_atomic(&model.profile_path(), &profile)?;
    Ok(profile)
}

//! Evaluation on a data set's test split (SPEC §7): image scores and labels, image AUROC (overall,
//! per defect type, per top-k candidate), F1-max, F1 at the calibrated threshold, pixel AUROC and
//! AUPRO from anomaly maps resized back to the original image size, optional heat maps.
//! Test labels are only read to compute the metrics; nothing here feeds back into the model.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::data::image_io;
use crate::data::{Dataset, Item, Label};
use crate::detector::{ScoredImage, Scorer, ScoringDescription};
use crate::error::{fail_file, Error, Result};
use crate::image::{ChwImage, Size};
use crate::metrics::{auroc, f1_at, f1_max, F1Max, PixelAccumulator, PixelMetrics};
use crate::report::heatmap::write_overlay;
use crate::report::names::{heatmap_names, heatmap_path};
use crate::util::fs::{write_atomic, write_json_atomic};
use crate::util::progress::{NoProgress, Progress};

/// Evaluation settings besides the scoring profile.
#[derive(Clone, Copy)]
pub struct EvalOptions<'a> {
    /// Threshold replacing the calibrated one.
    pub threshold: Option<f64>,
    /// Folder for heat-map overlays (`<defect>/<stem>.png`); none when `None`.
    pub heatmaps: Option<&'a Path>,
    /// Where progress goes.
    pub progress: &'a dyn Progress,
    /// Leave out test images that cannot be read (each a warning, all listed in the metrics)
    /// instead of failing.
    pub skip_unreadable: bool,
}

impl Default for EvalOptions<'_> {
    fn default() -> Self {
        Self {
            threshold: None,
            heatmaps: None,
            progress: &NoProgress,
            skip_unreadable: false,
        }
    }
}

/// One test image's result (a row of `scores.csv`).
#[derive(Debug, Clone, Serialize)]
pub struct ImageRow {
    /// Image file.
    pub path: PathBuf,
    /// Defect type (`good` for normal images).
    pub defect: String,
    /// Ground truth: 0 normal, 1 anomaly.
    pub label: u8,
    /// Image score.
    pub score: f64,
    /// Predicted label at the threshold.
    pub predicted: u8,
    /// Ground-truth mask of an anomalous image, if it has one.
    pub mask: Option<PathBuf>,
}

/// Image AUROC of one top-k candidate.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TopKAuroc {
    /// k in percent.
    pub top_k: f64,
    /// Mean filter side before the top-k (0 = none).
    #[serde(skip_serializing_if = "crate::score::is_zero")]
    pub score_filter: usize,
    /// Test image AUROC with this k (reported, never used to choose k).
    pub image_auroc: Option<f64>,
}

/// Image counts.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Counts {
    /// Test images.
    pub images: usize,
    /// Normal test images.
    pub normal: usize,
    /// Anomalous test images.
    pub anomalous: usize,
    /// Anomalous images with a ground-truth mask (in the pixel metrics).
    pub anomalous_with_mask: usize,
}

/// Everything `metrics.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct EvalMetrics {
    /// Data set name.
    pub dataset: String,
    /// Model directory.
    pub model: PathBuf,
    /// Image AUROC (the headline).
    pub image_auroc: Option<f64>,
    /// Pixel AUROC over all normal images and masked anomalous images.
    pub pixel_auroc: Option<f64>,
    /// AUPRO up to FPR 0.3, normalised to [0, 1].
    pub aupro: Option<f64>,
    /// Pixel metric details (counts, binning error bound).
    pub pixel: Option<PixelMetrics>,
    /// Best image F1 over all thresholds (an oracle: uses test labels; reported only).
    pub f1_max: Option<F1Max>,
    /// Threshold used for the predicted labels.
    pub threshold: f64,
    /// Where the threshold came from.
    pub threshold_source: String,
    /// F1, precision and recall of the predicted labels.
    pub at_threshold: F1Max,
    /// Image AUROC of each defect type against the normal images.
    pub image_auroc_by_defect: BTreeMap<String, Option<f64>>,
    /// Image AUROC of every top-k candidate (the profile's k was chosen on CutPaste-val).
    pub image_auroc_by_top_k: Vec<TopKAuroc>,
    /// Image counts.
    pub counts: Counts,
    /// The scoring used (settings, statistics, calibration results; for an ensemble its
    /// definition and calibration).
    pub scoring: ScoringDescription,
    /// For an ensemble: every member's metrics on its own scores.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberMetrics>,
    /// Test images left out because they could not be read (`--skip-unreadable`); the metrics
    /// are over the others.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedFile>,
    /// Wall time of the evaluation, seconds.
    pub seconds: f64,
    /// Test images scored per second (decode, scoring, pixel metrics and heat maps included).
    pub images_per_second: f64,
}

/// One ensemble member's image metrics on the same test set.
#[derive(Debug, Clone, Serialize)]
pub struct MemberMetrics {
    /// Member model directory.
    pub model: PathBuf,
    /// Its image AUROC.
    pub image_auroc: Option<f64>,
    /// Its F1-max.
    pub f1_max: Option<F1Max>,
}

/// A file `eval`/`predict` left out because it could not be read (`--skip-unreadable`).
#[derive(Debug, Clone, Serialize)]
pub struct SkippedFile {
    /// The file.
    pub path: PathBuf,
    /// Why it could not be read.
    pub problem: String,
}

/// Decodes `paths` in parallel for `model`, as (index, image) pairs. An unreadable file is an
/// error, or with `skip` a warning recorded in `skipped` (and left out of the result).
fn load_images(
    model: &dyn Scorer,
    paths: &[&Path],
    skip: bool,
    skipped: &mut Vec<SkippedFile>,
) -> Result<Vec<(usize, ChwImage)>> {
    let decoded: Vec<Result<ChwImage>> = paths.par_iter().map(|p| model.load_image(p)).collect();
    let mut images = Vec::with_capacity(paths.len());
    for (i, (path, image)) in paths.iter().zip(decoded).enumerate() {
        match image {
            Ok(image) => images.push((i, image)),
            Err(e) if skip => {
                tracing::warn!("skipped (unreadable): {e}");
                skipped.push(SkippedFile {
                    path: path.to_path_buf(),
                    problem: e.to_string(),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(images)
}

/// A fused map kept for the pixel metrics: the working-resolution map and the original size.
struct KeptMap {
    map: ChwImage,
    original: Size,
}

/// Scores every test image of `dataset` with `model` (a model or an ensemble) and computes the
/// metrics.
pub fn evaluate(
    model: &dyn Scorer,
    dataset: &Dataset,
    options: &EvalOptions,
) -> Result<(EvalMetrics, Vec<ImageRow>)> {
    let started = Instant::now();
    let items = &dataset.test;
    if items.is_empty() {
        fail_file!(dataset.root, "the data set has no test images");
    }
    let threshold = usable_threshold(options.threshold, model)?;
    let candidates = model.score_candidates();
    let members = model.members();
    let mut member_scores: Vec<Vec<f64>> = vec![Vec::new(); members.len()];
    let bar = options.progress;
    bar.start("scoring", items.len() as u64);
    let mut rows = Vec::with_capacity(items.len());
    let mut by_k: Vec<Vec<f64>> = vec![Vec::new(); candidates.len()];
    let mut kept = Vec::with_capacity(items.len());
    let mut skipped = Vec::new();
    let mut scored_items: Vec<Item> = Vec::with_capacity(items.len());
    let chunk = model.chunk();
    for part in items.chunks(chunk) {
        let paths: Vec<&Path> = part.iter().map(|i| i.path.as_path()).collect();
        let (index, images): (Vec<usize>, Vec<ChwImage>) =
            load_images(model, &paths, options.skip_unreadable, &mut skipped)?
                .into_iter()
                .unzip();
        bar.advance((part.len() - index.len()) as u64);
        let scored = model.score(images)?;
        for (item, s) in index.iter().map(|&i| &part[i]).zip(scored) {
            scored_items.push(item.clone());
            check_finite(model, &item.path, &s)?;
            for (&score, scores) in s.candidate_scores.iter().zip(&mut by_k) {
                scores.push(score);
            }
            for (all, &m) in member_scores.iter_mut().zip(&s.member_scores) {
                all.push(m);
            }
            if let Some(dir) = options.heatmaps {
                let scale = model.heatmap_scale(threshold);
                write_overlay(
                    &heatmap_path(dir, &item.defect, &item.path),
                    &s.original,
                    &s.map,
                    scale,
                )?;
            }
            rows.push(ImageRow {
                path: item.path.clone(),
                defect: item.defect.clone(),
                label: item.label.as_u8(),
                score: s.score,
                predicted: u8::from(s.score >= threshold),
                mask: item.mask.clone(),
            });
            kept.push(KeptMap {
                original: s.original.size(),
                map: s.map,
            });
            bar.advance(1);
        }
    }
    bar.finish();
    if scored_items.is_empty() {
        fail_file!(dataset.root, "no test image could be read");
    }
    let items = &scored_items;
    let pixel = pixel_metrics(items, &kept, options.progress)?;
    let scores: Vec<f64> = rows.iter().map(|r| r.score).collect();
    let labels: Vec<u8> = rows.iter().map(|r| r.label).collect();
    let mut by_defect = BTreeMap::new();
    for defect in items
        .iter()
        .filter(|i| i.label == Label::Anomaly)
        .map(|i| &i.defect)
    {
        if by_defect.contains_key(defect) {
            continue;
        }
        let (s, l): (Vec<f64>, Vec<u8>) = rows
            .iter()
            .filter(|r| r.label == 0 || &r.defect == defect)
            .map(|r| (r.score, r.label))
            .unzip();
        by_defect.insert(defect.clone(), auroc(&s, &l));
    }
    let anomalous = labels.iter().filter(|&&l| l != 0).count();
    let seconds = started.elapsed().as_secs_f64();
    let metrics = EvalMetrics {
        dataset: dataset.name.clone(),
        model: model.source().to_path_buf(),
        image_auroc: auroc(&scores, &labels),
        pixel_auroc: pixel.map(|p| p.auroc),
        aupro: pixel.map(|p| p.aupro),
        pixel,
        f1_max: f1_max(&scores, &labels),
        threshold,
        threshold_source: if options.threshold.is_some() {
            "--threshold".into()
        } else {
            model.threshold_rule()
        },
        at_threshold: f1_at(&scores, &labels, threshold),
        image_auroc_by_defect: by_defect,
        image_auroc_by_top_k: candidates
            .iter()
            .zip(&by_k)
            .map(|(&(score_filter, top_k), s)| TopKAuroc {
                top_k,
                score_filter,
                image_auroc: auroc(s, &labels),
            })
            .collect(),
        counts: Counts {
            images: rows.len(),
            normal: rows.len() - anomalous,
            anomalous,
            anomalous_with_mask: items
                .iter()
                .filter(|i| i.label == Label::Anomaly && i.mask.is_some())
                .count(),
        },
        scoring: model.describe(),
        members: members
            .iter()
            .zip(&member_scores)
            .map(|(m, s)| MemberMetrics {
                model: m.clone(),
                image_auroc: auroc(s, &labels),
                f1_max: f1_max(s, &labels),
            })
            .collect(),
        skipped,
        seconds,
        images_per_second: rows.len() as f64 / seconds.max(1e-9),
    };
    Ok((metrics, rows))
}

/// Pixel AUROC / AUPRO over the normal images and the anomalous images that have masks; maps
/// are resized to the original size one image at a time and binned.
fn pixel_metrics(
    items: &[Item],
    kept: &[KeptMap],
    progress: &dyn Progress,
) -> Result<Option<PixelMetrics>> {
    if !items.iter().any(|i| i.mask.is_some()) {
        return Ok(None);
    }
    // Bin edges: quantiles of the working-resolution maps (at most ~4 M values sampled); the
    // maps resized to the original size are convex combinations of these values.
    let total: usize = kept.iter().map(|k| k.map.data.len()).sum();
    let step = total.div_ceil(1 << 22).max(1);
    let sample: Vec<f32> = kept
        .iter()
        .flat_map(|k| k.map.data.iter().copied())
        .step_by(step)
        .collect();
    let mut acc = PixelAccumulator::from_sample(&sample);
    let bar = progress;
    bar.start("pixel metrics", items.len() as u64);
    let pairs: Vec<(&Item, &KeptMap)> = items
        .iter()
        .zip(kept)
        .filter(|(i, _)| i.label == Label::Normal || i.mask.is_some())
        .collect();
    for part in pairs.chunks(8) {
        let prepared: Vec<(ChwImage, Option<Vec<bool>>)> = part
            .par_iter()
            .map(|(item, k)| -> Result<_> {
                let full = k.map.resized(k.original);
                let mask = match &item.mask {
                    Some(path) => Some(image_io::load_mask(path, &item.path, k.original)?.data),
                    None => None,
                };
                Ok((full, mask))
            })
            .collect::<Result<_>>()?;
        for (full, mask) in &prepared {
            acc.add(&full.data, mask.as_deref(), full.size());
            bar.advance(1);
        }
    }
    bar.finish();
    Ok(acc.finish())
}

/// Writes `metrics.json` and `scores.csv` (path, defect, label, score, predicted, mask) into
/// `out` (atomically).
pub fn write_outputs(out: &Path, metrics: &EvalMetrics, rows: &[ImageRow]) -> Result<()> {
    let csv_error = |e: csv::Error| Error::file(out.join("scores.csv"), e.to_string());
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["path", "defect", "label", "score", "predicted", "mask"])
        .map_err(csv_error)?;
    for r in rows {
        w.write_record([
            r.path.display().to_string(),
            r.defect.clone(),
            r.label.to_string(),
            format!("{:.6}", r.score),
            r.predicted.to_string(),
            r.mask
                .as_ref()
                .map_or(String::new(), |m| m.display().to_string()),
        ])
        .map_err(csv_error)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::file(out.join("scores.csv"), e.to_string()))?;
    write_atomic(&out.join("scores.csv"), &bytes)?;
    // Last: a metrics.json marks a complete evaluation folder.
    write_json_atomic(&out.join("metrics.json"), metrics)
}

/// The short table printed after an evaluation.
pub fn summary_table(m: &EvalMetrics) -> String {
    let f = |v: Option<f64>| v.map_or("-".into(), |a| format!("{a:.4}"));
    let mut s = format!(
        "{}: {} test images ({} normal, {} anomalous)\n",
        m.dataset, m.counts.images, m.counts.normal, m.counts.anomalous
    );
    s += &format!("  image AUROC   {}\n", f(m.image_auroc));
    s += &format!("  pixel AUROC   {}\n", f(m.pixel_auroc));
    s += &format!("  AUPRO@0.3     {}\n", f(m.aupro));
    if let Some(b) = m.f1_max {
        s += &format!(
            "  F1-max        {:.4} (at score {:.4})\n",
            b.f1, b.threshold
        );
    }
    s += &format!(
        "  threshold     {:.4}: F1 {:.4}, precision {:.4}, recall {:.4}\n",
        m.threshold, m.at_threshold.f1, m.at_threshold.precision, m.at_threshold.recall
    );
    for (defect, a) in &m.image_auroc_by_defect {
        s += &format!("  AUROC {defect:<14} {}\n", f(*a));
    }
    let ks: Vec<String> = m
        .image_auroc_by_top_k
        .iter()
        .map(|t| match t.score_filter {
            0 => format!("{}%: {}", t.top_k, f(t.image_auroc)),
            side => format!("{}% of {side}x{side} means: {}", t.top_k, f(t.image_auroc)),
        })
        .collect();
    if let Some(k) = m.scoring.top_k_percent() {
        s += &format!(
            "  top-k {k} % (chosen on CutPaste-val); test AUROC by k: {}\n",
            ks.join(", ")
        );
    }
    for member in &m.members {
        s += &format!(
            "  member {}: image AUROC {}\n",
            member.model.display(),
            f(member.image_auroc)
        );
    }
    s += &format!(
        "  {:.1} s, {:.2} images/s\n",
        m.seconds, m.images_per_second
    );
    s
}

/// The threshold to label with: the one given, else the calibrated one; either must be finite.
pub fn usable_threshold(given: Option<f64>, model: &dyn Scorer) -> Result<f64> {
    match given {
        Some(t) if !t.is_finite() => Err(Error::setting("threshold", t, "must be a finite number")),
        Some(t) => Ok(t),
        None if !model.threshold().is_finite() => Err(Error::file(
            model.source(),
            format!(
                "the calibrated threshold is {}; recalibrate the model",
                model.threshold()
            ),
        )),
        None => Ok(model.threshold()),
    }
}

/// A non-finite score or map is a broken model, never a label: an error naming both.
fn check_finite(model: &dyn Scorer, image: &Path, scored: &ScoredImage) -> Result<()> {
    if scored.score.is_finite() && scored.map.data.iter().all(|v| v.is_finite()) {
        return Ok(());
    }
    Err(Error::file(
        image,
        format!(
            "the model {} gives a non-finite score ({}) or anomaly map: its weights or scoring.json are broken",
            model.source().display(),
            scored.score
        ),
    ))
}

/// One scored file of [`predict`].
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    /// The image file.
    pub path: PathBuf,
    /// Image score.
    pub score: f64,
    /// 0 normal, 1 anomaly (score ≥ threshold).
    pub label: u8,
    /// Heat-map overlay written for it, if asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heatmap: Option<PathBuf>,
}

/// Checks that heat maps named `names` in `dir` overwrite nothing they should not, before
/// anything is scored: never one of the input `files`, and no existing file unless `replace`.
pub fn check_heatmap_targets(
    files: &[PathBuf],
    names: &[String],
    dir: &Path,
    replace: bool,
) -> Result<()> {
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    let inputs: std::collections::HashSet<PathBuf> =
        files.iter().filter_map(|f| canonical(f)).collect();
    for name in names {
        let target = dir.join(name);
        if !target.exists() {
            continue;
        }
        if canonical(&target).is_some_and(|t| inputs.contains(&t)) {
            fail_file!(
                target,
                "the heat map would overwrite this input image; choose a --heatmaps folder outside the inputs"
            );
        }
        if !replace {
            fail_file!(
                target,
                "exists, and the heat map would replace it; pass --force to replace existing files, or choose an empty --heatmaps folder"
            );
        }
    }
    Ok(())
}

/// Scores image files with `model` in chunks, labels them at `threshold`, writes a heat map per
/// image into `heatmaps` (names from [`heatmap_names`]; existing files are replaced only when
/// `replace_heatmaps`, input images never, see [`check_heatmap_targets`]) and hands each result
/// to `emit` as soon as its chunk is done. With `skip_unreadable`, files that cannot be read are
/// warnings, returned at the end, instead of an error.
pub fn predict(
    model: &dyn Scorer,
    files: &[PathBuf],
    threshold: f64,
    heatmaps: Option<&Path>,
    replace_heatmaps: bool,
    skip_unreadable: bool,
    mut emit: impl FnMut(Prediction) -> Result<()>,
) -> Result<Vec<SkippedFile>> {
    let names = heatmap_names(files);
    if let Some(dir) = heatmaps {
        check_heatmap_targets(files, &names, dir, replace_heatmaps)?;
    }
    let chunk = model.chunk();
    let mut skipped = Vec::new();
    for (part, part_names) in files.chunks(chunk).zip(names.chunks(chunk)) {
        let paths: Vec<&Path> = part.iter().map(|p| p.as_path()).collect();
        let (index, images): (Vec<usize>, Vec<ChwImage>) =
            load_images(model, &paths, skip_unreadable, &mut skipped)?
                .into_iter()
                .unzip();
        let scored = model.score(images)?;
        for (&i, scored) in index.iter().zip(scored) {
            let (path, name) = (&part[i], &part_names[i]);
            check_finite(model, path, &scored)?;
            let heatmap = match heatmaps {
                Some(dir) => {
                    let png = dir.join(name);
                    let scale = model.heatmap_scale(threshold);
                    write_overlay(&png, &scored.original, &scored.map, scale)?;
                    Some(png)
                }
                None => None,
            };
            emit(Prediction {
                path: path.clone(),
                score: scored.score,
                label: u8::from(scored.score >= threshold),
                heatmap,
            })?;
        }
    }
    Ok(skipped)
}

//! Evaluation metrics (SPEC §7). Image AUROC is exact: the Mann–Whitney rank formula with ties
//! averaged, equal to the trapezoidal area under the ROC curve. Image F1-max is exact over every
//! distinct score. Pixel metrics (AUROC, AUPRO up to FPR 0.3) are accumulated image by image in
//! histograms of up to [`PIXEL_BINS`] bins (equal-width, or quantile edges from a sample of the
//! scores so that every bin holds a similar share of pixels), so memory does not grow with the
//! number of pixels; [`PixelMetrics::auroc_error_bound`] bounds the binning error of the pixel AUROC.

use image::{GrayImage, Luma};
use imageproc::region_labelling::{connected_components, Connectivity};
use serde::{Deserialize, Serialize};

use crate::image::Size;

/// Area under the ROC curve of `scores` (higher = more anomalous) against `labels` (1 anomaly,
/// 0 normal). `None` when either class is absent or a score is NaN.
pub fn auroc(scores: &[f64], labels: &[u8]) -> Option<f64> {
    assert_eq!(scores.len(), labels.len(), "one label per score");
    if scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let positives = labels.iter().filter(|&&l| l != 0).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (tie-averaged, 1-based) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mean_rank = (i + j) as f64 / 2.0 + 1.0;
        let tied_positives = order[i..=j].iter().filter(|&&k| labels[k] != 0).count();
        rank_sum += mean_rank * tied_positives as f64;
        i = j + 1;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

/// Every distinct score from the highest down, with the cumulative counts of anomalous (`tp`)
/// and normal (`fp`) scores at or above it: `(threshold, tp, fp)`, one entry per distinct score
/// (ties enter together). The sweep behind the ROC curve and the threshold rules.
fn threshold_sweep(scores: &[f64], labels: &[u8]) -> Vec<(f64, usize, usize)> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut sweep = Vec::new();
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut i = 0;
    while i < order.len() {
        let t = scores[order[i]];
        while i < order.len() && scores[order[i]] == t {
            if labels[order[i]] != 0 {
                tp += 1;
            } else {
                fp += 1;
            }
            i += 1;
        }
        sweep.push((t, tp, fp));
    }
    sweep
}

/// The ROC curve of `scores` against `labels`: (false-positive rate, true-positive rate) from
/// (0, 0) to (1, 1), one point per distinct score (ties move diagonally), so the trapezoidal area
/// under it equals [`auroc`]. `None` when either class is absent or a score is NaN.
pub fn roc_curve(scores: &[f64], labels: &[u8]) -> Option<Vec<(f64, f64)>> {
    assert_eq!(scores.len(), labels.len(), "one label per score");
    let positives = labels.iter().filter(|&&l| l != 0).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut points = vec![(0.0, 0.0)];
    points.extend(
        threshold_sweep(scores, labels)
            .into_iter()
            .map(|(_, tp, fp)| (fp as f64 / negatives as f64, tp as f64 / positives as f64)),
    );
    Some(points)
}

/// Mean of the largest `fraction` of `values` (at least one value). Used as the image score
/// from a per-pixel error map ("top-k %").
pub fn top_fraction_mean(values: &[f32], fraction: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let k = ((values.len() as f64 * fraction).ceil() as usize).clamp(1, values.len());
    let mut v = values.to_vec();
    let nth = v.len() - k;
    v.select_nth_unstable_by(nth, |a, b| a.total_cmp(b));
    v[nth..].iter().map(|&x| f64::from(x)).sum::<f64>() / k as f64
}

/// The best F1 over all thresholds and where it is reached (predict anomalous when score ≥ threshold).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct F1Max {
    /// F1 score.
    pub f1: f64,
    /// Threshold: the lowest score still predicted anomalous.
    pub threshold: f64,
    /// Precision at the threshold.
    pub precision: f64,
    /// Recall at the threshold.
    pub recall: f64,
}

/// Precision, recall and F1 when scores ≥ `threshold` are predicted anomalous.
pub fn f1_at(scores: &[f64], labels: &[u8], threshold: f64) -> F1Max {
    let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
    for (&s, &l) in scores.iter().zip(labels) {
        match (s >= threshold, l != 0) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fneg += 1,
            (false, false) => {}
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    F1Max {
        f1: ratio(2 * tp, 2 * tp + fp + fneg),
        threshold,
        precision: ratio(tp, tp + fp),
        recall: ratio(tp, tp + fneg),
    }
}

/// F1-max over every distinct score used as threshold. `None` without anomalies or with NaN.
/// Ties in F1 keep the highest threshold.
pub fn f1_max(scores: &[f64], labels: &[u8]) -> Option<F1Max> {
    assert_eq!(scores.len(), labels.len(), "one label per score");
    if scores.iter().any(|s| s.is_nan()) || !labels.iter().any(|&l| l != 0) {
        return None;
    }
    let positives = labels.iter().filter(|&&l| l != 0).count();
    let mut best: Option<F1Max> = None;
    for (t, tp, fp) in threshold_sweep(scores, labels) {
        let f1 = 2.0 * tp as f64 / (2 * tp + fp + (positives - tp)) as f64;
        if best.is_none_or(|b| f1 > b.f1) {
            best = Some(F1Max {
                f1,
                threshold: t,
                precision: tp as f64 / (tp + fp) as f64,
                recall: tp as f64 / positives as f64,
            });
        }
    }
    best
}

/// The threshold of the largest Youden's J = TPR − FPR (balanced accuracy − ½) over every
/// distinct score: unlike F1, it does not depend on the share of anomalies in the scored set.
/// Anomalous when score ≥ threshold; ties in J keep the highest threshold (fewer false alarms).
/// `None` without both classes or with NaN.
pub fn youden_threshold(scores: &[f64], labels: &[u8]) -> Option<f64> {
    assert_eq!(scores.len(), labels.len(), "one label per score");
    let positives = labels.iter().filter(|&&l| l != 0).count();
    let negatives = labels.len() - positives;
    if scores.iter().any(|s| s.is_nan()) || positives == 0 || negatives == 0 {
        return None;
    }
    let mut best: Option<(f64, f64)> = None;
    for (t, tp, fp) in threshold_sweep(scores, labels) {
        let j = tp as f64 / positives as f64 - fp as f64 / negatives as f64;
        if best.is_none_or(|(b, _)| j > b + 1e-12) {
            best = Some((j, t));
        }
    }
    best.map(|(_, t)| t)
}

/// Number of histogram bins of the pixel metrics.
pub const PIXEL_BINS: usize = 1 << 14;

/// FPR limit of AUPRO (as in the MVTec AD paper).
pub const AUPRO_FPR_LIMIT: f64 = 0.3;

/// Pixel-level metrics of a set of anomaly maps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PixelMetrics {
    /// Pixel AUROC (binned).
    pub auroc: f64,
    /// Upper bound of |binned − exact| pixel AUROC: pairs of an anomalous and a normal pixel in
    /// the same bin count ½, their true contribution is between 0 and 1 (pairs with exactly
    /// equal scores count ½ in both, so the bound is conservative when scores tie).
    pub auroc_error_bound: f64,
    /// Area under the per-region-overlap curve up to FPR 0.3, divided by 0.3.
    pub aupro: f64,
    /// Anomalous (mask) pixels.
    pub anomalous_pixels: u64,
    /// Normal pixels.
    pub normal_pixels: u64,
    /// Connected defect regions (8-connectivity).
    pub regions: usize,
}

/// How a score is mapped to a histogram bin.
#[derive(Debug, Clone)]
enum Binning {
    /// Equal-width bins over a range (values outside are clamped).
    Uniform { lo: f64, scale: f64, bins: usize },
    /// Sorted edges; bin i holds the values in `[edges[i-1], edges[i])`.
    Edges(Vec<f32>),
}

/// Accumulates pixel scores and ground truth image by image into histograms over a fixed range.
#[derive(Debug, Clone)]
pub struct PixelAccumulator {
    bins: Binning,
    normal: Vec<u64>,
    anomalous: Vec<u64>,
    /// One histogram per connected defect region.
    regions: Vec<Vec<u32>>,
}

impl PixelAccumulator {
    /// Histograms of [`PIXEL_BINS`] bins over `[lo, hi]` (values outside are clamped).
    pub fn new(lo: f64, hi: f64) -> Self {
        Self::with_bins(lo, hi, PIXEL_BINS)
    }

    /// Histograms of `bins` equal bins over `[lo, hi]`.
    pub fn with_bins(lo: f64, hi: f64, bins: usize) -> Self {
        let span = (hi - lo).max(f64::MIN_POSITIVE);
        Self::with_binning(
            Binning::Uniform {
                lo,
                scale: bins as f64 / span,
                bins,
            },
            bins,
        )
    }

    /// Histograms whose bin edges are the quantiles of `sample` (a sample of the scores to
    /// come): up to [`PIXEL_BINS`] bins holding similar shares of the pixels, whatever the
    /// distribution's shape.
    pub fn from_sample(sample: &[f32]) -> Self {
        let mut sorted: Vec<f32> = sample.iter().copied().filter(|v| !v.is_nan()).collect();
        sorted.sort_by(f32::total_cmp);
        let mut edges = Vec::with_capacity(PIXEL_BINS);
        if !sorted.is_empty() {
            for i in 1..PIXEL_BINS {
                let e = sorted[i * (sorted.len() - 1) / PIXEL_BINS];
                if edges.last() != Some(&e) {
                    edges.push(e);
                }
            }
        }
        let bins = edges.len() + 1;
        Self::with_binning(Binning::Edges(edges), bins)
    }

    fn with_binning(bins: Binning, count: usize) -> Self {
        Self {
            bins,
            normal: vec![0; count],
            anomalous: vec![0; count],
            regions: Vec::new(),
        }
    }

    fn bin(&self, v: f32) -> usize {
        match &self.bins {
            Binning::Uniform { lo, scale, bins } => {
                let b = ((f64::from(v) - lo) * scale).floor();
                (b.max(0.0) as usize).min(bins - 1)
            }
            // Bin i holds the values in [edges[i-1], edges[i]).
            Binning::Edges(edges) => edges.partition_point(|&e| e <= v),
        }
    }

    /// Adds one image's `map` (row-major, `width` x `height`) with its ground-truth `mask`
    /// (`None` = all normal).
    pub fn add(&mut self, map: &[f32], mask: Option<&[bool]>, size: Size) {
        let Size { width, height } = size;
        assert_eq!(map.len(), width * height, "map has width*height values");
        let Some(mask) = mask else {
            for &v in map {
                let b = self.bin(v);
                self.normal[b] += 1;
            }
            return;
        };
        assert_eq!(mask.len(), map.len(), "mask has the map's size");
        let gray = GrayImage::from_raw(
            width as u32,
            height as u32,
            mask.iter().map(|&m| u8::from(m) * 255).collect(),
        )
        .expect("mask has width*height values");
        let labels = connected_components(&gray, Connectivity::Eight, Luma([0u8]));
        let first = self.regions.len();
        for (i, (&v, &m)) in map.iter().zip(mask).enumerate() {
            let b = self.bin(v);
            if !m {
                self.normal[b] += 1;
                continue;
            }
            self.anomalous[b] += 1;
            let region = first + labels.as_raw()[i] as usize - 1;
            if region >= self.regions.len() {
                self.regions.resize(region + 1, vec![0; self.normal.len()]);
            }
            self.regions[region][b] += 1;
        }
    }

    /// The metrics; `None` when there are no anomalous or no normal pixels.
    pub fn finish(&self) -> Option<PixelMetrics> {
        let n: u64 = self.normal.iter().sum();
        let p: u64 = self.anomalous.iter().sum();
        if n == 0 || p == 0 {
            return None;
        }
        let (nf, pf) = (n as f64, p as f64);
        // ROC from the highest bin down; a bin's pixels are tied.
        let (mut tp, mut area, mut tie_pairs) = (0u64, 0.0f64, 0.0f64);
        for b in (0..self.normal.len()).rev() {
            let (db, nb) = (self.anomalous[b], self.normal[b]);
            // Normal pixels of this bin rank below the `tp` anomalous pixels of higher bins and
            // tie with the `db` of this bin.
            area += nb as f64 * (tp as f64 + db as f64 / 2.0);
            tie_pairs += db as f64 * nb as f64;
            tp += db;
        }
        let auroc = area / (pf * nf);
        let region_sizes: Vec<f64> = self
            .regions
            .iter()
            .map(|r| r.iter().map(|&c| f64::from(c)).sum())
            .collect();
        let mut covered = vec![0.0f64; self.regions.len()];
        let (mut prev_fpr, mut prev_pro, mut integral) = (0.0f64, 0.0f64, 0.0f64);
        let mut fp = 0u64;
        for b in (0..self.normal.len()).rev() {
            fp += self.normal[b];
            for (c, r) in covered.iter_mut().zip(&self.regions) {
                *c += f64::from(r[b]);
            }
            let fpr = fp as f64 / nf;
            let pro = covered
                .iter()
                .zip(&region_sizes)
                .map(|(c, s)| c / s)
                .sum::<f64>()
                / region_sizes.len().max(1) as f64;
            if fpr >= AUPRO_FPR_LIMIT {
                let t = if fpr > prev_fpr {
                    (AUPRO_FPR_LIMIT - prev_fpr) / (fpr - prev_fpr)
                } else {
                    0.0
                };
                let pro_at_limit = prev_pro + t * (pro - prev_pro);
                integral += (AUPRO_FPR_LIMIT - prev_fpr) * (prev_pro + pro_at_limit) / 2.0;
                prev_fpr = AUPRO_FPR_LIMIT;
                break;
            }
            integral += (fpr - prev_fpr) * (prev_pro + pro) / 2.0;
            prev_fpr = fpr;
            prev_pro = pro;
        }
        debug_assert!((prev_fpr - AUPRO_FPR_LIMIT).abs() < 1e-12);
        Some(PixelMetrics {
            auroc,
            auroc_error_bound: tie_pairs / 2.0 / (pf * nf),
            aupro: integral / AUPRO_FPR_LIMIT,
            anomalous_pixels: p,
            normal_pixels: n,
            regions: self.regions.len(),
        })
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_area_under_the_roc_curve_equals_the_auroc_with_ties() {
        let scores = [0.1, 0.4, 0.4, 0.35, 0.8, 0.4, 0.2];
        let labels = [0, 1, 0, 1, 1, 0, 0];
        let curve = roc_curve(&scores, &labels).unwrap();
        assert_eq!(curve.first(), Some(&(0.0, 0.0)));
        assert_eq!(curve.last(), Some(&(1.0, 1.0)));
        let area: f64 = curve
            .windows(2)
            .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
            .sum();
        assert!((area - auroc(&scores, &labels).unwrap()).abs() < 1e-12);
        assert_eq!(roc_curve(&[1.0, 2.0], &[1, 1]), None);
    }
    use super::*;

    /// Expected values from scikit-learn's `roc_auc_score` on the same vectors.
    #[test]
    fn auroc_matches_scikit_learn_with_ties() {
        let s = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.05, 0.6, 0.6];
        let l = [0, 0, 1, 1, 0, 1, 1, 0, 1, 0];
        assert!((auroc(&s, &l).unwrap() - 0.78).abs() < 1e-12);
        let s2 = [3.0, 1.0, 2.0, 2.0, 5.0, 4.0, 0.0, 2.0];
        let l2 = [1, 0, 0, 1, 1, 0, 0, 1];
        assert!((auroc(&s2, &l2).unwrap() - 0.75).abs() < 1e-12);
    }

    #[test]
    fn youden_threshold_balances_the_two_error_rates_whatever_the_prevalence() {
        // 2 normals, 6 anomalies: F1 accepts a false alarm for one more hit, J does not.
        let scores = [0.1, 0.5, 0.4, 0.6, 0.7, 0.8, 0.9, 1.0];
        let labels = [0, 0, 1, 1, 1, 1, 1, 1];
        assert_eq!(f1_max(&scores, &labels).unwrap().threshold, 0.4);
        assert_eq!(youden_threshold(&scores, &labels), Some(0.6));
        // Repeating the anomalies (another prevalence) moves F1's threshold, not J's.
        let (s3, l3): (Vec<f64>, Vec<u8>) = scores
            .iter()
            .zip(labels)
            .flat_map(|(&s, l)| std::iter::repeat_n((s, l), if l == 1 { 1 } else { 3 }))
            .unzip();
        assert_eq!(youden_threshold(&s3, &l3), Some(0.6));
        // Ties in J keep the highest threshold; degenerate inputs give None.
        assert_eq!(youden_threshold(&[0.2, 0.4], &[1, 0]), Some(0.2));
        assert_eq!(youden_threshold(&[0.2, 0.4], &[0, 0]), None);
        assert_eq!(youden_threshold(&[f64::NAN, 0.4], &[1, 0]), None);
    }

    #[test]
    fn auroc_edge_cases() {
        assert_eq!(auroc(&[1.0, 2.0], &[0, 1]), Some(1.0));
        assert_eq!(auroc(&[2.0, 1.0], &[0, 1]), Some(0.0));
        assert_eq!(auroc(&[1.0, 1.0], &[0, 1]), Some(0.5));
        assert_eq!(auroc(&[1.0, 2.0], &[1, 1]), None);
        assert_eq!(auroc(&[f64::NAN, 2.0], &[0, 1]), None);
    }

    #[test]
    fn top_fraction_mean_takes_the_largest_values() {
        let v = [1.0, 5.0, 3.0, 4.0, 2.0, 0.0, 9.0, 8.0, 7.0, 6.0];
        assert_eq!(top_fraction_mean(&v, 0.2), 8.5);
        assert_eq!(top_fraction_mean(&v, 0.001), 9.0);
        assert_eq!(top_fraction_mean(&v, 1.0), 4.5);
    }

    /// Expected values from scikit-learn's `precision_recall_curve` on the same vectors.
    #[test]
    fn f1_max_matches_scikit_learn() {
        let s = [
            0.2, 0.9, 0.35, 0.8, 0.35, 0.1, 0.7, 0.6, 0.6, 0.05, 0.4, 0.55,
        ];
        let l = [0, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1];
        let best = f1_max(&s, &l).unwrap();
        assert!((best.f1 - 0.8).abs() < 1e-12);
        assert_eq!(best.threshold, 0.35);
        assert!((best.precision - 2.0 / 3.0).abs() < 1e-12 && best.recall == 1.0);
        assert_eq!(f1_at(&s, &l, 0.35), best);
        let at = f1_at(&s, &l, 0.55);
        assert!((at.f1 - 8.0 / 12.0).abs() < 1e-12, "{at:?}");
        assert_eq!(f1_max(&s, &[0; 12]), None);
    }

    /// Three 7x6 maps (one normal image) with four 8-connected defect regions. Expected values:
    /// scikit-learn `roc_auc_score` on the flattened pixels, and the MVTec AD evaluation code's
    /// `compute_pro` + `trapezoid(x_max = 0.3) / 0.3` (scipy `label` with a 3x3 structure),
    /// re-run on these vectors.
    #[test]
    fn pixel_auroc_and_aupro_match_the_reference_implementations() {
        let maps: [[f32; 42]; 3] = [
            [
                0.086, 0.237, 0.801, 0.582, 0.094, 0.433, 0.479, 0.160, 1.000, 0.414, 0.391, 0.517,
                0.431, 0.587, 0.738, 1.000, 0.584, 0.649, 0.696, 0.293, 0.001, 0.973, 0.298, 0.314,
                0.892, 0.585, 0.471, 0.773, 0.030, 0.707, 0.374, 0.091, 0.661, 1.000, 0.507, 0.630,
                0.298, 0.742, 0.722, 0.219, 1.000, 0.958,
            ],
            [
                0.683, 0.820, 0.429, 0.759, 0.878, 0.102, 1.000, 0.394, 0.480, 0.146, 0.698, 0.292,
                0.871, 0.275, 0.562, 0.400, 0.613, 0.497, 0.180, 0.747, 0.752, 0.567, 0.921, 0.206,
                1.000, 0.469, 0.964, 0.624, 0.607, 0.971, 0.787, 1.000, 0.054, 0.369, 0.085, 0.194,
                0.214, 0.859, 0.127, 0.297, 0.493, 0.849,
            ],
            [
                0.965, 0.708, 0.214, 0.545, 0.706, 0.052, 0.680, 0.368, 0.590, 0.670, 0.669, 0.523,
                0.555, 0.198, 0.495, 0.125, 0.481, 0.536, 0.774, 0.394, 0.020, 0.528, 0.205, 0.741,
                0.389, 0.380, 0.909, 0.393, 0.349, 0.348, 0.481, 0.093, 0.547, 0.921, 0.563, 0.744,
                0.947, 0.842, 0.744, 0.813, 0.820, 0.254,
            ],
        ];
        let masks = [
            "000000001100000110000000000000000110000011",
            "000000100000000001000000110000010000000000",
            "000000000000000000000000000000000000000000",
        ];
        let mut acc = PixelAccumulator::new(0.0, 1.0);
        for (map, mask) in maps.iter().zip(masks) {
            let mask: Vec<bool> = mask.bytes().map(|b| b == b'1').collect();
            let any = mask.iter().any(|&m| m);
            acc.add(map, any.then_some(mask.as_slice()), Size::new(7, 6));
        }
        let m = acc.finish().unwrap();
        assert_eq!(m.regions, 4);
        assert_eq!(m.anomalous_pixels, 13);
        assert_eq!(m.normal_pixels, 126 - 13);
        assert!((m.auroc - 0.7923757658270932).abs() < 1e-12, "{m:?}");
        assert!((m.aupro - 0.6801253687315635).abs() < 1e-12, "{m:?}");
        // Values are 0.001 apart and bins 1/16384 wide: no two distinct values share a bin, so
        // only true ties are tied and the bound holds exactly.
        assert!(m.auroc_error_bound < 0.01);
    }

    #[test]
    fn quantile_bins_keep_a_small_error_bound_on_skewed_scores() {
        // Heavy-tailed scores: equal-width bins over [min, max] put nearly every pixel in the
        // first bins; quantile edges from a sample spread them.
        let map: Vec<f32> = (0..10_000)
            .map(|i| ((i * 7919) % 10_000) as f32 / 100.0)
            .map(|v| v.powi(6))
            .collect();
        let mask: Vec<bool> = (0..10_000)
            .map(|i| (i * 7919) % 10_000 > 6_000 || i % 5 == 0)
            .collect();
        let lo = map.iter().copied().fold(f32::MAX, f32::min);
        let hi = map.iter().copied().fold(f32::MIN, f32::max);
        let mut uniform = PixelAccumulator::with_bins(f64::from(lo), f64::from(hi), 64);
        uniform.add(&map, Some(&mask), Size::square(100));
        let sample: Vec<f32> = map.iter().step_by(3).copied().collect();
        let mut quantile = PixelAccumulator::from_sample(&sample);
        quantile.add(&map, Some(&mask), Size::square(100));
        let scores: Vec<f64> = map.iter().map(|&v| f64::from(v)).collect();
        let labels: Vec<u8> = mask.iter().map(|&b| u8::from(b)).collect();
        let exact = auroc(&scores, &labels).unwrap();
        let (u, q) = (uniform.finish().unwrap(), quantile.finish().unwrap());
        assert!((u.auroc - exact).abs() <= u.auroc_error_bound + 1e-12);
        assert!((q.auroc - exact).abs() <= q.auroc_error_bound + 1e-12);
        assert!(u.auroc_error_bound > 0.05, "{u:?}");
        assert!(q.auroc_error_bound < 1e-3, "{q:?}");
    }

    #[test]
    fn coarse_bins_stay_within_their_error_bound() {
        // 4 bins over [0, 1]: the binned AUROC differs from the exact one by at most the bound.
        let map: Vec<f32> = (0..100).map(|i| i as f32 / 100.0).collect();
        let mask: Vec<bool> = (0..100).map(|i| i % 3 == 0 || i > 70).collect();
        let mut acc = PixelAccumulator::with_bins(0.0, 1.0, 4);
        acc.add(&map, Some(&mask), Size::square(10));
        let m = acc.finish().unwrap();
        let scores: Vec<f64> = map.iter().map(|&v| f64::from(v)).collect();
        let labels: Vec<u8> = mask.iter().map(|&b| u8::from(b)).collect();
        let exact = auroc(&scores, &labels).unwrap();
        assert!((m.auroc - exact).abs() <= m.auroc_error_bound + 1e-12);
        assert!(m.auroc_error_bound > 0.0);
        // No anomalies: no pixel metrics.
        let mut none = PixelAccumulator::new(0.0, 1.0);
        none.add(&map, None, Size::square(10));
        assert_eq!(none.finish(), None);
    }
}

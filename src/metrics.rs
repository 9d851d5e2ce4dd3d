//! Evaluation metrics (SPEC §7). Image AUROC is exact: the Mann–Whitney rank formula with ties
//! averaged, equal to the trapezoidal area under the ROC curve.

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

#[cfg(test)]
mod tests {
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
}

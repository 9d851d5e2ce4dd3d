//! Which calibrated candidate scores images and which one draws the heat maps.
//!
//! Images: the highest CutPaste-val image AUROC; an exact tie goes to the better validation pixel
//! AUROC (an equal image proxy says nothing, and the other validation metric says more than
//! the order of a list), then to the first candidate. Heat maps: the image
//! winner's own maps, unless another candidate of its family ([`MapFamily`]) localises the
//! validation anomalies clearly better — by at least [`HEATMAP_MARGIN`] of validation pixel
//! AUROC. A heat map sits beside the verdict it explains, so a second map is worth its
//! disagreement with the score only when validation says so clearly. The synthetic pixel proxy
//! over-rates the head's maps against reconstruction maps (EXPERIMENTS.md, Rounds 7–10), so it
//! is not asked to compare across families.

use crate::score::profile::ScoringProfile;
use crate::score::ErrorMaps;

/// Validation pixel AUROC by which a candidate of the image winner's family must beat the
/// winner's own maps to draw the heat maps (EXPERIMENTS.md, Round 11).
pub const HEATMAP_MARGIN: f64 = 0.005;

/// The two families of anomaly map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapFamily {
    /// Reconstruction error (squared, 1 − SSIM, both, both-mean, MSGMS).
    Reconstruction,
    /// Maps that use the discriminative head (alone or fused with 1 − SSIM).
    Head,
}

impl MapFamily {
    /// The family of `maps`.
    pub fn of(maps: ErrorMaps) -> Self {
        if maps.needs_head() {
            MapFamily::Head
        } else {
            MapFamily::Reconstruction
        }
    }

    fn index(self) -> usize {
        match self {
            MapFamily::Reconstruction => 0,
            MapFamily::Head => 1,
        }
    }
}

/// Keeps the image winner and each family's best localiser while candidates are offered.
#[derive(Default)]
pub struct CandidateChoice {
    best: Option<ScoringProfile>,
    best_pixel: [Option<ScoringProfile>; 2],
}

impl CandidateChoice {
    /// Considers one calibrated candidate.
    pub fn offer(&mut self, profile: ScoringProfile) {
        let slot = &mut self.best_pixel[MapFamily::of(profile.config.error).index()];
        if slot
            .as_ref()
            .is_none_or(|b| pixel_auroc(&profile) > pixel_auroc(b))
        {
            *slot = Some(profile.clone());
        }
        if self.best.as_ref().is_none_or(|b| beats(&profile, b)) {
            self.best = Some(profile);
        }
    }

    /// The image winner, with [`ScoringProfile::heatmap`] set when another candidate of its
    /// family localises the validation anomalies better by [`HEATMAP_MARGIN`]; `None` when
    /// nothing was offered.
    pub fn finish(mut self) -> Option<ScoringProfile> {
        let mut best = self.best?;
        let family = MapFamily::of(best.config.error).index();
        if let Some(pixel) = self.best_pixel[family].take() {
            if pixel_auroc(&pixel) - pixel_auroc(&best) >= HEATMAP_MARGIN {
                best.heatmap = Some(Box::new(pixel));
            }
        }
        Some(best)
    }
}

/// Whether `profile` wins the image score from `best`: a higher CutPaste-val image AUROC, or the
/// same one and a higher validation pixel AUROC.
fn beats(profile: &ScoringProfile, best: &ScoringProfile) -> bool {
    match profile.val_auroc.partial_cmp(&best.val_auroc) {
        Some(std::cmp::Ordering::Greater) => true,
        Some(std::cmp::Ordering::Equal) => pixel_auroc(profile) > pixel_auroc(best),
        _ => false,
    }
}

fn pixel_auroc(profile: &ScoringProfile) -> f64 {
    profile.val_pixel_auroc.unwrap_or(f64::NEG_INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::F1Max;
    use crate::score::profile::SCORING_FORMAT_VERSION;
    use crate::score::ScoringConfig;

    fn profile(error: ErrorMaps, image: f64, pixel: f64) -> ScoringProfile {
        ScoringProfile {
            format: SCORING_FORMAT_VERSION,
            config: ScoringConfig {
                error,
                ..ScoringConfig::default()
            },
            stats: Vec::new(),
            top_k_auroc: Vec::new(),
            threshold: 0.0,
            threshold_rule: String::new(),
            val_normal: 1,
            val_anomalous: 1,
            val_auroc: image,
            val_f1: F1Max {
                f1: 0.0,
                threshold: 0.0,
                precision: 0.0,
                recall: 0.0,
            },
            val_normal_scores: Vec::new(),
            val_anomalous_scores: Vec::new(),
            val_map_mean: 0.0,
            val_map_std: 1.0,
            working_size_auroc: Vec::new(),
            val_blends: 0,
            val_pixel_auroc: Some(pixel),
            val_pixel_auroc_cutpaste: None,
            heatmap: None,
        }
    }

    fn choose(candidates: Vec<ScoringProfile>) -> ScoringProfile {
        let mut choice = CandidateChoice::default();
        candidates.into_iter().for_each(|c| choice.offer(c));
        choice.finish().unwrap()
    }

    #[test]
    fn families_split_head_maps_from_reconstruction_maps() {
        for maps in [
            ErrorMaps::Squared,
            ErrorMaps::Ssim,
            ErrorMaps::Both,
            ErrorMaps::BothMean,
            ErrorMaps::Msgms,
        ] {
            assert_eq!(MapFamily::of(maps), MapFamily::Reconstruction, "{maps:?}");
        }
        for maps in [ErrorMaps::Head, ErrorMaps::HeadSsim] {
            assert_eq!(MapFamily::of(maps), MapFamily::Head, "{maps:?}");
        }
    }

    #[test]
    fn a_reconstruction_winner_keeps_reconstruction_heat_maps() {
        let chosen = choose(vec![
            profile(ErrorMaps::Squared, 0.96, 0.970),
            profile(ErrorMaps::Ssim, 0.95, 0.982),
            profile(ErrorMaps::HeadSsim, 0.93, 0.995),
        ]);
        assert_eq!(chosen.config.error, ErrorMaps::Squared);
        assert_eq!(chosen.map_profile().config.error, ErrorMaps::Ssim);
    }

    #[test]
    fn a_map_better_by_less_than_the_margin_leaves_the_winners_own_maps() {
        let chosen = choose(vec![
            profile(ErrorMaps::BothMean, 0.96, 0.980),
            profile(ErrorMaps::Squared, 0.95, 0.980 + HEATMAP_MARGIN * 0.9),
        ]);
        assert_eq!(chosen.config.error, ErrorMaps::BothMean);
        assert!(chosen.heatmap.is_none());
        let chosen = choose(vec![
            profile(ErrorMaps::BothMean, 0.96, 0.980),
            profile(ErrorMaps::Squared, 0.95, 0.980 + HEATMAP_MARGIN * 1.1),
        ]);
        assert_eq!(chosen.map_profile().config.error, ErrorMaps::Squared);
    }

    #[test]
    fn a_head_winner_takes_the_best_head_heat_maps() {
        let chosen = choose(vec![
            profile(ErrorMaps::Both, 0.90, 0.995),
            profile(ErrorMaps::Head, 0.94, 0.970),
            profile(ErrorMaps::HeadSsim, 0.92, 0.985),
        ]);
        assert_eq!(chosen.config.error, ErrorMaps::Head);
        assert_eq!(chosen.map_profile().config.error, ErrorMaps::HeadSsim);
    }

    #[test]
    fn the_winner_draws_its_own_maps_when_its_family_has_nothing_better() {
        let chosen = choose(vec![
            profile(ErrorMaps::Squared, 0.96, 0.985),
            profile(ErrorMaps::Msgms, 0.95, 0.980),
            profile(ErrorMaps::Head, 0.90, 0.999),
        ]);
        assert_eq!(chosen.config.error, ErrorMaps::Squared);
        assert!(chosen.heatmap.is_none());
    }

    #[test]
    fn an_image_tie_goes_to_the_better_validation_pixel_auroc() {
        let chosen = choose(vec![
            profile(ErrorMaps::Both, 0.944, 0.9795),
            profile(ErrorMaps::BothMean, 0.944, 0.9819),
            profile(ErrorMaps::Squared, 0.943, 0.9900),
        ]);
        assert_eq!(chosen.config.error, ErrorMaps::BothMean);
        // 0.9900 − 0.9819 ≥ the margin: the lower-ranked squared error draws the maps.
        assert_eq!(chosen.map_profile().config.error, ErrorMaps::Squared);
        let chosen = choose(vec![
            profile(ErrorMaps::BothMean, 0.944, 0.9819),
            profile(ErrorMaps::Both, 0.944, 0.9795),
        ]);
        assert_eq!(chosen.config.error, ErrorMaps::BothMean);
    }

    #[test]
    fn a_full_tie_keeps_the_first_candidate() {
        let chosen = choose(vec![
            profile(ErrorMaps::Ssim, 0.95, 0.98),
            profile(ErrorMaps::Squared, 0.95, 0.98),
        ]);
        assert_eq!(chosen.config.error, ErrorMaps::Ssim);
        assert!(chosen.heatmap.is_none());
    }

    #[test]
    fn a_higher_image_auroc_wins_over_a_better_pixel_auroc() {
        let chosen = choose(vec![
            profile(ErrorMaps::Both, 0.945, 0.970),
            profile(ErrorMaps::BothMean, 0.944, 0.990),
        ]);
        assert_eq!(chosen.config.error, ErrorMaps::Both);
    }

    #[test]
    fn nothing_offered_chooses_nothing() {
        assert!(CandidateChoice::default().finish().is_none());
    }
}

//! Multi-scale sliding-window scoring (SPEC §5): the settings ([`ScoringConfig`]) and the stages
//! that turn an image into an anomaly map and a score.
//!
//! An image is resized to the working resolution (long side `working_size`). For each window
//! scale, the image is cut into windows ([`window`]), the windows go through the model in
//! batches at their own size ([`maps`]: padded by edge replication to the model's side multiple
//! when needed), and the per-pixel reconstruction error is stitched into one error map per
//! scale. The scale maps are z-normalised (with statistics of the validation normal images by
//! default, or of the image itself), fused by element-wise max, smoothed with a Gaussian (σ in
//! working-resolution pixels), and the image score is the mean of the top-k % pixels of the
//! fused map ([`fuse`]). What calibration fits on validation data is the [`profile`].

pub mod fuse;
pub mod location;
pub mod maps;
pub mod profile;
pub mod similarity;
pub mod window;

use serde::{Deserialize, Serialize};

use crate::error::{fail, Result};
use crate::image::{ChwImage, Size};
use crate::model::unet::UNetConfig;
use crate::util::memory;
use window::Padding;

/// Largest working resolution (a bound before the memory estimate).
pub const MAX_WORKING_SIZE_PX: usize = 16384;

/// Where the per-scale z-normalisation statistics come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Normalization {
    /// Mean and std of each scale's error maps over the validation normal images (saved with
    /// the model): an image whose error is high everywhere still scores high.
    #[default]
    Validation,
    /// Each image's own mean and std per scale (throws the absolute error level away).
    Image,
    /// Per-pixel mean and std of each scale's error maps over the validation normal images
    /// (smoothed, with a floor): for whole-image models of aligned parts, where the normal
    /// error differs by location (edges, rims). Needs `square` (every map the same size).
    Location,
}

/// Which per-pixel error maps each window scale contributes to the fusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ErrorMaps {
    /// Squared error averaged over channels.
    #[default]
    Squared,
    /// 1 − SSIM (11×11 Gaussian window, σ 1.5, averaged over channels): local structure and
    /// contrast, insensitive to the brightness level.
    Ssim,
    /// Both, each z-normalised on its own, fused by the same max.
    Both,
    /// Both, each z-normalised on its own, fused by their mean: a pixel must look wrong to
    /// both measures to score high, so a false alarm of one alone is halved.
    #[serde(rename = "both-mean")]
    BothMean,
    /// Multi-scale gradient-magnitude similarity error (RIAD/DRAEM): edges and texture, not
    /// brightness.
    Msgms,
    /// The discriminative head's anomaly probability (DRAEM; needs a run trained with a head).
    Head,
    /// The head's map and 1 − SSIM, each z-normalised on its own, fused by the same max.
    #[serde(rename = "head-ssim")]
    HeadSsim,
    /// The head's map, squared error and 1 − SSIM, each z-normalised on its own, fused by their
    /// mean: the two families of map in one, so neither alone decides.
    #[serde(rename = "head-both-mean")]
    HeadBothMean,
}

impl ErrorMaps {
    /// The kinds of map, in order.
    pub fn kinds(self) -> &'static [ErrorKind] {
        match self {
            ErrorMaps::Squared => &[ErrorKind::Squared],
            ErrorMaps::Ssim => &[ErrorKind::Ssim],
            ErrorMaps::Both | ErrorMaps::BothMean => &[ErrorKind::Squared, ErrorKind::Ssim],
            ErrorMaps::Msgms => &[ErrorKind::Msgms],
            ErrorMaps::Head => &[ErrorKind::Head],
            ErrorMaps::HeadSsim => &[ErrorKind::Head, ErrorKind::Ssim],
            ErrorMaps::HeadBothMean => &[ErrorKind::Head, ErrorKind::Squared, ErrorKind::Ssim],
        }
    }

    /// Whether these maps need the discriminative head.
    pub fn needs_head(self) -> bool {
        self.kinds().contains(&ErrorKind::Head)
    }

    /// Whether a scale's kinds of map are fused by their mean (else by their max).
    pub fn fuses_by_mean(self) -> bool {
        matches!(self, ErrorMaps::BothMean | ErrorMaps::HeadBothMean)
    }
}

/// One kind of per-pixel error map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    /// Squared error averaged over channels.
    Squared,
    /// 1 − SSIM averaged over channels.
    Ssim,
    /// 1 − GMS averaged over channels and scales.
    Msgms,
    /// The discriminative head's anomaly probability.
    Head,
}

/// Every scoring setting; saved with the model in `scoring.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringConfig {
    /// Long side of the working resolution in pixels.
    pub working_size: usize,
    /// Window sides, one per scale; a window equal to `working_size` is the whole image.
    pub windows: Vec<usize>,
    /// Strides, one per window (empty: half the window).
    pub strides: Vec<usize>,
    /// Padding policy of windows at the border.
    pub padding: Padding,
    /// Error maps per scale.
    pub error: ErrorMaps,
    /// σ of the SSIM Gaussian window in working-resolution pixels (1.5 = the classic 11×11
    /// window; [`ssim_sigma_for`] ties it to the working size). Files without it mean 1.5.
    #[serde(
        default = "classic_ssim_sigma",
        skip_serializing_if = "is_classic_ssim_sigma"
    )]
    pub ssim_sigma: f64,
    /// Source of the z-normalisation statistics.
    pub normalization: Normalization,
    /// Guard of the z-normalisation: `(m − mean) / (std + eps)`.
    pub eps: f64,
    /// σ of the Gaussian smoothing of the fused map, in working-resolution pixels (0 = none).
    pub sigma: f64,
    /// Side (working-resolution pixels) of a mean filter applied to the fused map before the
    /// image score is read off it (DRAEM's max of the 21×21-filtered map at 256 px, here with a
    /// small top-k); 0 = none. Heat maps are not filtered.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub score_filter: usize,
    /// Candidates for `score_filter`, tried with every top-k candidate (empty: only
    /// `score_filter`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub score_filter_candidates: Vec<usize>,
    /// Image score: mean of the top `top_k_percent` percent of the fused map's pixels.
    #[serde(rename = "top_k")]
    pub top_k_percent: f64,
    /// Candidates for `top_k_percent`; calibration keeps the best on the CutPaste val set.
    #[serde(rename = "top_k_candidates")]
    pub top_k_candidates_percent: Vec<f64>,
    /// Share of the window side over which merge weights fall off towards window edges inside
    /// the image (0 = plain average of overlaps).
    pub taper: f64,
    /// Windows per forward pass.
    pub batch_size: usize,
    /// Resize images to a `working_size` square (whole-image models, trained on squares)
    /// instead of fitting the long side (aspect kept).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub square: bool,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self::for_working_size(512)
    }
}

/// The SSIM window σ of the original recipe: an 11×11 window.
fn classic_ssim_sigma() -> f64 {
    1.5
}

/// Serde helper: a zero count or size is not written.
pub(crate) fn is_zero(v: &usize) -> bool {
    *v == 0
}

/// The score filter side for a working size: DRAEM's 21 px at 256 px, scaled with the
/// resolution and kept odd (11 at 128).
pub fn score_filter_for(working_size: usize) -> usize {
    ((21.0 * working_size as f64 / 256.0).round() as usize) | 1
}

/// Whether `sigma` is the classic σ (then it is not written, so files stay as they were).
fn is_classic_ssim_sigma(sigma: &f64) -> bool {
    *sigma == classic_ssim_sigma()
}

/// SSIM window σ for a working size: the 11×11 window (σ 1.5) from 256 px up, shrinking with the
/// resolution to a 7×7 window (σ 1.0) at 128 px and below, so the window covers the same share of
/// the object.
pub fn ssim_sigma_for(working_size: usize) -> f64 {
    (1.5 * working_size as f64 / 256.0).clamp(1.0, 1.5)
}

impl ScoringConfig {
    /// SPEC defaults for a working resolution: windows of ¼, ½ and all of it (128, 256, 512 at
    /// 512), stride half the window, no padding, plain average of overlaps, squared error,
    /// validation statistics, σ 4, k ∈ {0.1, 0.5, 1} %.
    pub fn for_working_size(working_size: usize) -> Self {
        Self {
            working_size,
            windows: vec![working_size / 4, working_size / 2, working_size],
            strides: Vec::new(),
            padding: Padding::None,
            error: ErrorMaps::Squared,
            ssim_sigma: ssim_sigma_for(working_size),
            normalization: Normalization::Validation,
            eps: 1e-6,
            sigma: 4.0,
            top_k_percent: 1.0,
            top_k_candidates_percent: vec![0.1, 0.5, 1.0],
            score_filter: 0,
            score_filter_candidates: Vec::new(),
            taper: 0.0,
            batch_size: 8,
            square: false,
        }
    }

    /// Whole-image scoring at `working_size`: one window, the full frame (for models trained on
    /// whole images); everything else as [`ScoringConfig::for_working_size`].
    pub fn whole_image(working_size: usize) -> Self {
        Self {
            windows: vec![working_size],
            square: true,
            ..Self::for_working_size(working_size)
        }
    }

    /// The stride of scale `i`.
    pub fn stride(&self, i: usize) -> usize {
        self.strides
            .get(i)
            .copied()
            .unwrap_or((self.windows[i] / 2).max(1))
    }

    /// Checks the settings against the model.
    pub fn validate(&self, model: &UNetConfig) -> Result<()> {
        let m = model.side_multiple();
        if self.working_size < m {
            fail!(
                "working size {} is smaller than the model's side multiple {m}",
                self.working_size
            );
        }
        if self.windows.is_empty() {
            fail!("no window scales given");
        }
        for &w in &self.windows {
            if w == 0 {
                fail!("window size 0");
            }
            if w > self.working_size {
                fail!(
                    "window {w} is larger than the working resolution {} (use {} for the whole image)",
                    self.working_size,
                    self.working_size
                );
            }
        }
        if !self.strides.is_empty() && self.strides.len() != self.windows.len() {
            fail!(
                "{} strides for {} windows: give one per window or none",
                self.strides.len(),
                self.windows.len()
            );
        }
        if self.strides.contains(&0) {
            fail!("stride 0");
        }
        for (i, &w) in self.windows.iter().enumerate() {
            if self.stride(i) > w {
                fail!(
                    "stride {} is larger than its window {w}: pixels would be missed",
                    self.stride(i)
                );
            }
        }
        for &k in self
            .top_k_candidates_percent
            .iter()
            .chain([&self.top_k_percent])
        {
            if !(k > 0.0 && k <= 100.0) {
                fail!("top-k {k} % is outside (0, 100]");
            }
        }
        if self.top_k_candidates_percent.is_empty() {
            fail!("no top-k candidates");
        }
        for &f in self
            .score_filter_candidates
            .iter()
            .chain([&self.score_filter])
        {
            if f > self.working_size {
                fail!(
                    "score filter {f} px is larger than the working resolution {}",
                    self.working_size
                );
            }
        }
        if self.normalization == Normalization::Location && !self.square {
            fail!("location normalisation needs whole-image (square) scoring, where every map has one size");
        }
        if self.working_size > MAX_WORKING_SIZE_PX {
            fail!(
                "working size {} px is larger than the limit of {MAX_WORKING_SIZE_PX} px",
                self.working_size
            );
        }
        if !(self.sigma >= 0.0 && self.sigma <= self.working_size as f64) {
            fail!(
                "sigma {:?} must be in [0, working size = {}] px",
                self.sigma,
                self.working_size
            );
        }
        if !(self.ssim_sigma > 0.0 && self.ssim_sigma <= 16.0) {
            fail!("ssim_sigma {} must be in (0, 16]", self.ssim_sigma);
        }
        if self.eps.is_nan() || self.eps <= 0.0 {
            fail!("eps {} must be > 0", self.eps);
        }
        if !(0.0..=0.5).contains(&self.taper) {
            fail!("taper {} must be in [0, 0.5]", self.taper);
        }
        if self.batch_size == 0 {
            fail!("window batch size 0");
        }
        self.check_memory(model, memory::available_bytes())
    }

    /// Fails when scoring would not fit in `available` bytes: one batch of the largest window
    /// through the model (without gradients, the skip tensors and the block at work: about one
    /// float per activation of [`UNetConfig::activation_floats`]) plus the maps of the images
    /// scored together (the working image, per map kind an error, a weight and a
    /// normalised map, the fused and smoothed maps).
    pub fn check_memory(&self, model: &UNetConfig, available: Option<u64>) -> Result<()> {
        let window = self.windows.iter().copied().max().unwrap_or(0);
        let forward = (self.batch_size as u64)
            .saturating_mul(model.activation_floats(window))
            .saturating_mul(4);
        let per_image = (model.channels as u64 + 3 * self.map_specs().len() as u64 + 2)
            .saturating_mul((self.working_size as u64).saturating_pow(2))
            .saturating_mul(4);
        let images = self.batch_size.max(4) as u64;
        memory::check_fits(
            &format!(
                "scoring at working size {} px with {window} px windows in batches of {}",
                self.working_size, self.batch_size
            ),
            forward.saturating_add(images.saturating_mul(per_image)),
            available,
            "lower --working-size, the windows or the scoring batch size",
        )
    }

    /// Whether `other` cuts images into the same windows and computes its structural maps the
    /// same way, so that one model pass serves both (their error kinds, statistics and
    /// read-outs may differ).
    pub fn same_windows(&self, other: &ScoringConfig) -> bool {
        (
            self.working_size,
            &self.windows,
            &self.strides,
            self.padding,
            self.square,
        ) == (
            other.working_size,
            &other.windows,
            &other.strides,
            other.padding,
            other.square,
        ) && self.taper == other.taper
            && self.ssim_sigma == other.ssim_sigma
    }

    /// The score filter candidates (at least the current one).
    pub fn score_filters(&self) -> Vec<usize> {
        if self.score_filter_candidates.is_empty() {
            vec![self.score_filter]
        } else {
            self.score_filter_candidates.clone()
        }
    }

    /// Every image-score readout calibration tries: each (score filter, top-k %) pair.
    pub fn score_candidates(&self) -> Vec<(usize, f64)> {
        self.score_filters()
            .into_iter()
            .flat_map(|f| self.top_k_candidates_percent.iter().map(move |&k| (f, k)))
            .collect()
    }

    /// The fused maps in order: every window scale, and per scale every error kind.
    pub fn map_specs(&self) -> Vec<(usize, ErrorKind)> {
        self.windows
            .iter()
            .flat_map(|&w| self.error.kinds().iter().map(move |&k| (w, k)))
            .collect()
    }

    /// `image` resized to the working resolution: long side `working_size`, or the
    /// `working_size` square when `square`.
    pub fn to_working(&self, image: &ChwImage) -> ChwImage {
        if self.square {
            image.resized(Size::square(self.working_size))
        } else {
            image.fit_long_side(self.working_size)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::unet::Preset;

    #[test]
    fn whole_image_scoring_is_one_square_window() {
        let c = ScoringConfig::whole_image(64);
        assert_eq!((c.windows.clone(), c.square), (vec![64], true));
        assert_eq!(c.ssim_sigma, 1.0);
        let img = ChwImage::zeros(3, Size::new(90, 60));
        assert_eq!(c.to_working(&img).size(), Size::square(64));
        let multi = ScoringConfig::for_working_size(64);
        assert_eq!(multi.to_working(&img).size(), Size::new(64, 43));
        assert_eq!(ssim_sigma_for(512), 1.5);
        assert_eq!(ssim_sigma_for(192), 1.125);
    }

    #[test]
    fn bad_scoring_settings_are_named() {
        let model = Preset::Tiny.config(3);
        let ok = ScoringConfig::for_working_size(128);
        ok.validate(&model).unwrap();
        let err = |f: &dyn Fn(&mut ScoringConfig)| {
            let mut c = ok.clone();
            f(&mut c);
            c.validate(&model).unwrap_err().to_string()
        };
        assert!(err(&|c| c.windows = vec![256]).contains("larger than the working resolution"));
        assert!(err(&|c| c.top_k_percent = 0.0).contains("outside (0, 100]"));
        assert!(err(&|c| c.top_k_candidates_percent = vec![0.5, 150.0]).contains("150"));
        assert!(err(&|c| c.strides = vec![8]).contains("one per window"));
        assert!(err(&|c| c.strides = vec![64, 128, 256]).contains("larger than its window"));
        assert!(err(&|c| c.batch_size = 0).contains("batch"));
        assert!(err(&|c| c.sigma = -1.0).contains("sigma"));
        assert!(err(&|c| c.sigma = 1e300).contains("sigma"));
        assert!(err(&|c| c.working_size = 100_000).contains("limit"));
        // SPEC §5's multi-scale profile fits in 2 GiB; 16384 px does not fit in 24 GiB.
        let spec = ScoringConfig::for_working_size(512);
        let default = Preset::Default.config(3);
        spec.check_memory(&default, Some(2 << 30)).unwrap();
        let huge = ScoringConfig::for_working_size(16384);
        let e = huge.check_memory(&default, Some(24 << 30)).unwrap_err();
        assert!(e.to_string().contains("--working-size"), "{e}");
        assert!(err(&|c| c.score_filter = 999).contains("score filter"));
        assert!(err(&|c| c.normalization = Normalization::Location).contains("square"));
        assert_eq!((score_filter_for(128), score_filter_for(256)), (11, 21));
    }
}

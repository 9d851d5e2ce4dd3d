//! A trained model ready for scoring: a run directory's architecture, weights and scoring profile,
//! and the per-image pipeline (decode → check → working resolution → fused anomaly map → score).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use indicatif::ProgressBar;
use rayon::prelude::*;

use crate::calibrate::{calibrate, ScoringProfile, ValidationSource, SCORING_FORMAT_VERSION};
use crate::data::augment::fit_long_side;
use crate::data::image_io::{self, ChannelMode, ChwImage};
use crate::data::split::Split;
use crate::device::{self, Backend};
use crate::fsutil::{read_json, write_json_atomic};
use crate::model::unet::UNet;
use crate::run::{load_model, RunConfig, RunDir};
use crate::score::{fuse, image_score, scale_maps_parallel, ScoringConfig};

/// File name of the scoring profile in a run directory.
pub const SCORING_FILE: &str = "scoring.json";

/// A run directory loaded for inference.
pub struct TrainedModel {
    /// The run directory.
    pub run: RunDir,
    /// Its `config.json`.
    pub config: RunConfig,
    /// The best weights.
    pub model: UNet,
    /// Where the model runs.
    pub device: Device,
}

/// One image scored: its anomaly map at the working resolution and its score.
pub struct ScoredImage {
    /// The image at its original size (for heat maps).
    pub original: ChwImage,
    /// Fused, smoothed anomaly map at the working resolution.
    pub map: ChwImage,
    /// Image score (at the profile's top-k; for an ensemble, the fused z-score).
    pub score: f64,
    /// For an ensemble: every member's own image score (empty for a single model).
    pub member_scores: Vec<f64>,
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
    /// Top-k candidates to report test AUROCs for (empty: none).
    fn top_k_candidates(&self) -> Vec<f64>;
    /// Member model directories (empty for a single model).
    fn members(&self) -> Vec<PathBuf>;
    /// The scoring settings and calibration, for `metrics.json`.
    fn describe(&self) -> serde_json::Value;
}

/// A single trained model with its scoring profile.
pub struct SingleModel {
    /// The model.
    pub model: TrainedModel,
    /// The profile it scores with.
    pub profile: ScoringProfile,
}

impl Scorer for SingleModel {
    fn source(&self) -> &Path {
        &self.model.run.root
    }
    fn load_image(&self, path: &Path) -> Result<ChwImage> {
        self.model.load_image(path)
    }
    fn score(&self, images: Vec<ChwImage>) -> Result<Vec<ScoredImage>> {
        self.model.score(images, &self.profile)
    }
    fn threshold(&self) -> f64 {
        self.profile.threshold
    }
    fn threshold_rule(&self) -> String {
        self.profile.threshold_rule.clone()
    }
    fn heatmap_scale(&self, threshold: f64) -> f64 {
        threshold
    }
    fn chunk(&self) -> usize {
        self.profile.config.batch_size.max(4)
    }
    fn top_k_candidates(&self) -> Vec<f64> {
        self.profile.config.top_k_candidates.clone()
    }
    fn members(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    fn describe(&self) -> serde_json::Value {
        serde_json::to_value(&self.profile).unwrap_or_default()
    }
}

impl TrainedModel {
    /// Opens the run directory `dir` (its config and best weights) on `backend`.
    pub fn open(dir: &Path, backend: Backend) -> Result<Self> {
        if !dir.is_dir() {
            bail!("{}: model directory not found", dir.display());
        }
        let run = RunDir::new(dir);
        let config = run.load_config()?;
        let weights = run.best_model();
        if !weights.is_file() {
            bail!(
                "{}: missing: the run has no best model yet (train it to its first evaluation, or resume it)",
                weights.display()
            );
        }
        config
            .model
            .validate()
            .with_context(|| format!("{}: invalid model", run.config().display()))?;
        let device = device::device(backend, 0)?;
        // Seeded so that building the model never draws from burn's process-global generator
        // outside the lock that keeps seeded initialisation reproducible.
        let model = load_model(config.model.init_seeded(&device, 0), &weights)?;
        Ok(Self {
            run,
            config,
            model,
            device,
        })
    }

    /// Path of the saved scoring profile.
    pub fn profile_path(&self) -> PathBuf {
        self.run.root.join(SCORING_FILE)
    }

    /// The saved scoring profile (`scoring.json`), checked against the model.
    pub fn load_profile(&self) -> Result<ScoringProfile> {
        let path = self.profile_path();
        if !path.is_file() {
            bail!(
                "{}: missing: the run has not been calibrated; run `reconad calibrate --model {}`",
                path.display(),
                self.run.root.display()
            );
        }
        let profile: ScoringProfile = read_json(&path)?;
        if profile.format != SCORING_FORMAT_VERSION {
            bail!(
                "{}: scoring format {} is not the supported format {SCORING_FORMAT_VERSION}",
                path.display(),
                profile.format
            );
        }
        profile
            .config
            .validate(&self.config.model)
            .with_context(|| format!("{}: invalid scoring settings", path.display()))?;
        let specs = profile.config.map_specs();
        if profile.stats.len() != specs.len()
            || profile
                .stats
                .iter()
                .zip(&specs)
                .any(|(s, &(w, k))| (s.window, s.kind) != (w, k))
        {
            bail!(
                "{}: the statistics do not match the windows and error maps",
                path.display()
            );
        }
        Ok(profile)
    }

    /// Default scoring settings for this model, one per candidate working resolution: the bottom
    /// and the top of its training rescale range (the scales whole training images were seen
    /// at). Calibration keeps the one with the best CutPaste-val AUROC.
    pub fn default_scorings(&self) -> Vec<ScoringConfig> {
        let (lo, hi) = self.config.train.augment.rescale;
        let mut sizes = vec![lo as usize, hi as usize];
        sizes.dedup();
        sizes
            .into_iter()
            .map(ScoringConfig::for_working_size)
            .filter(|c| c.validate(&self.config.model).is_ok())
            .collect()
    }

    /// The default settings at the top of the training rescale range (the base that scoring
    /// options are applied to when the run has no saved profile).
    pub fn default_scoring(&self) -> ScoringConfig {
        ScoringConfig::for_working_size(self.config.train.augment.rescale.1 as usize)
    }

    /// Calibrates every candidate configuration and keeps the best by CutPaste-val AUROC (the
    /// first on ties); the profile lists every candidate's AUROC.
    pub fn calibrate_best(
        &self,
        candidates: Vec<ScoringConfig>,
        progress: &ProgressBar,
    ) -> Result<ScoringProfile> {
        let mut best: Option<ScoringProfile> = None;
        let mut tried = Vec::new();
        for config in candidates {
            let profile = self.calibrate(config, progress)?;
            tried.extend(profile.working_size_auroc.iter().copied());
            if best
                .as_ref()
                .is_none_or(|b| profile.val_auroc > b.val_auroc)
            {
                best = Some(profile);
            }
        }
        let mut best = best.context("no scoring configuration to calibrate")?;
        best.working_size_auroc = tried;
        Ok(best)
    }

    /// Calibrates `config` on this run's validation split (its data set reopened, its split file
    /// reused).
    pub fn calibrate(
        &self,
        config: ScoringConfig,
        progress: &ProgressBar,
    ) -> Result<ScoringProfile> {
        let val_images = self.val_images(None)?;
        let val = ValidationSource {
            images: &val_images,
            cutpaste: &self.config.train.cutpaste,
            seed: self.config.train.seed,
        };
        calibrate(
            &self.model,
            &self.config.model,
            config,
            &val,
            &self.device,
            progress,
        )
    }

    /// The run's validation normal images (its data set reopened, its split file reused),
    /// decoded for this model, optionally resized to long side `side`.
    pub fn val_images(&self, side: Option<usize>) -> Result<Vec<ChwImage>> {
        let dataset = self.config.data.open()?;
        let split = Split::load(&self.run.split())?;
        let (_, val_items) = split.resolve(&dataset, &self.run.split())?;
        let channels = self.config.model.channels;
        Ok(val_items
            .par_iter()
            .map(|i| {
                image_io::load_chw(&i.path, channels, None).map(|img| match side {
                    Some(side) => fit_long_side(&img, side),
                    None => img,
                })
            })
            .collect::<Result<_, _>>()?)
    }

    /// Calibrates the candidates (see [`TrainedModel::calibrate_best`]) and saves the best
    /// profile as the run's `scoring.json`.
    pub fn calibrate_and_save(
        &self,
        candidates: Vec<ScoringConfig>,
        progress: &ProgressBar,
    ) -> Result<ScoringProfile> {
        let profile = self.calibrate_best(candidates, progress)?;
        write_json_atomic(&self.profile_path(), &profile)?;
        Ok(profile)
    }

    /// Decodes `path` for this model: fails when its channel count differs from the model's
    /// (unless the run forced a channel mode, in which case it is converted like the training
    /// images were).
    pub fn load_image(&self, path: &Path) -> Result<ChwImage> {
        let decoded = image_io::decode(path)?;
        let channels = self.config.model.channels;
        let info = image_io::ImageInfo::of(path, &decoded)?;
        if self.config.train.channels == ChannelMode::Auto && usize::from(info.channels) != channels
        {
            bail!(
                "{}: image has {} channel(s), the model expects {channels}",
                path.display(),
                info.channels
            );
        }
        Ok(image_io::to_chw(&decoded, channels, None))
    }

    /// Scores images (already decoded, any size) with `profile`.
    pub fn score(
        &self,
        images: Vec<ChwImage>,
        profile: &ScoringProfile,
    ) -> Result<Vec<ScoredImage>> {
        let config = &profile.config;
        let working: Vec<ChwImage> = images.par_iter().map(|i| config.to_working(i)).collect();
        let maps = scale_maps_parallel(
            &self.model,
            &self.config.model,
            config,
            &working,
            &self.device,
        )?;
        Ok(images
            .into_iter()
            .zip(working)
            .zip(maps)
            .map(|((original, work), maps)| {
                let fused = fuse(&maps, &profile.stats, config, work.width, work.height);
                let score = image_score(&fused, config.top_k);
                ScoredImage {
                    member_scores: Vec::new(),
                    original,
                    map: ChwImage {
                        channels: 1,
                        height: work.height,
                        width: work.width,
                        data: fused,
                    },
                    score,
                }
            })
            .collect())
    }
}

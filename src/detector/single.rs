//! A single trained model ready for scoring: a run directory's architecture, best weights and
//! scoring profile, and the per-image pipeline (decode → check channels → working resolution →
//! scale maps → fused anomaly map → score).

use std::path::{Path, PathBuf};

use burn::prelude::*;
use rayon::prelude::*;

use super::{ScoredImage, Scorer, ScoringDescription};
use crate::data::image_io;
use crate::data::split::Split;
use crate::device::{self, Backend};
use crate::error::{fail_file, Context, Error, Result};
use crate::image::ChwImage;
use crate::model::weights::load_model;
use crate::model::Networks;
use crate::score::fuse::{fuse, image_score};
use crate::score::maps::scale_maps_of_kinds;
use crate::score::profile::{ScoringProfile, SCORING_FILE};
use crate::score::ErrorKind;
use crate::train::head::load_head;
use crate::train::{RunConfig, RunDir};

/// A run directory loaded for inference.
pub struct TrainedModel {
    /// The run directory.
    pub run: RunDir,
    /// Its `config.json`.
    pub config: RunConfig,
    /// The scored weights, and the discriminative head when the run has one.
    pub model: Networks,
    /// Where the model runs.
    pub device: Device,
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
        // A separate heat-map profile has its own scale: its calibrated threshold.
        match &self.profile.heatmap {
            Some(h) => h.threshold,
            None => threshold,
        }
    }
    fn chunk(&self) -> usize {
        self.profile.config.batch_size.max(4)
    }
    fn score_candidates(&self) -> Vec<(usize, f64)> {
        self.profile.config.score_candidates()
    }
    fn members(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    fn describe(&self) -> ScoringDescription {
        ScoringDescription::Single(Box::new(self.profile.clone()))
    }
    fn run_config(&self) -> &RunConfig {
        &self.model.config
    }
}

impl TrainedModel {
    /// Opens the run directory `dir` (its config and the weights it is scored with) on `backend`.
    pub fn open(dir: &Path, backend: Backend) -> Result<Self> {
        if !dir.is_dir() {
            fail_file!(dir, "model directory not found");
        }
        let run = RunDir::new(dir);
        let config = run.load_config()?;
        let weights = run.scored_model(config.train.keep);
        if !weights.is_file() {
            fail_file!(
                weights,
                "missing: the run has no trained weights yet (train it, or resume it)"
            );
        }
        config
            .model
            .validate()
            .map_err(Error::from)
            .with_context(|| format!("{}: invalid model", run.config().display()))?;
        let device = device::device(backend, 0)?;
        // Seeded so that building the model never draws from burn's process-global generator
        // outside the lock that keeps seeded initialisation reproducible.
        let unet = load_model(config.model.init_seeded(&device, 0), &weights)?;
        let head = load_head(&run, &config, &device)?;
        Ok(Self {
            model: Networks { unet, head },
            run,
            config,
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
            fail_file!(
                path,
                "missing: the run has not been calibrated; run `reconad calibrate --model {}`",
                self.run.root.display()
            );
        }
        ScoringProfile::load(&path, &self.config.model)
    }

    /// The run's validation normal images (its data set reopened, its split file reused),
    /// decoded for this model, optionally resized to long side `side`.
    pub fn val_images(&self, side: Option<usize>) -> Result<Vec<ChwImage>> {
        let dataset = self.config.data.open()?;
        let split = Split::load(&self.run.split())?;
        let (_, val_items) = split.resolve(&dataset, &self.run.split())?;
        let channels = self.config.model.channels;
        val_items
            .par_iter()
            .map(|i| {
                image_io::load_chw(&i.path, channels, None).map(|img| match side {
                    Some(side) => img.fit_long_side(side),
                    None => img,
                })
            })
            .collect()
    }

    /// Decodes `path` for this model: fails when its channel count differs from the model's
    /// (unless the run forced a channel mode, in which case it is converted like the training
    /// images were).
    pub fn load_image(&self, path: &Path) -> Result<ChwImage> {
        let decoded = image_io::decode(path)?;
        let channels = self.config.model.channels;
        let info = image_io::ImageInfo::of(path, &decoded)?;
        if let Err(why) = self.config.train.channels.admits(info.channels, channels) {
            fail_file!(path, "{why}");
        }
        Ok(image_io::to_chw(&decoded, channels, None))
    }

    /// Scores images (already decoded, any size) with `profile`: the score from its fused map,
    /// the anomaly map from its heat-map profile's when it has one.
    pub fn score(
        &self,
        images: Vec<ChwImage>,
        profile: &ScoringProfile,
    ) -> Result<Vec<ScoredImage>> {
        let config = &profile.config;
        let (fused, heat) = match &profile.heatmap {
            Some(h) => {
                let mut both = self.fused_maps(&images, &[profile, h])?.into_iter();
                (both.next().expect("two profiles"), both.next())
            }
            None => (
                self.fused_maps(&images, &[profile])?
                    .pop()
                    .expect("one profile"),
                None,
            ),
        };
        let mut heat = heat.map(Vec::into_iter);
        Ok(images
            .into_iter()
            .zip(fused)
            .map(|(original, fused)| {
                let score = image_score(
                    &fused.data,
                    fused.size(),
                    config.score_filter,
                    config.top_k_percent,
                );
                let candidate_scores = config
                    .score_candidates()
                    .into_iter()
                    .map(|(f, k)| image_score(&fused.data, fused.size(), f, k))
                    .collect();
                let map = match heat.as_mut() {
                    Some(h) => h.next().expect("one heat map per image"),
                    None => fused,
                };
                ScoredImage {
                    member_scores: Vec::new(),
                    candidate_scores,
                    original,
                    map,
                    score,
                }
            })
            .collect())
    }

    /// The fused anomaly map of each image under each of `profiles` (`[profile][image]`, at
    /// the working resolution). Profiles that cut images into the same windows share one model
    /// pass: its reconstructions give every error kind any of them needs.
    fn fused_maps(
        &self,
        images: &[ChwImage],
        profiles: &[&ScoringProfile],
    ) -> Result<Vec<Vec<ChwImage>>> {
        let first = &profiles[0].config;
        if profiles[1..].iter().any(|p| !p.config.same_windows(first)) {
            return profiles
                .iter()
                .map(|p| Ok(self.fused_maps(images, &[p])?.remove(0)))
                .collect();
        }
        let mut kinds: Vec<ErrorKind> = Vec::new();
        for p in profiles {
            for &k in p.config.error.kinds() {
                if !kinds.contains(&k) {
                    kinds.push(k);
                }
            }
        }
        let working: Vec<ChwImage> = images.par_iter().map(|i| first.to_working(i)).collect();
        let maps = scale_maps_of_kinds(
            &self.model,
            &self.config.model,
            first,
            &kinds,
            &working,
            &self.device,
        )?;
        Ok(profiles
            .iter()
            .map(|p| {
                let config = &p.config;
                working
                    .iter()
                    .zip(&maps)
                    .map(|(work, all)| {
                        // This profile's maps, in its map_specs order, out of the shared ones.
                        let own: Vec<Vec<f32>> = (0..config.windows.len())
                            .flat_map(|s| config.error.kinds().iter().map(move |k| (s, k)))
                            .map(|(s, k)| {
                                let at = kinds.iter().position(|x| x == k).expect("in the union");
                                all[s * kinds.len() + at].clone()
                            })
                            .collect();
                        ChwImage::map(work.size(), fuse(&own, &p.stats, config, work.size()))
                    })
                    .collect()
            })
            .collect())
    }
}

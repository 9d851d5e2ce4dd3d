//! Argument groups shared by several subcommands, each with the one function that turns it into
//! library settings (`open`, `apply`).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use reconad::data::folder::{open_folder, FolderSpec, DEFAULT_NORMAL_TEST_FRACTION};
use reconad::data::mvtec::{category_dirs, open_category};
use reconad::data::Dataset;
use reconad::model::unet::Preset;
use reconad::score::window::Padding;
use reconad::score::{ErrorMaps, Normalization, ScoringConfig};
use reconad::train::{load_config_file, DataRef, KeepWeights, TrainConfig};

/// Where a data set is: an MVTec AD root or category, or a folder data set.
#[derive(Debug, Args, Default)]
pub struct DataSourceArgs {
    /// MVTec AD category folder, or a root holding category folders.
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,
    /// Same as PATH.
    #[arg(long = "data", value_name = "ROOT", conflicts_with = "path")]
    pub data: Option<PathBuf>,
    /// Category under PATH (default: PATH itself if it is a category, else every category).
    #[arg(long)]
    pub category: Option<String>,
    /// Folder data set: folder of normal images (instead of PATH).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["path", "data", "category"])]
    pub normal: Option<PathBuf>,
    /// Folder data set: folder of anomalous images; its name is the defect type (repeatable).
    #[arg(long, value_name = "DIR", requires = "normal")]
    pub abnormal: Vec<PathBuf>,
    /// Folder data set: folder of ground-truth masks (matched by file stem).
    #[arg(long, value_name = "DIR", requires = "normal")]
    pub masks: Option<PathBuf>,
    /// Folder data set: folder of normal test images (default: hold out a share of --normal).
    #[arg(long, value_name = "DIR", requires = "normal")]
    pub normal_test: Option<PathBuf>,
    /// Folder data set: share of --normal held out as normal test images without --normal-test.
    #[arg(long, default_value_t = DEFAULT_NORMAL_TEST_FRACTION, requires = "normal")]
    pub normal_test_fraction: f64,
}

impl DataSourceArgs {
    /// Whether a data set was named at all.
    pub fn given(&self) -> bool {
        self.path.is_some() || self.data.is_some() || self.normal.is_some()
    }

    /// Discovers the data set(s) named by these arguments.
    pub fn open(&self, seed: u64) -> Result<Vec<Dataset>> {
        if let Some(normal) = &self.normal {
            return Ok(vec![open_folder(&self.folder_spec(
                normal.clone(),
                None,
                seed,
            ))?]);
        }
        let Some(path) = self.path.as_ref().or(self.data.as_ref()) else {
            bail!("no data set given: pass an MVTec AD PATH (with --category) or --normal DIR");
        };
        category_dirs(path, self.category.as_deref())?
            .iter()
            .map(|dir| open_category(dir).map_err(Into::into))
            .collect()
    }

    /// Discovers exactly one data set and how to find it again (absolute paths).
    pub fn open_one(&self, seed: u64) -> Result<(Dataset, DataRef)> {
        let mut datasets = self.open(seed)?;
        if datasets.len() != 1 {
            let names: Vec<&str> = datasets.iter().map(|d| d.name.as_str()).collect();
            bail!(
                "{} categories found ({}); name one with --category",
                datasets.len(),
                names.join(", ")
            );
        }
        let dataset = datasets.remove(0);
        let data_ref = self.data_ref(&dataset, seed);
        Ok((dataset, data_ref))
    }

    /// How to find `dataset`, opened from these arguments, again (absolute paths).
    fn data_ref(&self, dataset: &Dataset, seed: u64) -> DataRef {
        match &self.normal {
            Some(normal) => {
                DataRef::Folder(self.folder_spec(abs(normal), Some(dataset.name.clone()), seed))
            }
            None => DataRef::Mvtec {
                category_dir: abs(&dataset.root),
            },
        }
    }

    /// Every data set named by these arguments, each with how to find it again; with
    /// `categories`, exactly those categories under PATH, in that order.
    pub fn open_all(&self, seed: u64, categories: &[String]) -> Result<Vec<(Dataset, DataRef)>> {
        let with_ref = |d: Dataset| {
            let data_ref = self.data_ref(&d, seed);
            (d, data_ref)
        };
        if categories.is_empty() {
            return Ok(self.open(seed)?.into_iter().map(with_ref).collect());
        }
        if self.normal.is_some() || self.category.is_some() {
            bail!("--categories names categories under an MVTec AD PATH; leave out --category and the folder options");
        }
        let Some(path) = self.path.as_ref().or(self.data.as_ref()) else {
            bail!("no data set given: pass an MVTec AD root with --data ROOT");
        };
        categories
            .iter()
            .map(|name| {
                let dir = category_dirs(path, Some(name))?.remove(0);
                Ok(with_ref(open_category(&dir)?))
            })
            .collect()
    }

    /// The folder data set these arguments describe (paths absolute when `normal` is).
    fn folder_spec(&self, normal: PathBuf, name: Option<String>, seed: u64) -> FolderSpec {
        let absolute = normal.is_absolute();
        let fix = |p: &PathBuf| if absolute { abs(p) } else { p.clone() };
        FolderSpec {
            name,
            normal,
            abnormal: self.abnormal.iter().map(fix).collect(),
            masks: self.masks.as_ref().map(fix),
            normal_test: self.normal_test.as_ref().map(fix),
            normal_test_fraction: self.normal_test_fraction,
            seed,
        }
    }
}

/// `path` made absolute (unchanged if that fails).
fn abs(path: &PathBuf) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.clone())
}

/// Training settings shared by `train` and `ensemble train`: a `--config` file, then these
/// options on top.
#[derive(Debug, Args, Default)]
pub struct TrainSettingsArgs {
    /// JSON file of training settings (any subset of config.json's `train` fields; the others
    /// keep their defaults).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Architecture preset: tiny, small or default.
    #[arg(long)]
    pub preset: Option<String>,
    /// Train exactly N epochs (default: 40, raised on a small training set to reach
    /// --min-steps optimizer steps).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Fewest optimizer steps: a small training set trains more epochs to reach them
    /// (default 720; 0 = exactly --epochs).
    #[arg(long, value_name = "N")]
    pub min_steps: Option<usize>,
    /// Images per batch.
    #[arg(long)]
    pub batch: Option<usize>,
    /// Evaluate the CutPaste-val AUROC every N epochs.
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Stop after this many evaluations without improvement (with `--keep best`).
    #[arg(long)]
    pub patience: Option<usize>,
    /// Weights to score: `last` (default: the end of a fixed schedule) or `best` (the best
    /// CutPaste-val epoch, with early stopping).
    #[arg(long, value_enum)]
    pub keep: Option<KeepWeights>,
    /// Train the autoencoder alone, without the default's discriminative head (about 11 min
    /// less on 2 CPU cores; calibration then chooses among the reconstruction-error maps only).
    #[arg(long)]
    pub no_head: bool,
}

impl TrainSettingsArgs {
    /// The defaults, then the `--config` file, then these options.
    pub fn apply(&self) -> Result<TrainConfig> {
        self.apply_on(TrainConfig::default())
    }

    /// `base` (or the `--config` file instead of it), then these options.
    pub fn apply_on(&self, base: TrainConfig) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(path) => load_config_file(path)?,
            None => base,
        };
        if let Some(p) = &self.preset {
            c.preset = Preset::parse(p)?;
            c.model = None;
        }
        if let Some(epochs) = self.epochs {
            c = c.with_epochs(epochs);
        }
        c.min_steps = self.min_steps.unwrap_or(c.min_steps);
        c.batch_size = self.batch.unwrap_or(c.batch_size);
        c.eval_every = self.eval_every.unwrap_or(c.eval_every);
        c.patience = self.patience.unwrap_or(c.patience);
        c.keep = self.keep.unwrap_or(c.keep);
        if self.no_head {
            c.head = None;
        }
        Ok(c)
    }
}

/// Scoring settings that override the model's saved ones (any of them triggers a calibration
/// on the run's validation split with the new settings).
#[derive(Debug, Args, Default)]
pub struct ScoringArgs {
    /// Long side of the working resolution in pixels.
    #[arg(long, value_name = "PX")]
    pub working_size: Option<usize>,
    /// Window sides, comma-separated, one scale each; the working size means the whole image.
    #[arg(long, value_name = "PX,...", value_delimiter = ',')]
    pub windows: Vec<usize>,
    /// Strides, one per window (default: half the window).
    #[arg(long, value_name = "PX,...", value_delimiter = ',')]
    pub strides: Vec<usize>,
    /// Padding policy of border windows.
    #[arg(long, value_enum)]
    pub padding: Option<Padding>,
    /// Source of the per-scale z-normalisation statistics.
    #[arg(long, value_enum)]
    pub norm: Option<Normalization>,
    /// Error maps per scale: squared error, 1 − SSIM, or both.
    #[arg(long, value_enum)]
    pub error: Option<ErrorMaps>,
    /// σ of the Gaussian smoothing of the fused map (working-resolution pixels).
    #[arg(long)]
    pub sigma: Option<f64>,
    /// σ of the SSIM window (working-resolution pixels; default tied to the working size:
    /// 1.0 = 7×7 up to 128 px, 1.5 = 11×11 from 256 px).
    #[arg(long)]
    pub ssim_sigma: Option<f64>,
    /// Fixed top-k in percent (no choice on CutPaste-val).
    #[arg(long, value_name = "PERCENT", allow_negative_numbers = true)]
    pub top_k: Option<f64>,
    /// Top-k candidates in percent, chosen on CutPaste-val.
    #[arg(
        long,
        value_name = "PERCENT,...",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    pub top_k_candidates: Vec<f64>,
    /// Fixed mean-filter side (px) applied to the fused map before the top-k of the image score
    /// (0 = none; no choice on CutPaste-val).
    #[arg(long, value_name = "PX")]
    pub score_filter: Option<usize>,
    /// Share of the window side over which merge weights taper off (0 = plain average).
    #[arg(long)]
    pub taper: Option<f64>,
    /// Windows per forward pass.
    #[arg(long, value_name = "N")]
    pub window_batch: Option<usize>,
}

impl ScoringArgs {
    /// True when any setting is given.
    pub fn any(&self) -> bool {
        self.working_size.is_some()
            || !self.windows.is_empty()
            || !self.strides.is_empty()
            || self.padding.is_some()
            || self.norm.is_some()
            || self.error.is_some()
            || self.sigma.is_some()
            || self.ssim_sigma.is_some()
            || self.top_k.is_some()
            || !self.top_k_candidates.is_empty()
            || self.window_batch.is_some()
            || self.score_filter.is_some()
            || self.taper.is_some()
    }

    /// `base` with these settings applied. A new working size without windows resets the
    /// windows (and strides) to that size's defaults.
    pub fn apply(&self, base: ScoringConfig) -> ScoringConfig {
        let mut c = base;
        if let Some(w) = self.working_size {
            let fresh = ScoringConfig::for_working_size(w);
            c.working_size = w;
            c.windows = fresh.windows;
            c.strides = Vec::new();
            c.ssim_sigma = fresh.ssim_sigma;
        }
        if !self.windows.is_empty() {
            c.windows = self.windows.clone();
            c.strides = Vec::new();
        }
        if !self.strides.is_empty() {
            c.strides = self.strides.clone();
        }
        c.padding = self.padding.unwrap_or(c.padding);
        c.normalization = self.norm.unwrap_or(c.normalization);
        c.error = self.error.unwrap_or(c.error);
        c.sigma = self.sigma.unwrap_or(c.sigma);
        c.ssim_sigma = self.ssim_sigma.unwrap_or(c.ssim_sigma);
        if !self.top_k_candidates.is_empty() {
            c.top_k_candidates_percent = self.top_k_candidates.clone();
        }
        if let Some(k) = self.top_k {
            c.top_k_percent = k;
            c.top_k_candidates_percent = vec![k];
        }
        if let Some(f) = self.score_filter {
            c.score_filter = f;
            c.score_filter_candidates = Vec::new();
        }
        c.batch_size = self.window_batch.unwrap_or(c.batch_size);
        c.taper = self.taper.unwrap_or(c.taper);
        c
    }
}

/// Parses `16-32-64-128` (encoder widths).
pub fn parse_widths(spec: &str) -> Result<Vec<usize>> {
    spec.split('-')
        .map(|w| w.trim().parse())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--widths {spec}: expected sizes like 16-32-64-128"))
}

/// Parses `none`, `0`, `0+1`, … (skip levels to switch off).
pub fn parse_skips(spec: &str) -> Result<Vec<usize>> {
    if spec == "none" {
        return Ok(Vec::new());
    }
    spec.split('+')
        .map(|l| l.trim().parse())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--disable-skips {spec}: expected none, 0, 0+1, ..."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoring_options_override_only_what_they_name() {
        let base = ScoringConfig::for_working_size(128);
        let none = ScoringArgs::default();
        assert!(!none.any());
        assert_eq!(none.apply(base.clone()), base);

        // A new working size brings that size's windows and drops custom strides.
        let mut custom = base.clone();
        custom.strides = vec![8, 16, 32];
        let args = ScoringArgs {
            working_size: Some(256),
            ..Default::default()
        };
        assert!(args.any());
        let c = args.apply(custom.clone());
        assert_eq!(
            (c.working_size, c.windows.clone()),
            (256, vec![64, 128, 256])
        );
        assert!(c.strides.is_empty());
        assert_eq!(c.sigma, base.sigma);
        assert_eq!(c.ssim_sigma, 1.5);
        let small = ScoringArgs {
            working_size: Some(128),
            ..Default::default()
        };
        assert_eq!(small.apply(base.clone()).ssim_sigma, 1.0);

        // Explicit windows win over the working size's; a fixed top-k is its only candidate.
        let args = ScoringArgs {
            working_size: Some(256),
            windows: vec![256],
            top_k: Some(0.5),
            top_k_candidates: vec![0.1, 1.0],
            sigma: Some(2.0),
            ..Default::default()
        };
        let c = args.apply(custom);
        assert_eq!(c.windows, vec![256]);
        assert_eq!(c.top_k_percent, 0.5);
        assert_eq!(c.top_k_candidates_percent, vec![0.5]);
        assert_eq!(c.sigma, 2.0);
    }

    #[test]
    fn train_options_apply_over_the_defaults_and_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.json");
        std::fs::write(&file, r#"{"epochs": 7, "batch_size": 4, "seed": 9}"#).unwrap();
        let args = TrainSettingsArgs {
            config: Some(file.clone()),
            preset: Some("tiny".into()),
            batch: Some(2),
            ..Default::default()
        };
        let c = args.apply().unwrap();
        assert_eq!((c.epochs, c.batch_size, c.seed), (7, 2, 9));
        assert_eq!(c.preset, Preset::Tiny);
        // --epochs asks for exactly those epochs, unless --min-steps is given too.
        let epochs = |e: Option<usize>, m: Option<usize>| {
            let c = TrainSettingsArgs {
                epochs: e,
                min_steps: m,
                ..Default::default()
            }
            .apply()
            .unwrap();
            (c.epochs, c.min_steps)
        };
        assert_eq!(epochs(None, None), (40, 720));
        assert_eq!(epochs(Some(5), None), (5, 0));
        assert_eq!(epochs(Some(5), Some(60)), (5, 60));
        assert_eq!(epochs(None, Some(0)), (40, 0));
        let bad = TrainSettingsArgs {
            preset: Some("huge".into()),
            ..Default::default()
        };
        assert!(bad.apply().unwrap_err().to_string().contains("huge"));
        // The head is the default; --no-head or `"head": null` in a file drop it.
        assert!(TrainSettingsArgs::default().apply().unwrap().head.is_some());
        let no_head = TrainSettingsArgs {
            no_head: true,
            ..Default::default()
        };
        assert_eq!(no_head.apply().unwrap().head, None);
        std::fs::write(&file, r#"{"head": null}"#).unwrap();
        let from_file = TrainSettingsArgs {
            config: Some(file),
            ..Default::default()
        };
        assert_eq!(from_file.apply().unwrap().head, None);
    }

    #[test]
    fn member_variation_specs_parse_or_name_the_bad_one() {
        assert_eq!(parse_widths("8-16-32").unwrap(), vec![8, 16, 32]);
        assert!(parse_widths("8-x").unwrap_err().to_string().contains("8-x"));
        assert_eq!(parse_skips("none").unwrap(), Vec::<usize>::new());
        assert_eq!(parse_skips("0+2").unwrap(), vec![0, 2]);
        assert!(parse_skips("a")
            .unwrap_err()
            .to_string()
            .contains("--disable-skips a"));
    }
}

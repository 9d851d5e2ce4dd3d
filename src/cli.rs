//! Command-line interface: argument parsing (clap derive) and dispatch to the pipeline stages.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use rayon::prelude::*;

use crate::calibrate::ScoringProfile;
use crate::data::augment::Corruption;
use crate::data::check::{check_dataset, CheckOptions};
use crate::data::folder::{open_folder, FolderSpec, DEFAULT_NORMAL_TEST_FRACTION};
use crate::data::image_io::ChannelMode;
use crate::data::mvtec::{category_dirs, open_category};
use crate::data::split::{Split, DEFAULT_VAL_FRACTION};
use crate::data::synth::{self, SynthCategory, SynthConfig};
use crate::data::Dataset;
use crate::data::{list_images, stem};
use crate::device::{self, Backend, BURN_VERSION};
use crate::ensemble::{
    is_ensemble, Ensemble, EnsembleDef, Fusion, ENSEMBLE_FILE, ENSEMBLE_FORMAT_VERSION,
};
use crate::eval::{self, calibration_bar, EvalOptions};
use crate::inference::{Scorer, SingleModel, TrainedModel};
use crate::model::unet::Preset;
use crate::report::heatmap::write_overlay;
use crate::run::{DataRef, RunConfig, RunDir};
use crate::score::{ErrorMaps, Normalization, ScoringConfig};
use crate::train::{self, TrainConfig, TrainOptions};
use crate::window::Padding;
use crate::DEFAULT_SEED;

/// Unsupervised visual anomaly detection with a U-Net autoencoder.
#[derive(Debug, Parser)]
#[command(name = "reconad", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a synthetic MVTec-AD-layout data set (images + exact masks) from a seed.
    Synth(SynthArgs),
    /// Inspect data sets.
    #[command(subcommand)]
    Data(DataCommand),
    /// Train a U-Net autoencoder on the normal images of a data set.
    Train(Box<TrainArgs>),
    /// (Re)calibrate a trained model's scoring on its validation split: z-normalisation
    /// statistics, top-k and threshold, saved as RUN/scoring.json.
    Calibrate(CalibrateArgs),
    /// Evaluate a trained model on a data set's test split: metrics.json, scores.csv, heat maps.
    Eval(Box<EvalArgs>),
    /// Score images (files or folders): one line per image with path, score and label.
    Predict(PredictArgs),
    /// Ensembles of models: train members, or define one from trained runs.
    #[command(subcommand)]
    Ensemble(EnsembleCommand),
    /// The main job on the built-in synthetic data set: generate it, train a small model per
    /// category, evaluate it with the multi-scale pipeline, write metrics and heat maps.
    Demo(DemoArgs),
    /// Print versions, the compiled backends, and check that a backend runs.
    Info(InfoArgs),
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Output folder of the demo.
    #[arg(long, default_value = "reconad-demo")]
    out: PathBuf,
    /// Seed of every random choice.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Architecture preset of the demo models.
    #[arg(long, default_value = "small")]
    preset: String,
    /// Training resolution (rescale range [N, 2N]; scoring at 2N px).
    #[arg(long, value_name = "N", default_value_t = 64)]
    image_size: usize,
    /// Maximum epochs per category.
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Learning rate (higher than the SPEC default so that the demo converges in minutes).
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Early stop after this many evaluations (every 2 epochs) without improvement.
    #[arg(long, default_value_t = 8)]
    patience: usize,
    /// Normal training images generated per category.
    #[arg(long, default_value_t = 60)]
    train_images: usize,
    /// Share of them held out for validation (larger than the 10 % default: the demo's sets
    /// are small and the CutPaste-val AUROC needs enough images to be stable).
    #[arg(long, default_value_t = 0.25)]
    val_fraction: f64,
    /// Categories (repeat the option; default all).
    #[arg(long = "category", value_enum)]
    categories: Vec<SynthCategory>,
    /// Inpainting training: zero random blocks of this side (30 % of the input) and train to
    /// reconstruct the clean image; 0 trains on clean inputs. On the demo's categories this had
    /// the best mean CutPaste-val AUROC of the settings tried (plain, no shallowest skip, masks).
    #[arg(long, value_name = "PX", default_value_t = 8)]
    mask_patch: usize,
}

/// Scoring settings that override the model's saved ones (any of them triggers a calibration
/// on the run's validation split with the new settings).
#[derive(Debug, Args, Default)]
struct ScoringArgs {
    /// Long side of the working resolution in pixels.
    #[arg(long, value_name = "PX")]
    working_size: Option<usize>,
    /// Window sides, comma-separated, one scale each; the working size means the whole image.
    #[arg(long, value_name = "PX,...", value_delimiter = ',')]
    windows: Vec<usize>,
    /// Strides, one per window (default: half the window).
    #[arg(long, value_name = "PX,...", value_delimiter = ',')]
    strides: Vec<usize>,
    /// Padding policy of border windows.
    #[arg(long, value_enum)]
    padding: Option<Padding>,
    /// Source of the per-scale z-normalisation statistics.
    #[arg(long, value_enum)]
    norm: Option<Normalization>,
    /// Error maps per scale: squared error, 1 − SSIM, or both.
    #[arg(long, value_enum)]
    error: Option<ErrorMaps>,
    /// σ of the Gaussian smoothing of the fused map (working-resolution pixels).
    #[arg(long)]
    sigma: Option<f64>,
    /// Fixed top-k in percent (no choice on CutPaste-val).
    #[arg(long, value_name = "PERCENT", allow_negative_numbers = true)]
    top_k: Option<f64>,
    /// Top-k candidates in percent, chosen on CutPaste-val.
    #[arg(
        long,
        value_name = "PERCENT,...",
        value_delimiter = ',',
        allow_negative_numbers = true
    )]
    top_k_candidates: Vec<f64>,
    /// Share of the window side over which merge weights taper off (0 = plain average).
    #[arg(long)]
    taper: Option<f64>,
    /// Windows per forward pass.
    #[arg(long, value_name = "N")]
    window_batch: Option<usize>,
}

impl ScoringArgs {
    /// True when any setting is given.
    fn any(&self) -> bool {
        self.working_size.is_some()
            || !self.windows.is_empty()
            || !self.strides.is_empty()
            || self.padding.is_some()
            || self.norm.is_some()
            || self.error.is_some()
            || self.sigma.is_some()
            || self.top_k.is_some()
            || !self.top_k_candidates.is_empty()
            || self.window_batch.is_some()
            || self.taper.is_some()
    }

    /// `base` with these settings applied. A new working size without windows resets the
    /// windows (and strides) to that size's defaults.
    fn apply(&self, base: ScoringConfig) -> ScoringConfig {
        let mut c = base;
        if let Some(w) = self.working_size {
            let fresh = ScoringConfig::for_working_size(w);
            c.working_size = w;
            c.windows = fresh.windows;
            c.strides = Vec::new();
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
        if !self.top_k_candidates.is_empty() {
            c.top_k_candidates = self.top_k_candidates.clone();
        }
        if let Some(k) = self.top_k {
            c.top_k = k;
            c.top_k_candidates = vec![k];
        }
        c.batch_size = self.window_batch.unwrap_or(c.batch_size);
        c.taper = self.taper.unwrap_or(c.taper);
        c
    }
}

#[derive(Debug, Args)]
struct CalibrateArgs {
    /// Run directory of the trained model.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    #[command(flatten)]
    scoring: ScoringArgs,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct EvalArgs {
    /// Data set to evaluate on (default: the run's own data set).
    #[command(flatten)]
    source: DataSourceArgs,
    /// Run directory of the trained model.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    /// Output folder for metrics.json, scores.csv (and heatmaps/).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    scoring: ScoringArgs,
    /// Decision threshold on the image score (default: the calibrated one).
    #[arg(long, allow_negative_numbers = true)]
    threshold: Option<f64>,
    /// Write a heat-map overlay per test image into DIR/heatmaps/<defect>/.
    #[arg(long)]
    heatmaps: bool,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct PredictArgs {
    /// Run directory of the trained model.
    #[arg(long, value_name = "RUN")]
    model: PathBuf,
    /// Image files or folders of images.
    #[arg(value_name = "PATH", required = true)]
    paths: Vec<PathBuf>,
    /// JSON lines instead of CSV.
    #[arg(long)]
    json: bool,
    /// Write a heat-map overlay per image into this folder (<stem>.png, or <folder>_<stem>.png
    /// where file names repeat); adds a heatmap column.
    #[arg(long, value_name = "DIR")]
    heatmaps: Option<PathBuf>,
    /// Decision threshold on the image score (default: the calibrated one).
    #[arg(long, allow_negative_numbers = true)]
    threshold: Option<f64>,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
}

#[derive(Debug, Subcommand)]
enum EnsembleCommand {
    /// Train N members from one base configuration (seeds, and optional variations) into DIR,
    /// sharing one train/val split; resumes unfinished members; writes DIR/ensemble.json.
    Train(Box<EnsembleTrainArgs>),
    /// Define an ensemble from trained, calibrated runs (sharing one train/val split).
    Create(EnsembleCreateArgs),
}

#[derive(Debug, Args)]
struct EnsembleTrainArgs {
    #[command(flatten)]
    source: DataSourceArgs,
    /// Ensemble folder (members in DIR/member-N).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Number of members.
    #[arg(long, default_value_t = 3)]
    members: usize,
    /// JSON file of training settings shared by the members.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Architecture preset.
    #[arg(long)]
    preset: Option<String>,
    /// Maximum epochs per member.
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per batch.
    #[arg(long)]
    batch: Option<usize>,
    /// Evaluate the CutPaste-val AUROC every N epochs.
    #[arg(long)]
    eval_every: Option<usize>,
    /// Early-stop patience (evaluations).
    #[arg(long)]
    patience: Option<usize>,
    /// Base seed: member i trains with seed + i; all share the split of this seed.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Training resolutions, cycled over the members (e.g. 96,128,160).
    #[arg(long, value_name = "N,...", value_delimiter = ',')]
    image_sizes: Vec<usize>,
    /// Encoder widths, cycled over the members (e.g. 16-32-64-128,24-48-96-192).
    #[arg(long, value_name = "W-W-..,...", value_delimiter = ',')]
    widths: Vec<String>,
    /// Skip connections to switch off, cycled over the members (`none`, `0`, `0+1`, ...).
    #[arg(long, value_name = "SKIPS,...", value_delimiter = ',')]
    disable_skips: Vec<String>,
    /// How member z-scores are combined.
    #[arg(long, value_enum, default_value_t = Fusion::Mean)]
    fusion: Fusion,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct EnsembleCreateArgs {
    /// Ensemble folder to write ensemble.json into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Member run directories.
    #[arg(value_name = "RUN", required = true)]
    runs: Vec<PathBuf>,
    /// How member z-scores are combined.
    #[arg(long, value_enum, default_value_t = Fusion::Mean)]
    fusion: Fusion,
    /// Weights of --fusion weighted, one per member.
    #[arg(long, value_delimiter = ',')]
    weights: Vec<f64>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Validate a data set: counts per split and defect, sizes, channels, split sizes, problems.
    Check(CheckArgs),
    /// Make the seeded train/val split of the normal training images and save it as JSON.
    Split(SplitArgs),
}

#[derive(Debug, Args)]
struct SynthArgs {
    /// Output folder (one sub-folder per category).
    #[arg(long, default_value = "reconad-synth")]
    out: PathBuf,
    /// Seed of every random choice; the same seed gives byte-identical files.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Side of the square images in pixels.
    #[arg(long, default_value_t = 256)]
    size: u32,
    /// Normal training images per category.
    #[arg(long, default_value_t = 40)]
    train: usize,
    /// Normal test images per category.
    #[arg(long, default_value_t = 10)]
    test_good: usize,
    /// Test images per defect type and category.
    #[arg(long, default_value_t = 4)]
    test_per_defect: usize,
    /// Categories to generate (repeat the option; default all).
    #[arg(long = "category", value_enum)]
    categories: Vec<SynthCategory>,
    /// Replace category folders made by an earlier `reconad synth`.
    #[arg(long)]
    force: bool,
}

/// Where a data set is: an MVTec AD root or category, or a folder data set.
#[derive(Debug, Args)]
pub struct DataSourceArgs {
    /// MVTec AD category folder, or a root holding category folders.
    #[arg(value_name = "PATH")]
    path: Option<PathBuf>,
    /// Same as PATH.
    #[arg(long = "data", value_name = "ROOT", conflicts_with = "path")]
    data: Option<PathBuf>,
    /// Category under PATH (default: PATH itself if it is a category, else every category).
    #[arg(long)]
    category: Option<String>,
    /// Folder data set: folder of normal images (instead of PATH).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["path", "data", "category"])]
    normal: Option<PathBuf>,
    /// Folder data set: folder of anomalous images; its name is the defect type (repeatable).
    #[arg(long, value_name = "DIR", requires = "normal")]
    abnormal: Vec<PathBuf>,
    /// Folder data set: folder of ground-truth masks (matched by file stem).
    #[arg(long, value_name = "DIR", requires = "normal")]
    masks: Option<PathBuf>,
    /// Folder data set: folder of normal test images (default: hold out a share of --normal).
    #[arg(long, value_name = "DIR", requires = "normal")]
    normal_test: Option<PathBuf>,
    /// Folder data set: share of --normal held out as normal test images without --normal-test.
    #[arg(long, default_value_t = DEFAULT_NORMAL_TEST_FRACTION, requires = "normal")]
    normal_test_fraction: f64,
}

impl DataSourceArgs {
    /// Discovers the data set(s) named by these arguments.
    pub fn open(&self, seed: u64) -> Result<Vec<Dataset>> {
        if let Some(normal) = &self.normal {
            let spec = FolderSpec {
                name: None,
                normal: normal.clone(),
                abnormal: self.abnormal.clone(),
                masks: self.masks.clone(),
                normal_test: self.normal_test.clone(),
                normal_test_fraction: self.normal_test_fraction,
                seed,
            };
            return Ok(vec![open_folder(&spec)?]);
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
        let abs = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
        let data_ref = match &self.normal {
            Some(normal) => DataRef::Folder(FolderSpec {
                name: Some(dataset.name.clone()),
                normal: abs(normal),
                abnormal: self.abnormal.iter().map(abs).collect(),
                masks: self.masks.as_ref().map(abs),
                normal_test: self.normal_test.as_ref().map(abs),
                normal_test_fraction: self.normal_test_fraction,
                seed,
            }),
            None => DataRef::Mvtec {
                category_dir: abs(&dataset.root),
            },
        };
        Ok((dataset, data_ref))
    }
}

#[derive(Debug, Args)]
struct TrainArgs {
    #[command(flatten)]
    source: DataSourceArgs,
    /// Run directory to create (or to continue with --resume).
    #[arg(long, value_name = "RUN")]
    out: Option<PathBuf>,
    /// JSON file of training settings (any subset of config.json's `train` fields).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Architecture preset: tiny, small or default.
    #[arg(long)]
    preset: Option<String>,
    /// Seed of every random choice.
    #[arg(long)]
    seed: Option<u64>,
    /// Maximum number of epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per batch.
    #[arg(long)]
    batch: Option<usize>,
    /// Training resolution: batches of N px, rescale range [N, 2N], validation at N px.
    #[arg(long, value_name = "N")]
    image_size: Option<usize>,
    /// Evaluate the CutPaste-val AUROC every N epochs.
    #[arg(long)]
    eval_every: Option<usize>,
    /// Stop after this many evaluations without improvement.
    #[arg(long)]
    patience: Option<usize>,
    /// Weight λ of the (1 − SSIM) loss term.
    #[arg(long, allow_negative_numbers = true)]
    ssim_weight: Option<f64>,
    /// Switch off the skip connection of a level (0 = shallowest; repeatable).
    #[arg(long = "disable-skip", value_name = "LEVEL")]
    disable_skip: Vec<usize>,
    /// Share of normal training images held out for validation.
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Compute backend.
    #[arg(long, value_enum)]
    backend: Option<Backend>,
    /// Continue an interrupted run (RUN, or the --out folder) from its last checkpoint.
    #[arg(long, value_name = "RUN", num_args = 0..=1)]
    resume: Option<Option<PathBuf>>,
    /// Replace an existing run directory.
    #[arg(long, conflicts_with = "resume")]
    force: bool,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

impl TrainArgs {
    /// The settings: defaults, then the --config file, then the command-line options.
    fn config(&self) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(path) => train::load_config_file(path)?,
            None => TrainConfig::default(),
        };
        if let Some(p) = &self.preset {
            c.preset = Preset::parse(p)?;
            c.model = None;
        }
        if let Some(size) = self.image_size {
            c = c.with_image_size(size);
        }
        c.seed = self.seed.unwrap_or(c.seed);
        c.epochs = self.epochs.unwrap_or(c.epochs);
        c.batch_size = self.batch.unwrap_or(c.batch_size);
        c.eval_every = self.eval_every.unwrap_or(c.eval_every);
        c.patience = self.patience.unwrap_or(c.patience);
        c.val_fraction = self.val_fraction.unwrap_or(c.val_fraction);
        c.backend = self.backend.unwrap_or(c.backend);
        if let Some(l) = self.ssim_weight {
            c.loss.ssim_weight = l;
        }
        c.disabled_skips.extend(&self.disable_skip);
        c.validate()?;
        Ok(c)
    }
}

#[derive(Debug, Args)]
struct CheckArgs {
    #[command(flatten)]
    source: DataSourceArgs,
    /// Validation share used to report the train/val split.
    #[arg(long, default_value_t = DEFAULT_VAL_FRACTION)]
    val_fraction: f64,
    /// Seed of the split.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Channel policy (auto: gray categories stay 1-channel).
    #[arg(long, value_enum, default_value_t = ChannelMode::Auto)]
    channels: ChannelMode,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct SplitArgs {
    #[command(flatten)]
    source: DataSourceArgs,
    /// Where to write the split JSON.
    #[arg(long)]
    out: PathBuf,
    /// Share of the normal training images held out for validation (0.1 default, 0.15 option).
    #[arg(long, default_value_t = DEFAULT_VAL_FRACTION)]
    val_fraction: f64,
    /// Seed of the split.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
}

#[derive(Debug, Args)]
struct InfoArgs {
    /// Backend to try.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// GPU index (cuda).
    #[arg(long, default_value_t = 0)]
    gpu: usize,
}

/// Parses the command line and runs the command.
pub fn run() -> Result<ExitCode> {
    init_logging();
    let cli = Cli::parse();
    match cli.command {
        Command::Synth(args) => run_synth(&args),
        Command::Data(DataCommand::Check(args)) => run_check(&args),
        Command::Data(DataCommand::Split(args)) => run_split(&args),
        Command::Train(args) => run_train(&args),
        Command::Calibrate(args) => run_calibrate(&args),
        Command::Eval(args) => run_eval(&args),
        Command::Predict(args) => run_predict(&args),
        Command::Ensemble(EnsembleCommand::Train(args)) => run_ensemble_train(&args),
        Command::Ensemble(EnsembleCommand::Create(args)) => run_ensemble_create(&args),
        Command::Demo(args) => run_demo(&args),
        Command::Info(args) => run_info(&args),
    }
}

fn run_train(args: &TrainArgs) -> Result<ExitCode> {
    let options = TrainOptions {
        progress: !args.quiet,
        max_epochs_this_call: None,
    };
    let run = match &args.resume {
        Some(resume) => resume.as_ref().or(args.out.as_ref()),
        None => args.out.as_ref(),
    };
    let Some(run) = run else {
        bail!(if args.resume.is_some() {
            "--resume needs the run directory: --resume RUN or --out RUN --resume"
        } else {
            "--out RUN is required: the run directory to create"
        });
    };
    let summary = if args.resume.is_some() {
        train::resume(&RunDir::new(run), DataRef::open, &options)?
    } else {
        let config = args.config()?;
        let (dataset, data_ref) = args.source.open_one(config.seed)?;
        train::train_new(
            &RunDir::new(run),
            &dataset,
            data_ref,
            config,
            args.force,
            &options,
        )?
    };
    let s = &summary.state;
    println!(
        "{} after {} epoch(s): best CutPaste-val AUROC {} at epoch {}; {} train / {} val images; {:.1} s, {:.2} images/s",
        if s.finished { "finished" } else { "paused" },
        s.epochs_done,
        s.best_auroc.map_or("-".into(), |a| format!("{a:.4}")),
        s.best_epoch.map_or("-".into(), |e| e.to_string()),
        summary.train_images,
        summary.val_images,
        summary.seconds,
        summary.images_per_second
    );
    println!("run directory: {}", run.display());
    Ok(ExitCode::SUCCESS)
}

/// The profile to score with: the saved one, or a new calibration when settings are overridden.
fn scoring_profile(
    model: &TrainedModel,
    args: &ScoringArgs,
    progress: bool,
) -> Result<ScoringProfile> {
    if !args.any() {
        return model.load_profile();
    }
    let config = overridden_scoring(model, args)?;
    model.calibrate(config, &calibration_bar(progress))
}

/// The run's saved scoring settings (or the defaults) with the options applied, validated.
fn overridden_scoring(model: &TrainedModel, args: &ScoringArgs) -> Result<ScoringConfig> {
    let base = model
        .load_profile()
        .map(|p| p.config)
        .unwrap_or_else(|_| model.default_scoring());
    let config = args.apply(base);
    config.validate(&model.config.model)?;
    Ok(config)
}

fn run_calibrate(args: &CalibrateArgs) -> Result<ExitCode> {
    let model = TrainedModel::open(&args.model, args.backend)?;
    let candidates = if args.scoring.any() {
        vec![overridden_scoring(&model, &args.scoring)?]
    } else {
        model.default_scorings()
    };
    let profile = model.calibrate_and_save(candidates, &calibration_bar(!args.quiet))?;
    let tried: Vec<String> = profile
        .working_size_auroc
        .iter()
        .map(|c| format!("{} px: {:.4}", c.working_size, c.val_auroc))
        .collect();
    println!(
        "calibrated on {} validation images + {} CutPaste/scar copies",
        profile.val_normal, profile.val_anomalous
    );
    println!(
        "  working size {} (CutPaste-val AUROC {})",
        profile.config.working_size,
        tried.join(", ")
    );
    println!(
        "  top-k {} % (CutPaste-val AUROC {})",
        profile.config.top_k,
        profile
            .top_k_auroc
            .iter()
            .map(|c| format!("{} %: {:.4}", c.top_k, c.val_auroc))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  threshold {:.4}", profile.threshold);
    println!("saved {}", model.profile_path().display());
    Ok(ExitCode::SUCCESS)
}

/// A model or an ensemble, by what `path` holds, and the run config of the (first) model.
fn open_scorer(
    path: &Path,
    backend: Backend,
    scoring: &ScoringArgs,
    progress: bool,
) -> Result<(Box<dyn Scorer>, RunConfig)> {
    if is_ensemble(path) {
        if scoring.any() {
            bail!(
                "{}: scoring options apply to single models; recalibrate the members with `reconad calibrate` and the ensemble with `reconad ensemble create`",
                path.display()
            );
        }
        let ensemble = Ensemble::open(path, backend)?;
        if ensemble.def.calibration.is_none() {
            bail!(
                "{}: the ensemble has no calibration; write it with `reconad ensemble create`",
                ensemble.path.display()
            );
        }
        let config = ensemble.members[0].model.config.clone();
        return Ok((Box::new(ensemble), config));
    }
    let model = TrainedModel::open(path, backend)?;
    let profile = scoring_profile(&model, scoring, progress)?;
    let config = model.config.clone();
    Ok((Box::new(SingleModel { model, profile }), config))
}

fn run_eval(args: &EvalArgs) -> Result<ExitCode> {
    let (model, run_config) = open_scorer(&args.model, args.backend, &args.scoring, !args.quiet)?;
    let model = model.as_ref();
    let given =
        args.source.path.is_some() || args.source.data.is_some() || args.source.normal.is_some();
    let dataset = if given {
        args.source.open_one(run_config.train.seed)?.0
    } else {
        run_config.data.open()?
    };
    let options = EvalOptions {
        threshold: args.threshold,
        heatmaps: args.heatmaps.then(|| args.out.join("heatmaps")),
        progress: !args.quiet,
    };
    let (metrics, rows) = eval::evaluate(model, &dataset, &options)?;
    eval::write_outputs(&args.out, &metrics, &rows)?;
    print!("{}", eval::summary_table(&metrics));
    println!("wrote {}", args.out.join("metrics.json").display());
    Ok(ExitCode::SUCCESS)
}

fn run_predict(args: &PredictArgs) -> Result<ExitCode> {
    let (model, _) = open_scorer(&args.model, args.backend, &ScoringArgs::default(), false)?;
    let model = model.as_ref();
    let threshold = args.threshold.unwrap_or(model.threshold());
    let mut files = Vec::new();
    for path in &args.paths {
        if path.is_dir() {
            let (found, _) = list_images(path)?;
            if found.is_empty() {
                bail!("{}: no images in this folder", path.display());
            }
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("{}: no such file or folder", path.display());
        }
    }
    let names = heatmap_names(&files);
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    if !args.json {
        let mut header = vec!["path", "score", "label"];
        if args.heatmaps.is_some() {
            header.push("heatmap");
        }
        out.write_record(header)?;
    }
    let chunk = model.chunk();
    for (part, part_names) in files.chunks(chunk).zip(names.chunks(chunk)) {
        let images = part
            .par_iter()
            .map(|p| model.load_image(p))
            .collect::<Result<Vec<_>>>()?;
        for ((path, name), scored) in part.iter().zip(part_names).zip(model.score(images)?) {
            let label = u8::from(scored.score >= threshold);
            let heatmap = match &args.heatmaps {
                Some(dir) => {
                    let png = dir.join(name);
                    let scale = model.heatmap_scale(threshold);
                    write_overlay(&png, &scored.original, &scored.map, scale)?;
                    Some(png.display().to_string())
                }
                None => None,
            };
            if args.json {
                let mut line = serde_json::json!({
                    "path": path.display().to_string(),
                    "score": scored.score,
                    "label": label,
                });
                if let Some(h) = heatmap {
                    line["heatmap"] = h.into();
                }
                println!("{line}");
            } else {
                let mut record = vec![
                    path.display().to_string(),
                    format!("{:.6}", scored.score),
                    label.to_string(),
                ];
                record.extend(heatmap);
                out.write_record(record)?;
                out.flush()?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Heat-map file names for `files`: `<stem>.png`, `<parent>_<stem>.png` where stems repeat, and
/// a numeric suffix if that still repeats.
fn heatmap_names(files: &[PathBuf]) -> Vec<String> {
    let mut stems = std::collections::HashMap::<String, usize>::new();
    for f in files {
        *stems.entry(stem(f)).or_default() += 1;
    }
    let mut used = std::collections::HashSet::new();
    files
        .iter()
        .map(|f| {
            let base = if stems[&stem(f)] > 1 {
                let parent = f
                    .parent()
                    .and_then(|p| p.file_name())
                    .map_or("".into(), |n| n.to_string_lossy().into_owned());
                format!("{parent}_{}", stem(f))
            } else {
                stem(f)
            };
            let mut name = format!("{base}.png");
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}-{n}.png");
                n += 1;
            }
            name
        })
        .collect()
}

fn run_ensemble_train(args: &EnsembleTrainArgs) -> Result<ExitCode> {
    if args.members == 0 {
        bail!("--members 0: an ensemble needs at least one member");
    }
    let mut base = match &args.config {
        Some(path) => train::load_config_file(path)?,
        None => TrainConfig::default(),
    };
    if let Some(p) = &args.preset {
        base.preset = Preset::parse(p)?;
        base.model = None;
    }
    base.epochs = args.epochs.unwrap_or(base.epochs);
    base.batch_size = args.batch.unwrap_or(base.batch_size);
    base.eval_every = args.eval_every.unwrap_or(base.eval_every);
    base.patience = args.patience.unwrap_or(base.patience);
    base.split_seed = Some(args.seed);
    let (dataset, data_ref) = args.source.open_one(args.seed)?;
    let options = TrainOptions {
        progress: !args.quiet,
        max_epochs_this_call: None,
    };
    let mut members = Vec::new();
    for i in 0..args.members {
        let mut c = base.clone();
        c.seed = args.seed + i as u64;
        if !args.image_sizes.is_empty() {
            c = c.with_image_size(args.image_sizes[i % args.image_sizes.len()]);
        }
        if !args.widths.is_empty() {
            let spec = &args.widths[i % args.widths.len()];
            let widths: Vec<usize> = spec
                .split('-')
                .map(|w| w.trim().parse())
                .collect::<Result<_, _>>()
                .with_context(|| format!("--widths {spec}: expected sizes like 16-32-64-128"))?;
            c.model = Some(c.preset.config(3).with_widths(widths));
        }
        if !args.disable_skips.is_empty() {
            let spec = &args.disable_skips[i % args.disable_skips.len()];
            c.disabled_skips = if spec == "none" {
                Vec::new()
            } else {
                spec.split('+')
                    .map(|l| l.trim().parse())
                    .collect::<Result<_, _>>()
                    .with_context(|| {
                        format!("--disable-skips {spec}: expected none, 0, 0+1, ...")
                    })?
            };
        }
        c.validate()?;
        let name = format!("member-{}", i + 1);
        let dir = RunDir::new(args.out.join(&name));
        let state = if dir.config().is_file() {
            dir.load_state()?
        } else {
            None
        };
        match state {
            Some(s) if s.finished => {
                println!(
                    "{name}: finished earlier (best CutPaste-val AUROC {})",
                    s.best_auroc.map_or("-".into(), |a| format!("{a:.4}"))
                );
            }
            Some(_) => {
                println!("{name}: resuming");
                train::resume(&dir, DataRef::open, &options)?;
            }
            None => {
                println!("{name}: training (seed {})", c.seed);
                train::train_new(&dir, &dataset, data_ref.clone(), c, true, &options)?;
            }
        }
        members.push(PathBuf::from(name));
    }
    write_and_calibrate_ensemble(&args.out, members, args.fusion, Vec::new(), !args.quiet)
}

fn run_ensemble_create(args: &EnsembleCreateArgs) -> Result<ExitCode> {
    let members = args
        .runs
        .iter()
        .map(|r| std::path::absolute(r).unwrap_or_else(|_| r.clone()))
        .collect();
    write_and_calibrate_ensemble(
        &args.out,
        members,
        args.fusion,
        args.weights.clone(),
        !args.quiet,
    )
}

/// Writes `DIR/ensemble.json`, opens the ensemble (checking the members), calibrates it on the
/// members' common validation set and saves the calibration.
fn write_and_calibrate_ensemble(
    dir: &Path,
    members: Vec<PathBuf>,
    fusion: Fusion,
    weights: Vec<f64>,
    progress: bool,
) -> Result<ExitCode> {
    let def = EnsembleDef {
        format: ENSEMBLE_FORMAT_VERSION,
        members,
        fusion,
        weights,
        calibration: None,
    };
    let path = dir.join(ENSEMBLE_FILE);
    // Members are opened and checked, and the calibration made, before anything is written.
    let mut ensemble = Ensemble::from_def(path.clone(), def, Backend::Cpu)?;
    let c = ensemble
        .calibrate_and_save(&calibration_bar(progress))?
        .clone();
    println!(
        "ensemble of {} members: CutPaste-val AUROC {:.4} (members {}), threshold {:.4}",
        ensemble.members.len(),
        c.val_auroc,
        c.member_val_auroc
            .iter()
            .map(|a| format!("{a:.4}"))
            .collect::<Vec<_>>()
            .join(", "),
        c.threshold
    );
    println!("wrote {}", path.display());
    Ok(ExitCode::SUCCESS)
}

fn run_demo(args: &DemoArgs) -> Result<ExitCode> {
    let started = std::time::Instant::now();
    let data = args.out.join("data");
    let config = SynthConfig {
        seed: args.seed,
        train: args.train_images,
        categories: if args.categories.is_empty() {
            SynthCategory::ALL.to_vec()
        } else {
            args.categories.clone()
        },
        ..SynthConfig::default()
    };
    let written = synth::generate(&data, &config, true)
        .with_context(|| format!("generating the synthetic data set in {}", data.display()))?;
    println!(
        "generated {written} synthetic images in {} ({:.1} s)",
        data.display(),
        started.elapsed().as_secs_f64()
    );
    let options = CheckOptions {
        val_fraction: DEFAULT_VAL_FRACTION,
        seed: args.seed,
        channels: ChannelMode::Auto,
    };
    let mut results = Vec::new();
    for category in &config.categories {
        let dataset = open_category(&data.join(category.name()))?;
        let report = check_dataset(&dataset, &options);
        if !report.is_ok() {
            print!("{}", report.to_text());
            bail!(
                "the generated data set {} failed its check",
                dataset.root.display()
            );
        }
        let run = args.out.join("runs").join(category.name());
        println!(
            "\n== {}: training a {} U-Net at {} px on {} normal images -> {}",
            category.name(),
            args.preset,
            args.image_size,
            dataset.train.len(),
            run.display()
        );
        let train_config = TrainConfig {
            seed: args.seed,
            preset: Preset::parse(&args.preset)?,
            batch_size: 8,
            epochs: args.epochs,
            eval_every: 2,
            patience: args.patience,
            val_fraction: args.val_fraction,
            optimizer: train::OptimizerConfig {
                lr: args.lr,
                ..Default::default()
            },
            ..TrainConfig::default()
        }
        .with_image_size(args.image_size);
        let mut train_config = train_config;
        if args.mask_patch > 0 {
            train_config.augment.corruption = Corruption::Mask {
                patch: args.mask_patch,
                ratio: 0.3,
            };
        }
        let data_ref = DataRef::Mvtec {
            category_dir: std::path::absolute(&dataset.root).unwrap_or(dataset.root.clone()),
        };
        let summary = train::train_new(
            &RunDir::new(&run),
            &dataset,
            data_ref,
            train_config,
            true,
            &TrainOptions {
                progress: true,
                max_epochs_this_call: None,
            },
        )?;
        let model = TrainedModel::open(&run, Backend::Cpu)?;
        let profile = model.load_profile()?;
        let model = SingleModel { model, profile };
        let out = args.out.join("eval").join(category.name());
        let options = EvalOptions {
            threshold: None,
            heatmaps: Some(out.join("heatmaps")),
            progress: true,
        };
        let (metrics, rows) = eval::evaluate(&model, &dataset, &options)?;
        eval::write_outputs(&out, &metrics, &rows)?;
        print!("{}", eval::summary_table(&metrics));
        results.push((category.name(), summary, metrics, out));
    }
    println!(
        "\n== summary: CP-val = CutPaste-validation AUROC of the calibrated scoring (the only"
    );
    println!("   thing settings were chosen on); image / pixel AUROC, AUPRO, F1 at the threshold: test set");
    println!(
        "{:<8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "category", "CP-val", "image", "pixel", "AUPRO", "F1@thr", "train s"
    );
    let f = |v: Option<f64>| v.map_or("-".into(), |a| format!("{a:.4}"));
    let mut image = Vec::new();
    for (name, summary, m, _) in &results {
        println!(
            "{:<8} {:>8} {:>8} {:>8} {:>8} {:>8.4} {:>7.1}",
            name,
            f(m.scoring.get("val_auroc").and_then(|v| v.as_f64())),
            f(m.image_auroc),
            f(m.pixel_auroc),
            f(m.aupro),
            m.at_threshold.f1,
            summary.seconds
        );
        image.extend(m.image_auroc);
    }
    if !image.is_empty() {
        println!(
            "mean image AUROC {:.4} over {} categories",
            image.iter().sum::<f64>() / image.len() as f64,
            image.len()
        );
    }
    println!("\ndata:      {}", data.display());
    println!("models:    {}", args.out.join("runs").display());
    for (name, _, _, out) in &results {
        println!(
            "{name:<10} {} (metrics.json, scores.csv, heatmaps/)",
            out.display()
        );
    }
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RECONAD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

fn run_synth(args: &SynthArgs) -> Result<ExitCode> {
    let config = SynthConfig {
        seed: args.seed,
        size: args.size,
        train: args.train,
        test_good: args.test_good,
        test_per_defect: args.test_per_defect,
        categories: if args.categories.is_empty() {
            SynthCategory::ALL.to_vec()
        } else {
            dedup(&args.categories)
        },
    };
    let started = std::time::Instant::now();
    let written = synth::generate(&args.out, &config, args.force)?;
    let names: Vec<&str> = config.categories.iter().map(|c| c.name()).collect();
    println!(
        "wrote {written} images ({}) to {} in {:.1} s (seed {})",
        names.join(", "),
        args.out.display(),
        started.elapsed().as_secs_f64(),
        config.seed
    );
    Ok(ExitCode::SUCCESS)
}

fn dedup<T: PartialEq + Copy>(items: &[T]) -> Vec<T> {
    let mut out = Vec::new();
    for &item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn run_check(args: &CheckArgs) -> Result<ExitCode> {
    let datasets = args.source.open(args.seed)?;
    let options = CheckOptions {
        val_fraction: args.val_fraction,
        seed: args.seed,
        channels: args.channels,
    };
    let reports: Vec<_> = datasets
        .iter()
        .map(|d| check_dataset(d, &options))
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for report in &reports {
            print!("{}", report.to_text());
        }
    }
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.is_ok())
        .map(|r| format!("{} ({} error(s))", r.name, r.errors()))
        .collect();
    if !failed.is_empty() {
        bail!(
            "data check failed for {}; see the problems listed above",
            failed.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn run_split(args: &SplitArgs) -> Result<ExitCode> {
    let datasets = args.source.open(args.seed)?;
    let [dataset] = datasets.as_slice() else {
        bail!(
            "{} data sets found; name one with --category",
            datasets.len()
        );
    };
    let split = Split::new(dataset, args.val_fraction, args.seed)?;
    split.save(&args.out)?;
    check_roundtrip(&split, dataset, &args.out)?;
    println!(
        "split of {}: {} train, {} val (seed {}, val {:.0}%) written to {}",
        dataset.name,
        split.train.len(),
        split.val.len(),
        split.seed,
        split.val_fraction * 100.0,
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Reloads a just-written split and maps it onto the data set, so a broken file fails now.
fn check_roundtrip(split: &Split, dataset: &Dataset, path: &Path) -> Result<()> {
    let loaded = Split::load(path)?;
    if &loaded != split {
        bail!(
            "{}: split read back differs from the one written",
            path.display()
        );
    }
    loaded.resolve(dataset, path)?;
    Ok(())
}

fn run_info(args: &InfoArgs) -> Result<ExitCode> {
    println!("reconad {}", env!("CARGO_PKG_VERSION"));
    println!("burn {BURN_VERSION}");
    let names: Vec<&str> = Backend::available().iter().map(|b| b.name()).collect();
    println!("backends compiled in: {}", names.join(", "));
    let device = device::device(args.backend, args.gpu)?;
    let value = device::smoke_test(&device);
    if (value - 6.0).abs() > 1e-5 {
        bail!("backend {} computed 1+2+3 = {value}", args.backend.name());
    }
    println!("backend {} ok: {device:?}", args.backend.name());
    println!("threads: {} (rayon)", rayon::current_num_threads());
    Ok(ExitCode::SUCCESS)
}

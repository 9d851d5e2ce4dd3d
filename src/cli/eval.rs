//! `reconad eval`: evaluate a model or an ensemble on a data set's test split.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use reconad::calibrate::{base_scoring, calibrate_model};
use reconad::detector::ensemble::is_ensemble;
use reconad::detector::single::{SingleModel, TrainedModel};
use reconad::detector::{self, Scorer};
use reconad::device::Backend;
use reconad::eval::{self, EvalOptions};
use reconad::util::fs::check_output_dir;
use reconad::Progress;

use super::args::{DataSourceArgs, ScoringArgs};
use super::progress::Bars;

/// Evaluate a trained model on a data set's test split: metrics.json, scores.csv, heat maps.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Data set to evaluate on (default: the run's own data set).
    #[command(flatten)]
    source: DataSourceArgs,
    /// Run directory of the trained model (or an ensemble folder).
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
    /// Write into an --out folder that holds files `eval` did not write.
    #[arg(long)]
    force: bool,
    /// Evaluate on the readable test images when some cannot be read: each unreadable one is a
    /// warning, listed under `skipped` in metrics.json; the exit status is 2 when any was.
    #[arg(long)]
    skip_unreadable: bool,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// A model or an ensemble, by what `path` holds; scoring options recalibrate a single model in
/// memory (its scoring.json is untouched).
pub fn open_scorer(
    path: &Path,
    backend: Backend,
    scoring: &ScoringArgs,
    progress: &dyn Progress,
) -> Result<Box<dyn Scorer>> {
    if !scoring.any() {
        return Ok(detector::open(path, backend)?);
    }
    if is_ensemble(path) {
        bail!(
            "{}: scoring options apply to single models; recalibrate the members with `reconad calibrate` and the ensemble with `reconad ensemble create`",
            path.display()
        );
    }
    let model = TrainedModel::open(path, backend)?;
    let config = scoring.apply(base_scoring(&model));
    config.validate(&model.config.model)?;
    let profile = calibrate_model(&model, config, progress)?;
    Ok(Box::new(SingleModel { model, profile }))
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let bars = Bars::new(!args.quiet);
    let model = open_scorer(&args.model, args.backend, &args.scoring, &bars)?;
    let model = model.as_ref();
    let dataset = if args.source.given() {
        args.source.open_one(model.run_config().train.seed)?.0
    } else {
        model.run_config().data.open()?
    };
    check_output_dir(
        &args.out,
        &[dataset.root.as_path()],
        &[args.model.as_path()],
        &["metrics.json", "scores.csv", "heatmaps"],
        args.force,
    )?;
    let heatmaps = args.out.join("heatmaps");
    let options = EvalOptions {
        threshold: args.threshold,
        heatmaps: args.heatmaps.then_some(heatmaps.as_path()),
        progress: &bars,
        skip_unreadable: args.skip_unreadable,
    };
    let (metrics, rows) = eval::evaluate(model, &dataset, &options)?;
    eval::write_outputs(&args.out, &metrics, &rows)?;
    print!("{}", eval::summary_table(&metrics));
    println!("wrote {}", args.out.join("metrics.json").display());
    if !metrics.skipped.is_empty() {
        eprintln!(
            "warning: {} test image(s) skipped as unreadable (listed in metrics.json); the metrics are over the other {}",
            metrics.skipped.len(),
            rows.len()
        );
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

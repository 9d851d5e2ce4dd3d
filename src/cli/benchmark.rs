//! `reconad benchmark`: train, calibrate and evaluate a model per category of a data set, with
//! a summary table and the HTML report.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use reconad::pipeline::{run_benchmark, BenchmarkConfig};
use reconad::score::ScoringConfig;
use reconad::Progress;

use super::args::{DataSourceArgs, ScoringArgs};
use super::progress::Bars;
use super::train_args::TrainModelArgs;

/// Train, calibrate and evaluate a model per category; summary.csv, summary.md, report.html.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The data: an MVTec AD root (every category found under it, or --categories), one
    /// category folder, or a folder data set (--normal ...).
    #[command(flatten)]
    source: DataSourceArgs,
    /// Categories under the root, comma-separated (default: all found); a category may be a
    /// relative path below the root (e.g. other/metal_plate).
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    categories: Vec<String>,
    /// Output folder: runs/, eval/, summary.csv, summary.md, report.html. Categories already
    /// done there are skipped, interrupted runs resumed.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    model: TrainModelArgs,
    #[command(flatten)]
    scoring: ScoringArgs,
    /// Retrain and re-evaluate every category, replacing what --out holds.
    #[arg(long)]
    force: bool,
    /// No progress bars (the per-stage lines stay).
    #[arg(long)]
    quiet: bool,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let bars = Bars::new(!args.quiet);
    let train = args.model.config()?;
    let datasets = args.source.open_all(train.seed, &args.categories)?;
    let scoring = |c: ScoringConfig| args.scoring.apply(c);
    let description = match (
        &args.source.normal,
        args.source.path.as_ref().or(args.source.data.as_ref()),
    ) {
        (Some(normal), _) => format!("folder data set {}", normal.display()),
        (None, Some(root)) => root.display().to_string(),
        (None, None) => "-".into(),
    };
    let config = BenchmarkConfig {
        out: args.out.clone(),
        train,
        scoring: args.scoring.any().then_some(&scoring as _),
        force: args.force,
        data_description: description,
    };
    bars.note(&format!(
        "benchmark of {} categor{} -> {}",
        datasets.len(),
        if datasets.len() == 1 { "y" } else { "ies" },
        args.out.display()
    ));
    let result = run_benchmark(&config, &datasets, &bars)?;
    println!();
    print!(
        "{}",
        std::fs::read_to_string(&result.summary).unwrap_or_default()
    );
    println!("\nsummary: {}", result.summary.display());
    println!("report:  {}", result.report.display());
    println!("total {:.1} s", result.seconds);
    Ok(ExitCode::SUCCESS)
}

//! `reconad data check` and `reconad data split`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::Subcommand;
use reconad::data::check::{check_dataset, CheckOptions};
use reconad::data::image_io::ChannelMode;
use reconad::data::split::{Split, DEFAULT_VAL_FRACTION};
use reconad::DEFAULT_SEED;

use super::args::DataSourceArgs;

/// Inspect data sets.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a data set: counts per split and defect, sizes, channels, split sizes, problems.
    Check(CheckArgs),
    /// Make the seeded train/val split of the normal training images and save it as JSON.
    Split(SplitArgs),
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
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

#[derive(Debug, clap::Args)]
pub struct SplitArgs {
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
    /// Replace an existing file at --out (a run's split.json decides which images calibration
    /// may use: replacing it is never a side effect).
    #[arg(long)]
    force: bool,
}

pub fn run(command: &Command) -> Result<ExitCode> {
    match command {
        Command::Check(args) => check(args),
        Command::Split(args) => split(args),
    }
}

fn check(args: &CheckArgs) -> Result<ExitCode> {
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

fn split(args: &SplitArgs) -> Result<ExitCode> {
    let datasets = args.source.open(args.seed)?;
    let [dataset] = datasets.as_slice() else {
        bail!(
            "{} data sets found; name one with --category",
            datasets.len()
        );
    };
    if args.out.exists() && !args.force {
        bail!(
            "{}: exists — a split file decides which images a run trains and calibrates on; pass --force to replace it",
            args.out.display()
        );
    }
    let split = Split::new(dataset, args.val_fraction, args.seed)?;
    split.save_checked(dataset, &args.out)?;
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

//! `reconad train`: train (or resume) a model and calibrate it when it finishes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use reconad::pipeline::{resume_and_calibrate, train_and_calibrate};
use reconad::train::head::{add_head, HeadTrainConfig};
use reconad::train::{KeepWeights, RunDir, TrainOptions};

use super::args::DataSourceArgs;
use super::progress::Bars;
use super::train_args::TrainModelArgs;

/// Train a U-Net autoencoder on the normal images of a data set.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: DataSourceArgs,
    /// Run directory to create (or to continue with --resume).
    #[arg(long, value_name = "RUN")]
    out: Option<PathBuf>,
    #[command(flatten)]
    model: TrainModelArgs,
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

pub fn run(args: &Args) -> Result<ExitCode> {
    let bars = Bars::new(!args.quiet);
    let options = TrainOptions {
        progress: &bars,
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
    let trained = if args.resume.is_some() {
        // --head with --resume adds a head to the run; every other setting is the run's own.
        let given: Vec<&str> = args
            .model
            .given_settings()
            .into_iter()
            .filter(|&s| s != "--head")
            .collect();
        if !given.is_empty() {
            bail!(
                "--resume continues {} with the settings saved in its config.json; {} would be ignored — leave {} out, or start a new run",
                run.display(),
                given.join(", "),
                if given.len() == 1 { "it" } else { "them" }
            );
        }
        if args.model.head && add_head(&RunDir::new(run), HeadTrainConfig::default())? {
            eprintln!(
                "{}: a discriminative head was added to the run's settings; training it on the run's autoencoder",
                run.display()
            );
        }
        resume_and_calibrate(&RunDir::new(run), &options)?
    } else {
        let config = args.model.config()?;
        let (dataset, data_ref) = args.source.open_one(config.seed)?;
        train_and_calibrate(
            &RunDir::new(run),
            &dataset,
            data_ref,
            config,
            args.force,
            &options,
        )?
    };
    let summary = &trained.summary;
    let s = &summary.state;
    let kept = match RunDir::new(run).load_config()?.train.keep {
        KeepWeights::Last => "the last epoch's weights kept",
        KeepWeights::Best => "the best epoch's weights kept",
    };
    println!(
        "{} after {} epoch(s), {kept}: best CutPaste-val AUROC {} at epoch {}; {} train / {} val images; {:.1} s, {:.2} images/s",
        if summary.finished() { "finished" } else { "paused" },
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

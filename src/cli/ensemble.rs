//! `reconad ensemble train` and `reconad ensemble create`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use reconad::detector::ensemble::{Ensemble, Fusion};
use reconad::pipeline::{create_ensemble, train_ensemble, MemberVariations};
use reconad::train::TrainOptions;
use reconad::DEFAULT_SEED;

use super::args::{parse_skips, parse_widths, DataSourceArgs, TrainSettingsArgs};
use super::progress::Bars;

/// Ensembles of models: train members, or define one from trained runs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train N members from one base configuration (seeds, and optional variations) into DIR,
    /// sharing one train/val split; resumes unfinished members; writes DIR/ensemble.json.
    Train(Box<TrainArgs>),
    /// Define an ensemble from trained, calibrated runs (sharing one train/val split).
    Create(CreateArgs),
}

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    source: DataSourceArgs,
    /// Ensemble folder (members in DIR/member-N).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Number of members.
    #[arg(long, default_value_t = 3)]
    members: usize,
    #[command(flatten)]
    settings: TrainSettingsArgs,
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

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
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

pub fn run(command: &Command) -> Result<ExitCode> {
    let ensemble = match command {
        Command::Train(args) => {
            let variations = MemberVariations {
                image_sizes: args.image_sizes.clone(),
                widths: args
                    .widths
                    .iter()
                    .map(|w| parse_widths(w))
                    .collect::<Result<_>>()?,
                disabled_skips: args
                    .disable_skips
                    .iter()
                    .map(|s| parse_skips(s))
                    .collect::<Result<_>>()?,
            };
            let base = args.settings.apply()?;
            let (dataset, data_ref) = args.source.open_one(args.seed)?;
            let bars = Bars::new(!args.quiet);
            let options = TrainOptions {
                progress: &bars,
                max_epochs_this_call: None,
            };
            let (_, ensemble) = train_ensemble(
                &args.out,
                &dataset,
                &data_ref,
                &base,
                args.members,
                args.seed,
                &variations,
                args.fusion,
                &options,
            )?;
            ensemble
        }
        Command::Create(args) => {
            let members = args
                .runs
                .iter()
                .map(|r| std::path::absolute(r).unwrap_or_else(|_| r.clone()))
                .collect();
            create_ensemble(
                &args.out,
                members,
                args.fusion,
                args.weights.clone(),
                &Bars::new(!args.quiet),
            )?
        }
    };
    report(&ensemble);
    Ok(ExitCode::SUCCESS)
}

fn report(ensemble: &Ensemble) {
    if let Some(c) = &ensemble.def.calibration {
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
    }
    println!("wrote {}", ensemble.path.display());
}

//! The command line (binary only): clap argument structs, one file per subcommand, each parsing
//! its options and calling the library (mostly `reconad::pipeline`); no domain logic here.
//! Errors become one line, `error: …`, and exit code 1.

mod args;
mod bench;
mod benchmark;
mod calibrate;
mod data;
mod demo;
mod ensemble;
mod eval;
mod info;
mod predict;
mod progress;
mod report;
mod synth;
mod train;
mod train_args;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Unsupervised visual anomaly detection with a U-Net autoencoder.
#[derive(Debug, Parser)]
#[command(name = "reconad", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a synthetic MVTec-AD-layout data set (images + exact masks) from a seed.
    Synth(synth::Args),
    /// Inspect data sets.
    #[command(subcommand)]
    Data(data::Command),
    /// Train a U-Net autoencoder on the normal images of a data set.
    Train(Box<train::Args>),
    /// (Re)calibrate a trained model's scoring on its validation split: z-normalisation
    /// statistics, top-k and threshold, saved as RUN/scoring.json.
    Calibrate(calibrate::Args),
    /// Evaluate a trained model on a data set's test split: metrics.json, scores.csv, heat maps.
    Eval(Box<eval::Args>),
    /// Score images (files or folders): one line per image with path, score and label.
    Predict(predict::Args),
    /// Ensembles of models: train members, or define one from trained runs.
    #[command(subcommand)]
    Ensemble(ensemble::Command),
    /// The main job on the built-in synthetic data set: generate it, train a small model per
    /// category, evaluate it with the multi-scale pipeline, write metrics and heat maps.
    Demo(demo::Args),
    /// Print versions, the compiled backends, and check that a backend runs.
    Info(info::Args),
    /// Measure training and scoring throughput and scoring memory (one `BENCH` line each).
    Bench(bench::Args),
    /// Train, calibrate and evaluate a model per category of a data set: summary.csv,
    /// summary.md and report.html (resumable: finished categories are skipped).
    Benchmark(Box<benchmark::Args>),
    /// Write one self-contained HTML report of evaluation folders.
    Report(report::Args),
}

/// Parses the command line, runs the command and turns its outcome into an exit code.
pub fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Synth(args) => synth::run(args),
        Command::Data(command) => data::run(command),
        Command::Train(args) => train::run(args),
        Command::Calibrate(args) => calibrate::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Ensemble(command) => ensemble::run(command),
        Command::Demo(args) => demo::run(args),
        Command::Info(args) => info::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Benchmark(args) => benchmark::run(args),
        Command::Report(args) => report::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, `<what> — <why>`: what was being done (the outermost
/// context), then the causes, each said once (a cause whose text the line already holds is not
/// repeated).
fn one_line(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for (i, cause) in err.chain().enumerate() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(if i == 1 { " — " } else { ": " });
        }
        out.push_str(&text);
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_and_its_causes_fit_one_line_without_repeats() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let err = anyhow::Error::from(reconad::Error::io("/x/y.png", io)).context("reading data");
        assert_eq!(one_line(&err), "reading data — /x/y.png: No such file");
    }
}

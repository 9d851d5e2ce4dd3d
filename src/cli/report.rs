//! `reconad report`: one self-contained HTML page from evaluation folders.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use reconad::pipeline::write_report;
use reconad::report::html::ReportOptions;

/// Write an HTML report (tables, ROC curves, score histograms, heat-map galleries) of
/// evaluation folders.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Evaluation folders (written by `reconad eval --out`, best with --heatmaps).
    #[arg(long = "eval", value_name = "DIR", num_args = 1.., required = true)]
    evals: Vec<PathBuf>,
    /// The HTML file to write.
    #[arg(long, value_name = "FILE.html")]
    out: PathBuf,
    /// Page title.
    #[arg(long, default_value = "reconad report")]
    title: String,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let options = ReportOptions {
        title: args.title.clone(),
        ..ReportOptions::default()
    };
    let stats = write_report(&args.evals, &args.out, &options)?;
    println!(
        "wrote {}: {} categor{}, {} plots, {} gallery pictures{}",
        args.out.display(),
        stats.categories,
        if stats.categories == 1 { "y" } else { "ies" },
        stats.plots,
        stats.gallery_images,
        if stats.missing_pictures > 0 {
            format!(
                " ({} tiles without pictures: image or mask unreadable)",
                stats.missing_pictures
            )
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

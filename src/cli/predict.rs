//! `reconad predict`: score image files or folders, one line per image.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use reconad::data::collect_image_files;
use reconad::detector;
use reconad::device::Backend;
use reconad::eval;

/// Score images (files or folders): one line per image with path, score and label.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run directory of the trained model (or an ensemble folder).
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
    /// Replace heat maps that already exist in the --heatmaps folder (input images are never
    /// replaced).
    #[arg(long, requires = "heatmaps")]
    force: bool,
    /// Decision threshold on the image score (default: the calibrated one).
    #[arg(long, allow_negative_numbers = true)]
    threshold: Option<f64>,
    /// Score the readable files when some cannot be read: each unreadable one is a warning,
    /// then a summary; the exit status is 2 when any file was skipped.
    #[arg(long)]
    skip_unreadable: bool,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    backend: Backend,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let model = detector::open(&args.model, args.backend)?;
    let threshold = eval::usable_threshold(args.threshold, model.as_ref())?;
    let files = collect_image_files(&args.paths)?;
    let mut out = csv::Writer::from_writer(std::io::stdout().lock());
    if !args.json {
        let mut header = vec!["path", "score", "label"];
        if args.heatmaps.is_some() {
            header.push("heatmap");
        }
        out.write_record(header)?;
    }
    let skipped = eval::predict(
        model.as_ref(),
        &files,
        threshold,
        args.heatmaps.as_deref(),
        args.force,
        args.skip_unreadable,
        |p| {
            let heatmap = p.heatmap.as_ref().map(|h| h.display().to_string());
            if args.json {
                let mut line = serde_json::json!({
                    "path": p.path.display().to_string(),
                    "score": p.score,
                    "label": p.label,
                });
                if let Some(h) = heatmap {
                    line["heatmap"] = h.into();
                }
                println!("{line}");
            } else {
                let mut record = vec![
                    p.path.display().to_string(),
                    format!("{:.6}", p.score),
                    p.label.to_string(),
                ];
                record.extend(heatmap);
                out.write_record(record)
                    .and_then(|_| out.flush().map_err(Into::into))
                    .map_err(|e| reconad::Error::Unusable(format!("writing to stdout: {e}")))?;
            }
            Ok(())
        },
    )?;
    if skipped.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "warning: {} of {} file(s) skipped as unreadable:",
        skipped.len(),
        files.len()
    );
    for s in &skipped {
        eprintln!("  {}", s.problem);
    }
    Ok(ExitCode::from(2))
}

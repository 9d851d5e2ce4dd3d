//! `reconad calibrate`: (re)fit a model's scoring profile on its validation split.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use reconad::calibrate::{base_scoring, calibrate_and_save, default_candidates};
use reconad::detector::single::TrainedModel;
use reconad::device::Backend;
use reconad::util::lock::DirLock;

use super::args::ScoringArgs;
use super::progress::Bars;

/// (Re)calibrate a trained model's scoring on its validation split: z-normalisation
/// statistics, top-k and threshold, saved as RUN/scoring.json.
#[derive(Debug, clap::Args)]
pub struct Args {
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

pub fn run(args: &Args) -> Result<ExitCode> {
    // Not beside a training or another calibration of the same run.
    let _lock = DirLock::acquire(&args.model)?;
    let model = TrainedModel::open(&args.model, args.backend)?;
    let candidates = if args.scoring.any() {
        let config = args.scoring.apply(base_scoring(&model));
        config.validate(&model.config.model)?;
        vec![config]
    } else {
        default_candidates(&model)
    };
    let profile = calibrate_and_save(&model, candidates, &Bars::new(!args.quiet))?;
    let tried: Vec<String> = profile
        .working_size_auroc
        .iter()
        .map(|c| {
            let mut name = format!("{} px", c.working_size);
            if let Some(e) = c.error {
                name += &format!(" {e:?}");
            }
            if let Some(n) = c.normalization {
                name += &format!(" {n:?}");
            }
            match (c.val_pixel_auroc, c.val_pixel_auroc_cutpaste) {
                (Some(p), Some(q)) if profile.val_blends > 0 => format!(
                    "{name}: {:.4} (pixel: blends {p:.4}, copies {q:.4})",
                    c.val_auroc
                ),
                (Some(p), _) => format!("{name}: {:.4} (pixel {p:.4})", c.val_auroc),
                _ => format!("{name}: {:.4}", c.val_auroc),
            }
        })
        .collect();
    println!(
        "calibrated on {} validation images + {} CutPaste/scar copies{}",
        profile.val_normal,
        profile.val_anomalous,
        profile.blends_text()
    );
    println!(
        "  working size {} (CutPaste-val AUROC {})",
        profile.config.working_size,
        tried.join(", ")
    );
    println!(
        "  top-k {} %{} (CutPaste-val AUROC {})",
        profile.config.top_k_percent,
        match profile.config.score_filter {
            0 => String::new(),
            f => format!(" of {f}x{f} means"),
        },
        profile
            .top_k_auroc
            .iter()
            .map(|c| match c.score_filter {
                0 => format!("{} %: {:.4}", c.top_k_percent, c.val_auroc),
                f => format!("{} % of {f}x{f} means: {:.4}", c.top_k_percent, c.val_auroc),
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  threshold {:.4}", profile.threshold);
    if let Some(h) = &profile.heatmap {
        println!(
            "  heat maps: {:?} error, {:?} statistics (validation pixel AUROC {:.4}{}, against {:.4} for the scoring maps)",
            h.config.error,
            h.config.normalization,
            h.val_pixel_auroc.unwrap_or(f64::NAN),
            if profile.val_blends > 0 {
                " on the soft blends"
            } else {
                ""
            },
            profile.val_pixel_auroc.unwrap_or(f64::NAN)
        );
    }
    println!("saved {}", model.profile_path().display());
    Ok(ExitCode::SUCCESS)
}

//! Scores every image of a folder with a trained model (or ensemble), using only reconad's
//! public surface: open a detector, load images, score them, compare with the threshold.
//!
//! ```sh
//! cargo run --release --example score_folder -- RUN_OR_ENSEMBLE FOLDER
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use reconad::{list_images, open_detector, Backend};

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [model, folder] = args.as_slice() else {
        eprintln!("usage: score_folder RUN_OR_ENSEMBLE FOLDER");
        return ExitCode::from(2);
    };
    match score(model, folder) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn score(model: &Path, folder: &Path) -> reconad::Result<()> {
    let detector = open_detector(model, Backend::Cpu)?;
    let threshold = detector.threshold();
    let (files, _) = list_images(folder)?;
    println!("{} images, threshold {threshold:.4}", files.len());
    let mut anomalous = 0;
    for file in &files {
        let image = detector.load_image(file)?;
        let scored = detector.score(vec![image])?.remove(0);
        let label = if scored.score >= threshold {
            anomalous += 1;
            "anomaly"
        } else {
            "normal"
        };
        println!("{:>10.4}  {label:<8} {}", scored.score, file.display());
    }
    println!("{anomalous} of {} anomalous", files.len());
    Ok(())
}

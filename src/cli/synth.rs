//! `reconad synth`: generate the built-in synthetic data set.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use reconad::data::synth::{self, SynthCategory, SynthConfig};
use reconad::DEFAULT_SEED;

/// Generate a synthetic MVTec-AD-layout data set (images + exact masks) from a seed.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output folder (one sub-folder per category).
    #[arg(long, default_value = "reconad-synth")]
    out: PathBuf,
    /// Seed of every random choice; the same seed gives byte-identical files.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Side of the square images in pixels.
    #[arg(long, default_value_t = 256)]
    size: u32,
    /// Normal training images per category.
    #[arg(long, default_value_t = 40)]
    train: usize,
    /// Normal test images per category.
    #[arg(long, default_value_t = 10)]
    test_good: usize,
    /// Test images per defect type and category.
    #[arg(long, default_value_t = 4)]
    test_per_defect: usize,
    /// Categories to generate (repeat the option; default all).
    #[arg(long = "category", value_enum)]
    categories: Vec<SynthCategory>,
    /// Replace category folders made by an earlier `reconad synth`.
    #[arg(long)]
    force: bool,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let config = SynthConfig {
        seed: args.seed,
        size: args.size,
        train: args.train,
        test_good: args.test_good,
        test_per_defect: args.test_per_defect,
        categories: if args.categories.is_empty() {
            SynthCategory::ALL.to_vec()
        } else {
            dedup(&args.categories)
        },
    };
    let started = std::time::Instant::now();
    let written = synth::generate(&args.out, &config, args.force)?;
    let names: Vec<&str> = config.categories.iter().map(|c| c.name()).collect();
    println!(
        "wrote {written} images ({}) to {} in {:.1} s (seed {})",
        names.join(", "),
        args.out.display(),
        started.elapsed().as_secs_f64(),
        config.seed
    );
    Ok(ExitCode::SUCCESS)
}

fn dedup<T: PartialEq + Copy>(items: &[T]) -> Vec<T> {
    let mut out = Vec::new();
    for &item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

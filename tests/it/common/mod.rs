//! Shared helpers of the integration tests: small synthetic data sets and the CLI binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use reconad::data::synth::{self, SynthCategory, SynthConfig};

/// A tiny synthetic config: 48 px, few images, the given categories.
pub fn tiny_config(seed: u64, categories: &[SynthCategory]) -> SynthConfig {
    SynthConfig {
        seed,
        size: 48,
        train: 6,
        test_good: 2,
        test_per_defect: 1,
        categories: categories.to_vec(),
    }
}

/// Generates a tiny data set under `dir` and returns the category folder of the first category.
pub fn tiny_dataset(dir: &Path, category: SynthCategory) -> PathBuf {
    synth::generate(dir, &tiny_config(7, &[category]), false).expect("synth works");
    dir.join(category.name())
}

/// Runs the reconad binary with `args`.
pub fn reconad(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reconad"))
        .args(args)
        .env("RECONAD_LOG", "warn")
        .output()
        .expect("the reconad binary runs")
}

/// Stdout and stderr of a run, as one string.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts that the run failed cleanly (exit code 1, not a panic) and that its output names
/// `needle` (usually a file path).
pub fn assert_clean_failure(output: &Output, needle: &str) {
    let all = text(output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit code 1, got {:?}:\n{all}",
        output.status
    );
    assert!(!all.contains("panicked"), "the command panicked:\n{all}");
    assert!(
        all.contains(needle),
        "output does not name {needle}:\n{all}"
    );
}

/// Every file below `dir`, relative to it, sorted.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

//! The benchmark verb (train, calibrate, evaluate every category; summary; resumable) and the
//! HTML report (self-contained, one section per evaluation). The report's rendering in a real
//! browser is checked in `browser` (run by `.ci/run`).

use std::path::{Path, PathBuf};

use reconad::data::synth::{self, SynthCategory, SynthConfig};

use crate::common::{files_below, Cmd};

/// Two tiny synthetic categories under `dir/data`.
pub fn two_categories(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    let config = SynthConfig {
        seed: 3,
        size: 48,
        train: 12,
        test_good: 3,
        test_per_defect: 1,
        categories: vec![SynthCategory::Disc, SynthCategory::Weave],
    };
    synth::generate(&data, &config, false).unwrap();
    data
}

/// The tiny, fast model settings of the benchmark tests (no head: tests/it/head.rs covers it).
const TINY_MODEL: [&str; 10] = [
    "--preset",
    "tiny",
    "--whole-image",
    "32",
    "--epochs",
    "2",
    "--no-head",
    "--val-fraction",
    "0.25",
    "--quiet",
];

/// `reconad benchmark` of `data` into `out` with a tiny, fast model.
pub fn benchmark(data: &Path, out: &Path) -> Cmd {
    Cmd::new(["benchmark", "--data"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .args(TINY_MODEL)
}

#[test]
fn benchmark_evaluates_every_category_reports_them_and_skips_them_when_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let data = two_categories(dir.path());
    let out = dir.path().join("bench");
    let all = benchmark(&data, &out).ok();
    assert_eq!(all.matches("trained now").count(), 2, "{all}");
    for category in ["disc", "weave"] {
        assert!(out
            .join("runs")
            .join(category)
            .join("scoring.json")
            .is_file());
        let eval = out.join("eval").join(category);
        assert!(eval.join("metrics.json").is_file());
        // 3 good + 5 defect types x 1, each with a heat map.
        assert_eq!(files_below(&eval.join("heatmaps")).len(), 8);
    }
    let csv = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with(
        "category,image_auroc,pixel_auroc,aupro,f1_at_threshold,f1_max,train_seconds"
    ));
    assert!(lines[1].starts_with("disc,") && lines[2].starts_with("weave,"));
    assert!(lines[3].starts_with("mean,"));
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("| disc |") && md.contains("| **mean** |"),
        "{md}"
    );
    assert!(all.contains("| weave |"), "the summary is printed:\n{all}");

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html.matches("<section class=\"category\"").count(), 2);
    assert_eq!(html.matches("<figure class=\"plot").count(), 4);
    assert!(html.matches("<img class=\"picture\"").count() >= 2 * 8);
    // Self-contained: nothing is fetched from anywhere.
    assert!(!html.contains("src=\"http") && !html.contains("<link") && !html.contains("<script"));

    // A second call does nothing but the summary and the report.
    let again = benchmark(&data, &out).ok();
    assert_eq!(again.matches("(done before)").count(), 2, "{again}");
    assert!(!again.contains("training on"), "{again}");
    // A category whose evaluation is missing is evaluated again, its run reused.
    std::fs::remove_file(out.join("eval/weave/metrics.json")).unwrap();
    let partial = benchmark(&data, &out).ok();
    assert!(partial.contains("[2/2] weave: evaluating"), "{partial}");
    assert!(partial.contains("finished run reused"), "{partial}");
    // Other training settings are refused, naming what differs.
    benchmark(&data, &out)
        .args(["--batch", "4"])
        .fails_with("batch_size: 8 there, 4 here");
    // Only the categories asked for, in that order.
    let out2 = dir.path().join("bench2");
    let one = benchmark(&data, &out2).args(["--categories", "weave"]).ok();
    assert!(one.contains("[1/1] weave"), "{one}");
    benchmark(&data, &dir.path().join("bench3"))
        .args(["--categories", "nope"])
        .fails_with("nope");

    // A folder data set is one category named after its normal folder's parent.
    let disc = data.join("disc");
    let folder = Cmd::new("benchmark")
        .arg("--normal")
        .arg(disc.join("train/good"))
        .arg("--abnormal")
        .arg(disc.join("test/crack"))
        .arg("--abnormal")
        .arg(disc.join("test/stain"))
        .arg("--masks")
        .arg(disc.join("ground_truth"))
        .arg("--out")
        .arg(dir.path().join("bench-folder"))
        .args(TINY_MODEL)
        .ok();
    assert!(folder.contains("[1/1] train: image AUROC"), "{folder}");
    let csv = std::fs::read_to_string(dir.path().join("bench-folder/summary.csv")).unwrap();
    let row = csv.lines().nth(1).unwrap();
    assert!(
        row.starts_with("train,") && !row.contains(",,"),
        "pixel metrics from the masks: {csv}"
    );

    // The report verb, from evaluation folders.
    let page = dir.path().join("r.html");
    let printed = Cmd::new("report")
        .arg("--eval")
        .arg(out.join("eval/weave"))
        .arg(out2.join("eval/weave"))
        .arg("--out")
        .arg(&page)
        .ok();
    assert!(printed.contains("2 categories, 4 plots"), "{printed}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(html.matches("<section class=\"category\"").count(), 2);
    assert!(html.contains("Training settings (config.json)"));
    Cmd::new("report")
        .arg("--eval")
        .arg(dir.path())
        .arg("--out")
        .arg(dir.path().join("x.html"))
        .fails_with("metrics.json");
}

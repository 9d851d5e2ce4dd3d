//! Ensembles: training members that share a split, resuming only unfinished members, fusion of
//! validation-z-scored member scores, independence from the test set, eval/predict on an
//! ensemble, and clear errors for ensembles that cannot be fused.

use std::path::{Path, PathBuf};

use crate::common::{eval, files_below, predict, train, Cmd};
use reconad::data::synth::{self, SynthCategory, SynthConfig};
use reconad::detector::ensemble::Ensemble;
use reconad::detector::Scorer;
use reconad::device::Backend;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A 64 px synthetic data set with the given categories.
fn data(dir: &Path, categories: &[SynthCategory]) -> PathBuf {
    let cfg = SynthConfig {
        seed: 42,
        size: 64,
        train: 24,
        test_good: 4,
        test_per_defect: 1,
        categories: categories.to_vec(),
    };
    synth::generate(dir, &cfg, false).unwrap();
    dir.to_path_buf()
}

/// Tiny, fast member settings.
fn config_file(dir: &Path) -> PathBuf {
    let path = dir.join("tiny.json");
    std::fs::write(
        &path,
        r#"{"preset": "tiny", "optimizer": {"lr": 0.005}, "val_fraction": 0.25,
            "batch_size": 8, "eval_every": 1, "augment": {"rescale": [32, 64], "input_sizes": [32]},
            "val_size": 32, "head": null}"#,
    )
    .unwrap();
    path
}

/// `reconad ensemble train` of `members` members for 2 epochs with the settings file `cfg`.
fn ensemble_train(data: &Path, category: &str, out: &Path, members: usize, cfg: &Path) -> Cmd {
    Cmd::new(["ensemble", "train", "--data"])
        .arg(data)
        .args(["--category", category, "--out"])
        .arg(out)
        .args([
            "--members",
            &members.to_string(),
            "--epochs",
            "2",
            "--config",
        ])
        .arg(cfg)
        .arg("--quiet")
}

/// `reconad ensemble create --out <out> <members>...`.
fn ensemble_create(out: &Path, members: &[PathBuf]) -> Cmd {
    Cmd::new(["ensemble", "create", "--out"])
        .arg(out)
        .args(members)
}

#[test]
fn members_share_a_split_and_an_interrupted_ensemble_trains_only_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let root = data(dir.path(), &[SynthCategory::Disc]);
    let cfg = config_file(dir.path());
    let out = dir.path().join("ens");
    ensemble_train(&root, "disc", &out, 2, &cfg).ok();
    let first_weights = std::fs::read(out.join("member-1/model-best.safetensors")).unwrap();
    // A third member later: the first two are not retrained.
    let all = ensemble_train(&root, "disc", &out, 3, &cfg).ok();
    assert!(all.contains("member-1: finished earlier"), "{all}");
    assert!(all.contains("member-2: finished earlier"), "{all}");
    assert!(all.contains("member-3: training (seed 44)"), "{all}");
    assert_eq!(
        std::fs::read(out.join("member-1/model-best.safetensors")).unwrap(),
        first_weights
    );
    let def = json(&out.join("ensemble.json"));
    assert_eq!(
        def["members"],
        serde_json::json!(["member-1", "member-2", "member-3"])
    );
    assert!(def["calibration"]["threshold"]
        .as_f64()
        .unwrap()
        .is_finite());
    // One split, three seeds.
    let split = std::fs::read(out.join("member-1/split.json")).unwrap();
    for m in ["member-2", "member-3"] {
        assert_eq!(
            std::fs::read(out.join(m).join("split.json")).unwrap(),
            split
        );
    }
    let seeds: Vec<u64> = (1..=3)
        .map(|i| {
            json(&out.join(format!("member-{i}/config.json")))["train"]["seed"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seeds, vec![42, 43, 44]);
}

#[test]
fn fused_scores_are_the_mean_of_validation_z_scores_and_ignore_the_test_set() {
    let dir = tempfile::tempdir().unwrap();
    let root = data(dir.path(), &[SynthCategory::Disc]);
    let cfg = config_file(dir.path());
    let out = dir.path().join("ens");
    ensemble_train(&root, "disc", &out, 2, &cfg).ok();

    // The fused score, recomputed from the members' scoring.json files by hand.
    let ensemble = Ensemble::open(&out, Backend::Cpu).unwrap();
    let test_dir = root.join("disc/test/good");
    let images: Vec<_> = (0..3)
        .map(|i| {
            ensemble
                .load_image(&test_dir.join(format!("{i:03}.png")))
                .unwrap()
        })
        .collect();
    let scored = ensemble.score(images).unwrap();
    let stats: Vec<(f64, f64)> = (1..=2)
        .map(|i| {
            let p = json(&out.join(format!("member-{i}/scoring.json")));
            let v: Vec<f64> = p["val_normal_scores"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            (mean, std)
        })
        .collect();
    for sc in &scored {
        assert_eq!(sc.member_scores.len(), 2);
        let expected = sc
            .member_scores
            .iter()
            .zip(&stats)
            .map(|(s, (m, sd))| (s - m) / (sd + 1e-6))
            .sum::<f64>()
            / 2.0;
        assert!(
            (sc.score - expected).abs() < 1e-9,
            "{} vs {expected}",
            sc.score
        );
    }

    // Changing the test set changes no statistic: recalibrating the members and the ensemble
    // after deleting test images gives the same files' numbers.
    let before_member = std::fs::read(out.join("member-1/scoring.json")).unwrap();
    let before_def = json(&out.join("ensemble.json"));
    for f in ["000.png", "001.png"] {
        std::fs::remove_file(test_dir.join(f)).unwrap();
    }
    std::fs::remove_dir_all(root.join("disc/test/scratch")).unwrap();
    std::fs::remove_dir_all(root.join("disc/ground_truth/scratch")).unwrap();
    Cmd::new(["calibrate", "--model"])
        .arg(out.join("member-1"))
        .arg("--quiet")
        .ok();
    assert_eq!(
        std::fs::read(out.join("member-1/scoring.json")).unwrap(),
        before_member
    );
    let members = [out.join("member-1"), out.join("member-2")];
    ensemble_create(&out, &members).arg("--quiet").ok();
    assert_eq!(
        json(&out.join("ensemble.json"))["calibration"],
        before_def["calibration"]
    );
}

#[test]
fn eval_and_predict_accept_an_ensemble_and_list_its_members() {
    let dir = tempfile::tempdir().unwrap();
    let root = data(dir.path(), &[SynthCategory::Disc]);
    let cfg = config_file(dir.path());
    let out = dir.path().join("ens");
    ensemble_train(&root, "disc", &out, 2, &cfg).ok();
    let eval_dir = dir.path().join("eval");
    eval(&out, &eval_dir).args(["--heatmaps", "--quiet"]).ok();
    let m = json(&eval_dir.join("metrics.json"));
    assert_eq!(m["members"].as_array().unwrap().len(), 2);
    for key in ["image_auroc", "pixel_auroc", "aupro", "threshold"] {
        assert!(!m[key].is_null(), "{key}: {m}");
    }
    assert!(m["members"][0]["image_auroc"].is_number());
    assert_eq!(files_below(&eval_dir.join("heatmaps")).len(), 9);
    // The definition file works as well as the folder.
    let img = root.join("disc/test/good/000.png");
    let stdout = predict(&out.join("ensemble.json"))
        .arg(&img)
        .arg("--json")
        .stdout();
    let line: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(line["score"].is_number());
    // Scoring options do not apply to an ensemble.
    eval(&out, &eval_dir)
        .args(["--top-k", "1"])
        .fails_with("scoring options apply to single models");
}

#[test]
fn ensembles_that_cannot_be_fused_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let root = data(dir.path(), &[SynthCategory::Disc, SynthCategory::Grain]);
    let cfg = config_file(dir.path());
    let rgb = dir.path().join("rgb");
    let gray = dir.path().join("gray");
    ensemble_train(&root, "disc", &rgb, 1, &cfg).ok();
    ensemble_train(&root, "grain", &gray, 1, &cfg).ok();
    let out = dir.path().join("mixed");
    let all = ensemble_create(&out, &[rgb.join("member-1"), gray.join("member-1")])
        .fails_with("members cannot be fused");
    assert!(all.contains("1 channel(s)"), "{all}");
    assert!(
        !out.join("ensemble.json").exists(),
        "a refused ensemble writes nothing"
    );

    let missing = dir.path().join("no-such-run");
    ensemble_create(&out, &[rgb.join("member-1"), missing]).fails_with("no-such-run");

    // Another split (a run trained alone with another seed) cannot share the threshold.
    let other = dir.path().join("other");
    train(&root, &other)
        .args(["--category", "disc", "--config"])
        .arg(&cfg)
        .args(["--epochs", "1", "--seed", "7", "--quiet"])
        .ok();
    ensemble_create(&out, &[rgb.join("member-1"), other]).fails_with("different train/val splits");

    // A member deleted after the ensemble was made.
    std::fs::remove_dir_all(rgb.join("member-1")).unwrap();
    eval(&rgb, &dir.path().join("e")).fails_with("member-1");
}

#[test]
fn an_ensemble_with_too_few_validation_images_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    // 24 normal images at val_fraction 0.03: one validation image, which cannot give a
    // member's score a std.
    let root = data(dir.path(), &[SynthCategory::Disc]);
    let cfg = dir.path().join("small-val.json");
    std::fs::write(
        &cfg,
        r#"{"preset": "tiny", "val_fraction": 0.03, "batch_size": 8,
            "augment": {"rescale": [32, 64], "input_sizes": [32]}, "val_size": 32}"#,
    )
    .unwrap();
    let out = dir.path().join("ens");
    let all =
        ensemble_train(&root, "disc", &out, 2, &cfg).fails_with("at least 2 validation images");
    assert!(all.contains("val_fraction"), "{all}");
    assert!(!out.join("member-1").exists(), "no member was trained");
}

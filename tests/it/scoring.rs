//! Scoring, evaluation and prediction end to end on a tiny model trained on synthetic data:
//! training calibrates the model, `eval` writes its metrics, `predict` agrees with `eval`, scoring
//! settings can be overridden, and bad models, images and settings are clear errors.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::common::{eval, files_below, predict, Cmd};
use reconad::data::mvtec::open_category;
use reconad::data::synth::{self, SynthCategory, SynthConfig};
use reconad::pipeline::train_and_calibrate;
use reconad::train::{DataRef, RunDir};
use reconad::train::{TrainConfig, TrainOptions};

/// A data set and a model trained on it once for all tests of this file.
struct Trained {
    _dir: tempfile::TempDir,
    data: PathBuf,
    run: PathBuf,
}

fn trained() -> &'static Trained {
    static TRAINED: OnceLock<Trained> = OnceLock::new();
    TRAINED.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SynthConfig {
            seed: 42,
            size: 64,
            train: 40,
            test_good: 4,
            test_per_defect: 2,
            categories: vec![SynthCategory::Disc],
        };
        synth::generate(dir.path(), &cfg, false).unwrap();
        let data = dir.path().join("disc");
        let mut c = TrainConfig::default().with_image_size(32);
        c.preset = reconad::model::unet::Preset::Tiny;
        c.seed = 2;
        c = c.with_epochs(6);
        c.batch_size = 8;
        c.eval_every = 2;
        c.val_fraction = 0.25;
        c.optimizer.lr = 5e-3;
        c.head = None;
        let run = dir.path().join("run");
        let ds = open_category(&data).unwrap();
        let data_ref = DataRef::Mvtec {
            category_dir: data.clone(),
        };
        let options = TrainOptions::quiet();
        let summary =
            train_and_calibrate(&RunDir::new(&run), &ds, data_ref, c, false, &options).unwrap();
        assert!(summary.profile.is_some(), "a finished run is calibrated");
        Trained {
            _dir: dir,
            data,
            run,
        }
    })
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_finished_run_is_calibrated_on_its_validation_split() {
    let t = trained();
    let profile = json(&t.run.join("scoring.json"));
    // Working resolution: the bottom or the top of the training rescale range [32, 64], the
    // one with the better CutPaste-val AUROC; windows ¼, ½, whole.
    let tried = profile["working_size_auroc"].as_array().unwrap();
    assert_eq!(tried.len(), 2);
    let best = tried
        .iter()
        .max_by(|a, b| {
            a["val_auroc"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["val_auroc"].as_f64().unwrap())
        })
        .unwrap();
    let size = profile["config"]["working_size"].as_u64().unwrap();
    assert!(size == 32 || size == 64, "{size}");
    assert_eq!(best["val_auroc"], profile["val_auroc"]);
    // Every candidate also reports its validation pixel AUROC (maps vs the pasted masks).
    for c in tried {
        let p = c["val_pixel_auroc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p), "{p}");
    }
    assert_eq!(best["val_pixel_auroc"], profile["val_pixel_auroc"]);
    assert_eq!(
        profile["config"]["windows"],
        serde_json::json!([size / 4, size / 2, size])
    );
    assert_eq!(profile["stats"].as_array().unwrap().len(), 3);
    // 10 validation images + three CutPaste and three scar copies each.
    assert_eq!(profile["val_normal"], 10);
    assert_eq!(profile["val_anomalous"], 60);
    let chosen = profile["config"]["top_k"].as_f64().unwrap();
    let best = profile["top_k_auroc"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["val_auroc"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    let chosen_auroc = profile["top_k_auroc"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["top_k"].as_f64() == Some(chosen)
                && c["score_filter"].as_u64().unwrap_or(0)
                    == profile["config"]["score_filter"].as_u64().unwrap_or(0)
        })
        .unwrap()["val_auroc"]
        .as_f64()
        .unwrap();
    assert_eq!(
        chosen_auroc, best,
        "k (and the score filter) is the best candidate on CutPaste-val"
    );
    // Every top-k was tried with and without the mean filter (3 px at 32, 5 at 64).
    assert_eq!(profile["top_k_auroc"].as_array().unwrap().len(), 6);
    assert!(profile["threshold"].as_f64().unwrap().is_finite());
}

#[test]
fn eval_writes_metrics_scores_and_heat_maps() {
    let t = trained();
    let out = tempfile::tempdir().unwrap();
    let all = eval(&t.run, out.path())
        .args(["--heatmaps", "--quiet"])
        .ok();
    assert!(all.contains("image AUROC"), "{all}");
    let m = json(&out.path().join("metrics.json"));
    for key in [
        "image_auroc",
        "pixel_auroc",
        "aupro",
        "f1_max",
        "threshold",
        "scoring",
    ] {
        assert!(!m[key].is_null(), "metrics.json lacks {key}: {m}");
    }
    // 4 good + 5 defect types x 2.
    assert_eq!(m["counts"]["images"], 14);
    assert_eq!(m["counts"]["anomalous"], 10);
    for key in ["image_auroc", "pixel_auroc", "aupro"] {
        let v = m[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} {v}");
    }
    let threshold = m["threshold"].as_f64().unwrap();
    let csv = std::fs::read_to_string(out.path().join("scores.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("path,defect,label,score,predicted,mask"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 14);
    for r in &rows {
        let score: f64 = r[3].parse().unwrap();
        let predicted = if score >= threshold { "1" } else { "0" };
        // Scores are printed with 6 decimals: only exact ties with the threshold could differ.
        if (score - threshold).abs() > 1e-5 {
            assert_eq!(r[4], predicted, "{r:?} at threshold {threshold}");
        }
        assert_eq!(r[2], if r[1] == "good" { "0" } else { "1" });
    }
    // One heat map per test image, at the original size.
    let heatmaps = files_below(&out.path().join("heatmaps"));
    assert_eq!(heatmaps.len(), 14, "{heatmaps:?}");
    let png = image::open(out.path().join("heatmaps").join(&heatmaps[0])).unwrap();
    assert_eq!((png.width(), png.height()), (64, 64));
}

#[test]
fn predict_agrees_with_eval_in_csv_and_json() {
    let t = trained();
    let out = tempfile::tempdir().unwrap();
    eval(&t.run, out.path()).arg("--quiet").ok();
    let eval_scores: std::collections::HashMap<String, String> =
        std::fs::read_to_string(out.path().join("scores.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_string(), f[3].to_string())
            })
            .collect();
    let folder = t.data.join("test").join("scratch");
    let single = t.data.join("test").join("good").join("000.png");
    let heat = out.path().join("predict-heat");
    let stdout = predict(&t.run)
        .arg(&folder)
        .arg(&single)
        .arg("--heatmaps")
        .arg(&heat)
        .stdout();
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("path,score,label,heatmap"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 3, "{stdout}");
    for r in &rows {
        assert_eq!(
            eval_scores.get(&r[0]),
            Some(&r[1]),
            "predict and eval disagree on {}",
            r[0]
        );
    }
    // Two files are called 000.png: their heat maps get the folder name.
    let names: Vec<String> = rows.iter().map(|r| r[3].clone()).collect();
    assert_eq!(files_below(&heat).len(), 3, "{names:?}");
    assert!(
        names.iter().any(|n| n.ends_with("good_000.png")),
        "{names:?}"
    );
    for n in &names {
        assert!(Path::new(n).is_file());
    }

    let stdout = predict(&t.run).arg(&single).arg("--json").stdout();
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(line["path"], s(&single));
    let score = line["score"].as_f64().unwrap();
    let expected: f64 = eval_scores[s(&single)].parse().unwrap();
    assert!((score - expected).abs() < 1e-6);
    assert!(line["label"] == 0 || line["label"] == 1);
}

#[test]
fn scoring_overrides_recalibrate_and_single_scale_works() {
    let t = trained();
    let saved_before = std::fs::read(t.run.join("scoring.json")).unwrap();
    let out = tempfile::tempdir().unwrap();
    eval(&t.run, out.path())
        .args([
            "--working-size",
            "64",
            "--windows",
            "64",
            "--norm",
            "image",
            "--top-k",
            "2.5",
            "--quiet",
        ])
        .ok();
    let m = json(&out.path().join("metrics.json"));
    assert_eq!(m["scoring"]["config"]["windows"], serde_json::json!([64]));
    assert_eq!(m["scoring"]["config"]["normalization"], "image");
    assert_eq!(m["scoring"]["config"]["top_k"], 2.5);
    // The saved profile of the run is untouched by an eval with overrides.
    assert_eq!(
        std::fs::read(t.run.join("scoring.json")).unwrap(),
        saved_before
    );
}

#[test]
fn bad_models_images_and_settings_are_clear_errors() {
    let t = trained();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let eval_quiet = || eval(&t.run, &out).arg("--quiet");
    eval_quiet()
        .args(["--windows", "128"])
        .fails_with("larger than the working resolution");
    eval_quiet()
        .args(["--top-k", "0"])
        .fails_with("outside (0, 100]");
    eval_quiet()
        .args(["--top-k", "150"])
        .fails_with("outside (0, 100]");
    assert!(!out.exists(), "a refused eval writes nothing");

    // A copy of the run with a config from another format version, one without weights, one
    // without its scoring profile.
    let copy = |name: &str| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for f in [
            "config.json",
            "split.json",
            "model-best.safetensors",
            "model-last.safetensors",
            "scoring.json",
        ] {
            std::fs::copy(t.run.join(f), dir.join(f)).unwrap();
        }
        dir
    };
    let other_version = copy("other-version");
    let config = std::fs::read_to_string(other_version.join("config.json")).unwrap();
    std::fs::write(
        other_version.join("config.json"),
        config.replacen("\"format\": 1", "\"format\": 99", 1),
    )
    .unwrap();
    let all = eval(&other_version, &out).fails_with("format 99");
    assert!(all.contains("config.json"), "{all}");

    // The default run is scored with its last epoch's weights: without them it is an error
    // naming the file (the best epoch's weights are not silently used instead).
    let no_weights = copy("no-weights");
    std::fs::remove_file(no_weights.join("model-last.safetensors")).unwrap();
    predict(&no_weights)
        .arg(&t.data)
        .fails_with("model-last.safetensors");

    let no_profile = copy("no-profile");
    std::fs::remove_file(no_profile.join("scoring.json")).unwrap();
    eval(&no_profile, &out).fails_with("reconad calibrate");

    eval(&tmp.path().join("absent"), &out).fails_with("absent");

    // A gray image for an RGB model.
    let gray = tmp.path().join("gray.png");
    image::GrayImage::new(64, 64).save(&gray).unwrap();
    let all = predict(&t.run).arg(&gray).fails_with("gray.png");
    assert!(all.contains("1 channel(s), the model expects 3"), "{all}");

    // A file that is not an image.
    let junk = tmp.path().join("junk.png");
    std::fs::write(&junk, b"not a png").unwrap();
    predict(&t.run).arg(&junk).fails_with("junk.png");
}

#[test]
fn demo_runs_the_whole_pipeline_at_a_tiny_scale() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let all = Cmd::new(["demo", "--out"])
        .arg(&out)
        .args(["--preset", "tiny", "--image-size", "32", "--epochs", "2"])
        .ok();
    assert!(all.contains("mean image AUROC"), "{all}");
    assert!(all.contains("report:"), "{all}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(html.matches("<section class=\"category\"").count(), 3);
    for category in ["weave", "disc", "grain"] {
        let eval = out.join("eval").join(category);
        let m = json(&eval.join("metrics.json"));
        // SynthConfig defaults: 10 good + 5 defect types x 4 test images.
        assert_eq!(m["counts"]["images"], 30, "{category}");
        assert_eq!(files_below(&eval.join("heatmaps")).len(), 30);
        assert!(out
            .join("runs")
            .join(category)
            .join("scoring.json")
            .is_file());
    }
}

#[test]
fn a_whole_image_model_is_scored_as_one_square_window_with_the_error_map_chosen_on_validation() {
    let t = trained();
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("whole");
    crate::common::train(&t.data, &run)
        .args(["--whole-image", "32", "--preset", "tiny", "--epochs", "2"])
        .args([
            "--batch",
            "8",
            "--val-fraction",
            "0.25",
            "--restoration",
            "--quiet",
        ])
        .ok();
    let config = json(&run.join("config.json"));
    assert_eq!(
        config["train"]["augment"]["rescale"],
        serde_json::json!([32, 32])
    );
    let scoring = json(&run.join("scoring.json"));
    assert_eq!(scoring["config"]["windows"], serde_json::json!([32]));
    assert_eq!(scoring["config"]["working_size"], 32);
    assert_eq!(scoring["config"]["square"], true);
    assert_eq!(
        config["train"]["augment"]["corruption"]["kind"],
        "restoration"
    );
    let split = json(&run.join("split.json"));
    assert!(split["val"].as_array().unwrap().len() >= 3, "{split}");
    // Squared error, 1 − SSIM, both fused by max and by mean, and MSGMS were each calibrated
    // with global and per-location statistics; the best CutPaste-val AUROC won.
    let tried = scoring["working_size_auroc"].as_array().unwrap();
    let candidates: Vec<(&str, &str)> = tried
        .iter()
        .map(|c| {
            (
                c["error"].as_str().unwrap(),
                c["normalization"].as_str().unwrap(),
            )
        })
        .collect();
    let errors = ["squared", "ssim", "both", "both-mean", "msgms"];
    let expected: Vec<(&str, &str)> = ["validation", "location"]
        .iter()
        .flat_map(|n| errors.iter().map(move |e| (*e, *n)))
        .collect();
    assert_eq!(candidates, expected);
    // The anomaly map is the image-score candidate's own, or a heat-map profile when the
    // candidate with the best validation pixel AUROC (all of one family here: no head) beats
    // it by the margin.
    let pixel = |c: &serde_json::Value| c["val_pixel_auroc"].as_f64().unwrap();
    let best_pixel = tried.iter().map(pixel).fold(f64::MIN, f64::max);
    match scoring.get("heatmap") {
        Some(h) => {
            assert_eq!(pixel(h), best_pixel);
            assert!(pixel(h) - pixel(&scoring) >= reconad::calibrate::HEATMAP_MARGIN);
            assert!(h.get("heatmap").is_none());
        }
        None => assert!(best_pixel - pixel(&scoring) < reconad::calibrate::HEATMAP_MARGIN),
    }
    // By default there are no soft blends: the CutPaste copies choose the heat maps alone.
    assert!(scoring.get("val_blends").is_none(), "{scoring}");
    assert!(tried
        .iter()
        .all(|c| c.get("val_pixel_auroc_cutpaste").is_none()));
    // Each was read out with and without the mean filter (3 px at 32), at every top-k.
    let readouts = scoring["top_k_auroc"].as_array().unwrap();
    assert_eq!(readouts.len(), 6, "{readouts:?}");
    assert_eq!(
        readouts.iter().filter(|r| r["score_filter"] == 3).count(),
        3
    );
    let out = dir.path().join("eval");
    eval(&run, &out).arg("--quiet").ok();
    assert!(out.join("scores.csv").is_file());
    // A heat-map profile scores and maps like the profile it is: forced here onto the saved
    // one (a copy of the candidate that differs most), eval still runs and its image scores
    // are unchanged, since only the map comes from it.
    let mut forced = scoring.clone();
    let mut other = scoring.clone();
    other.as_object_mut().unwrap().remove("heatmap");
    other["threshold"] = serde_json::json!(123.0);
    forced["heatmap"] = other;
    std::fs::write(
        run.join("scoring.json"),
        serde_json::to_string_pretty(&forced).unwrap(),
    )
    .unwrap();
    let out2 = dir.path().join("eval-heatmap");
    eval(&run, &out2).arg("--quiet").ok();
    assert_eq!(
        std::fs::read_to_string(out.join("scores.csv")).unwrap(),
        std::fs::read_to_string(out2.join("scores.csv")).unwrap()
    );
    // With a heat-map profile of another error kind, one model pass gives both: the scores
    // equal the image profile's alone, the maps equal the heat-map profile's alone.
    {
        use reconad::calibrate::calibrate_model;
        use reconad::detector::single::{SingleModel, TrainedModel};
        use reconad::detector::Scorer;
        let open = || TrainedModel::open(&run, reconad::device::Backend::Cpu).unwrap();
        let main: reconad::score::profile::ScoringProfile =
            serde_json::from_value(scoring.clone()).unwrap();
        let mut other_config = main.config.clone();
        other_config.error = if main.config.error == reconad::score::ErrorMaps::Msgms {
            reconad::score::ErrorMaps::Squared
        } else {
            reconad::score::ErrorMaps::Msgms
        };
        let heat =
            calibrate_model(&open(), other_config, &reconad::util::progress::NoProgress).unwrap();
        let mut with_heat = main.clone();
        with_heat.heatmap = Some(Box::new(heat.clone()));
        with_heat.heatmap.as_mut().unwrap().heatmap = None;
        let model = open();
        let images: Vec<_> = crate::common::files_below(&t.data.join("test"))
            .iter()
            .take(3)
            .map(|f| model.load_image(&t.data.join("test").join(f)).unwrap())
            .collect();
        let score = |p: &reconad::score::profile::ScoringProfile| {
            SingleModel {
                model: open(),
                profile: p.clone(),
            }
            .score(images.clone())
            .unwrap()
        };
        let (both, alone, maps) = (score(&with_heat), score(&main), score(&heat));
        for ((b, a), m) in both.iter().zip(&alone).zip(&maps) {
            assert_eq!(b.score, a.score);
            assert_eq!(b.candidate_scores, a.candidate_scores);
            assert_eq!(b.map, m.map);
        }
        // A run set to make soft blends (three per validation image) chooses its heat maps on
        // them, and reports the CutPaste copies' pixel AUROC beside.
        let mut blends = open();
        blends.config.train.blend.per_image = 3;
        let val_images = split["val"].as_array().unwrap().len();
        let p = calibrate_model(
            &blends,
            main.config.clone(),
            &reconad::util::progress::NoProgress,
        )
        .unwrap();
        assert_eq!(p.val_blends, 3 * val_images);
        // (`main` was read back from JSON: equal to the last bit or so.)
        let copies = p.val_pixel_auroc_cutpaste.unwrap();
        assert!((copies - main.val_pixel_auroc.unwrap()).abs() < 1e-12);
        let on_blends = p.val_pixel_auroc.unwrap();
        assert!((0.0..=1.0).contains(&on_blends));
        assert_ne!(on_blends, copies);
        // The image choice and threshold are the copies' alone.
        assert!((p.val_auroc - main.val_auroc).abs() < 1e-12);
        assert!((p.threshold - main.threshold).abs() < 1e-9 * main.threshold.abs().max(1.0));
    }
    // A heat-map profile nested in a heat-map profile is refused.
    let mut nested = forced.clone();
    nested["heatmap"]["heatmap"] = scoring.clone();
    std::fs::write(
        run.join("scoring.json"),
        serde_json::to_string_pretty(&nested).unwrap(),
    )
    .unwrap();
    eval(&run, &dir.path().join("eval-nested")).fails_with("heat-map profile");
    std::fs::write(
        run.join("scoring.json"),
        serde_json::to_string_pretty(&scoring).unwrap(),
    )
    .unwrap();
    // Per-location statistics, asked for: saved per pixel, and used by eval.
    Cmd::new(["calibrate", "--model"])
        .arg(&run)
        .args(["--norm", "location", "--quiet"])
        .ok();
    let scoring = json(&run.join("scoring.json"));
    assert_eq!(scoring["config"]["normalization"], "location");
    let location = &scoring["stats"][0]["location"];
    assert_eq!(location["mean"].as_array().unwrap().len(), 32 * 32);
    assert_eq!(location["std"].as_array().unwrap().len(), 32 * 32);
    let out = dir.path().join("eval-location");
    eval(&run, &out).arg("--quiet").ok();
    let metrics = json(&out.join("metrics.json"));
    assert!(metrics["image_auroc"].as_f64().is_some(), "{metrics}");
}

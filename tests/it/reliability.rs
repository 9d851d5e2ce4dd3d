//! Broken models never give labels: a model whose scores or maps are not finite, or a threshold
//! that is not a number, is an error naming the model and the image.

use reconad::util::fs::{read_json, write_json_atomic};

use crate::common::{fixture, predict, Cmd};

#[test]
fn a_model_that_scores_non_finite_is_an_error_not_a_label() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("broken");
    std::fs::create_dir_all(&run).unwrap();
    let member = fixture().join("ens/member-1");
    for f in ["config.json", "split.json", "model-best.safetensors"] {
        std::fs::copy(member.join(f), run.join(f)).unwrap();
    }
    // Statistics that overflow f32 in the z-normalisation: every map becomes -inf.
    let mut scoring: serde_json::Value = read_json(&member.join("scoring.json")).unwrap();
    for s in scoring["stats"].as_array_mut().unwrap() {
        s["mean"] = serde_json::json!(1e300);
    }
    write_json_atomic(&run.join("scoring.json"), &scoring).unwrap();
    let image = dir.path().join("x.png");
    image::RgbImage::from_pixel(40, 40, image::Rgb([90, 90, 90]))
        .save(&image)
        .unwrap();
    let out = predict(&run).arg(&image).fails_with("non-finite");
    assert!(out.contains("x.png") && out.contains("broken"), "{out}");
    predict(&member)
        .args(["--threshold", "NaN"])
        .arg(&image)
        .fails_with("threshold");
}

#[test]
fn heat_maps_never_overwrite_inputs_or_existing_files_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture().join("ens/member-1");
    let inputs = dir.path().join("images");
    std::fs::create_dir_all(&inputs).unwrap();
    let image = inputs.join("x.png");
    image::RgbImage::from_pixel(40, 40, image::Rgb([90, 90, 90]))
        .save(&image)
        .unwrap();
    let original = std::fs::read(&image).unwrap();
    // Pointed at the input folder: the heat map x.png would replace the image x.png.
    let out = predict(&model)
        .arg(&inputs)
        .arg("--heatmaps")
        .arg(&inputs)
        .arg("--force")
        .fails_with("input image");
    assert!(out.contains("x.png"), "{out}");
    assert_eq!(std::fs::read(&image).unwrap(), original, "input untouched");
    // An existing heat map is replaced only with --force.
    let heat = dir.path().join("heat");
    predict(&model)
        .arg(&image)
        .arg("--heatmaps")
        .arg(&heat)
        .ok();
    predict(&model)
        .arg(&image)
        .arg("--heatmaps")
        .arg(&heat)
        .fails_with("--force");
    predict(&model)
        .arg(&image)
        .arg("--heatmaps")
        .arg(&heat)
        .arg("--force")
        .ok();
    assert!(heat.join("x.png").is_file());
}

#[test]
fn a_split_file_is_replaced_only_with_force_and_a_config_must_be_an_object() {
    let dir = tempfile::tempdir().unwrap();
    let config = reconad::data::synth::SynthConfig {
        seed: 1,
        size: 32,
        train: 6,
        test_good: 1,
        test_per_defect: 1,
        categories: vec![reconad::data::synth::SynthCategory::Disc],
    };
    reconad::data::synth::generate(dir.path(), &config, false).unwrap();
    let data = dir.path().join("disc");
    let split = dir.path().join("split.json");
    let cmd = || {
        Cmd::new(["data", "split"])
            .arg(&data)
            .arg("--out")
            .arg(&split)
    };
    cmd().ok();
    let before = std::fs::read(&split).unwrap();
    cmd().args(["--val-fraction", "0.5"]).fails_with("--force");
    assert_eq!(std::fs::read(&split).unwrap(), before, "not replaced");
    cmd().args(["--val-fraction", "0.5", "--force"]).ok();
    assert_ne!(std::fs::read(&split).unwrap(), before);
    // serde would read `[1, 2]` as the first two settings (seed, split seed).
    let file = dir.path().join("c.json");
    std::fs::write(&file, "[1, 2]").unwrap();
    let out = crate::common::train(&data, &dir.path().join("run"))
        .arg("--config")
        .arg(&file)
        .fails_with("JSON object");
    assert!(out.contains("c.json"), "{out}");
}

#[test]
fn unreadable_files_abort_predict_unless_skipped_with_a_warning_each() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture().join("ens/member-1");
    let inputs = dir.path().join("images");
    std::fs::create_dir_all(&inputs).unwrap();
    for name in ["a.png", "c.png"] {
        image::RgbImage::from_pixel(40, 40, image::Rgb([90, 90, 90]))
            .save(inputs.join(name))
            .unwrap();
    }
    std::fs::write(inputs.join("b.png"), b"not a png").unwrap();
    // Without the flag one bad file stops the batch, naming it.
    predict(&model).arg(&inputs).fails_with("b.png");
    // With it: the other two are scored, the bad one is a warning and the exit status 2.
    let output = predict(&model).arg(&inputs).arg("--skip-unreadable").run();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stdout.contains("a.png") && stdout.contains("c.png"),
        "{stdout}"
    );
    assert!(!stdout.contains("b.png"), "{stdout}");
    assert!(stderr.contains("1 of 3 file(s) skipped"), "{stderr}");
    assert!(stderr.contains("b.png"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn eval_can_leave_out_unreadable_test_images_and_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture().join("ens/member-1");
    let cat = crate::common::tiny_dataset(dir.path(), reconad::data::synth::SynthCategory::Disc);
    let bad = cat.join("test/good/000.png");
    std::fs::write(&bad, b"junk").unwrap();
    crate::common::eval(&model, &dir.path().join("e1"))
        .arg(&cat)
        .fails_with("000.png");
    let out = dir.path().join("e2");
    let output = crate::common::eval(&model, &out)
        .arg(&cat)
        .arg("--skip-unreadable")
        .run();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(2), "{all}");
    assert!(all.contains("1 test image(s) skipped"), "{all}");
    let metrics: serde_json::Value = read_json(&out.join("metrics.json")).unwrap();
    let skipped = metrics["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1);
    assert!(skipped[0]["path"].as_str().unwrap().ends_with("000.png"));
    let images = reconad::data::mvtec::open_category(&cat)
        .unwrap()
        .test
        .len();
    assert_eq!(metrics["counts"]["images"], images - 1);
}

#[test]
fn eval_writes_neither_among_its_inputs_nor_over_foreign_files() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixture().join("ens/member-1");
    let cat = crate::common::tiny_dataset(dir.path(), reconad::data::synth::SynthCategory::Disc);
    let before = crate::common::files_below(&cat);
    // Into the data set (its test folder): the heat maps would become test images.
    crate::common::eval(&model, &cat.join("test"))
        .arg(&cat)
        .fails_with("overlaps the input");
    assert_eq!(crate::common::files_below(&cat), before);
    // A folder holding someone else's files: only with --force.
    let out = dir.path().join("mine");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "keep me").unwrap();
    crate::common::eval(&model, &out)
        .arg(&cat)
        .fails_with("did not write (e.g. notes.txt)");
    crate::common::eval(&model, &out)
        .arg(&cat)
        .arg("--force")
        .ok();
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "keep me"
    );
    // Its own earlier output is replaced without --force.
    crate::common::eval(&model, &out)
        .arg(&cat)
        .arg("--force")
        .ok();
    let again = dir.path().join("again");
    crate::common::eval(&model, &again).arg(&cat).ok();
    crate::common::eval(&model, &again).arg(&cat).ok();
}

#[test]
fn bench_prints_one_machine_readable_line_per_measurement() {
    let dir = tempfile::tempdir().unwrap();
    let out = Cmd::new([
        "bench",
        "--size",
        "32",
        "--batch",
        "2",
        "--steps",
        "1",
        "--limit",
        "2",
        "--spec-working-size",
        "64",
        "--work",
    ])
    .arg(dir.path())
    .stdout();
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("BENCH ")).collect();
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "kind=train_step",
            "kind=train_step",
            "kind=train_step",
            "kind=train_epoch",
            "kind=score",
            "kind=score",
            "kind=score",
            "kind=score_memory"
        ],
        "{out}"
    );
    for line in &lines {
        let value = |key: &str| {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                .map(|v| v.parse::<f64>().unwrap())
        };
        let v = value("images_per_s").or(value("peak_rss_mb")).unwrap();
        assert!(v > 0.0 && v.is_finite(), "{line}");
    }
    assert!(lines[4].contains("profile=default") && lines[4].ends_with("family=reconstruction"));
    assert!(lines[5].contains("profile=default") && lines[5].ends_with("family=head"));
    assert!(lines[6].contains("profile=spec5") && lines[6].contains("windows=16,32,64"));
    assert!(lines[7].contains("image=1024x1024"), "{}", lines[7]);
}

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

//! Bad input: every problem is a clear error naming the file, with exit code 1 and no panic.

use std::path::Path;

use crate::common::{tiny_config, tiny_dataset, Cmd};
use reconad::data::check::{check_dataset, CheckOptions};
use reconad::data::image_io::ChannelMode;
use reconad::data::mvtec::open_category;
use reconad::data::synth::SynthCategory;
use reconad::data::Severity;
use reconad::error::Error;

fn options() -> CheckOptions {
    CheckOptions {
        val_fraction: 0.1,
        seed: 42,
        channels: ChannelMode::Auto,
    }
}

/// `reconad data check <dir>`.
fn check_cli(dir: &Path) -> Cmd {
    Cmd::new(["data", "check"]).arg(dir)
}

#[test]
fn missing_root_folder_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dataset");
    let all = check_cli(&missing).fails_with(missing.to_str().unwrap());
    assert!(all.contains("folder not found"), "{all}");
}

#[test]
fn missing_train_good_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("widget");
    std::fs::create_dir_all(cat.join("train/bad")).unwrap();
    std::fs::create_dir_all(cat.join("test/good")).unwrap();
    let err = open_category(&cat).unwrap_err();
    assert!(matches!(err, Error::MissingDir { .. }), "{err}");
    check_cli(&cat).fails_with(cat.join("train/good").to_str().unwrap());
}

#[test]
fn unknown_category_lists_the_available_ones() {
    let dir = tempfile::tempdir().unwrap();
    tiny_dataset(dir.path(), SynthCategory::Disc);
    let all = check_cli(dir.path())
        .args(["--category", "bottle"])
        .fails_with("bottle");
    assert!(all.contains("available: disc"), "{all}");
}

#[test]
fn empty_train_good_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cat = dir.path().join("widget");
    std::fs::create_dir_all(cat.join("train/good")).unwrap();
    std::fs::write(cat.join("train/good/.DS_Store"), b"junk").unwrap();
    std::fs::write(cat.join("train/good/notes.txt"), b"not an image").unwrap();
    let err = open_category(&cat).unwrap_err();
    assert!(matches!(err, Error::EmptyTrain { .. }), "{err}");
    let all = check_cli(&cat).fails_with(cat.join("train/good").to_str().unwrap());
    assert!(all.contains("no images"), "{all}");
}

#[test]
fn corrupt_image_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cat = tiny_dataset(dir.path(), SynthCategory::Weave);
    let bad = cat.join("train/good/003.png");
    std::fs::write(&bad, b"this is not a png at all").unwrap();
    let report = check_dataset(&open_category(&cat).unwrap(), &options());
    let errors: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{}", report.to_text());
    assert_eq!(errors[0].path, bad);
    let all = check_cli(&cat).fails_with(bad.to_str().unwrap());
    assert!(all.contains("cannot decode"), "{all}");
}

#[test]
fn truncated_image_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cat = tiny_dataset(dir.path(), SynthCategory::Weave);
    let bad = cat.join("test/good/001.png");
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 2]).unwrap();
    let report = check_dataset(&open_category(&cat).unwrap(), &options());
    assert!(!report.is_ok());
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.path == bad && f.severity == Severity::Error),
        "{}",
        report.to_text()
    );
    check_cli(&cat).fails_with(bad.to_str().unwrap());
}

#[test]
fn truncated_jpeg_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cat = tiny_dataset(dir.path(), SynthCategory::Grain);
    let src = cat.join("train/good/000.png");
    let bad = cat.join("train/good/100.jpg");
    let img = image::open(&src).unwrap();
    img.save(&bad).unwrap();
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    check_cli(&cat).fails_with(bad.to_str().unwrap());
}

#[test]
fn mask_of_another_size_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cat = tiny_dataset(dir.path(), SynthCategory::Disc);
    let mask = cat.join("ground_truth/crack/000_mask.png");
    image::GrayImage::new(40, 48).save(&mask).unwrap();
    let report = check_dataset(&open_category(&cat).unwrap(), &options());
    let finding = report
        .findings
        .iter()
        .find(|f| f.path == mask)
        .expect("mask reported");
    assert_eq!(finding.severity, Severity::Error);
    assert!(finding.message.contains("40x48"), "{}", finding.message);
    let all = check_cli(&cat).fails_with(mask.to_str().unwrap());
    assert!(all.contains("48x48"), "{all}");
}

#[test]
fn mask_with_no_image_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let cat = tiny_dataset(dir.path(), SynthCategory::Disc);
    let orphan = cat.join("ground_truth/crack/007_mask.png");
    image::GrayImage::new(48, 48).save(&orphan).unwrap();
    let lonely_defect = cat.join("ground_truth/dent");
    std::fs::create_dir_all(&lonely_defect).unwrap();
    image::GrayImage::new(48, 48)
        .save(lonely_defect.join("000_mask.png"))
        .unwrap();
    let report = check_dataset(&open_category(&cat).unwrap(), &options());
    assert_eq!(report.errors(), 2, "{}", report.to_text());
    let all = check_cli(&cat).fails_with(orphan.to_str().unwrap());
    assert!(all.contains("mask with no image"), "{all}");
    assert!(
        all.contains(lonely_defect.join("000_mask.png").to_str().unwrap()),
        "{all}"
    );
}

#[test]
fn defect_without_mask_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let cat = tiny_dataset(dir.path(), SynthCategory::Disc);
    std::fs::remove_file(cat.join("ground_truth/stain/000_mask.png")).unwrap();
    let report = check_dataset(&open_category(&cat).unwrap(), &options());
    assert!(report.is_ok(), "{}", report.to_text());
    let w = report
        .findings
        .iter()
        .find(|f| f.severity == Severity::Warning)
        .unwrap();
    assert_eq!(w.path, cat.join("test/stain/000.png"));
    check_cli(&cat).ok();
}

#[test]
fn mixed_image_sizes_are_allowed_but_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cat = tiny_dataset(dir.path(), SynthCategory::Weave);
    let img = image::open(cat.join("train/good/000.png")).unwrap();
    img.resize_exact(64, 40, image::imageops::FilterType::Triangle)
        .save(cat.join("train/good/000.png"))
        .unwrap();
    let report = check_dataset(&open_category(&cat).unwrap(), &options());
    assert!(report.is_ok(), "{}", report.to_text());
    assert_eq!(report.sizes.len(), 2);
    assert!(report
        .findings
        .iter()
        .any(|f| f.message.contains("mixed image sizes") && f.message.contains("64x40")));
    let all = check_cli(&cat).ok();
    assert!(all.contains("mixed image sizes"), "{all}");
}

#[test]
fn unrelated_files_and_extra_folders_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let cat = tiny_dataset(dir.path(), SynthCategory::Weave);
    std::fs::write(cat.join("license.txt"), b"CC").unwrap();
    std::fs::write(cat.join("test/good/.DS_Store"), b"junk").unwrap();
    std::fs::write(cat.join("test/good/._000.png"), b"apple double").unwrap();
    std::fs::create_dir_all(cat.join("validation/good")).unwrap();
    std::fs::write(cat.join("validation/good/000.png"), b"not read").unwrap();
    let ds = open_category(&cat).unwrap();
    let report = check_dataset(&ds, &options());
    assert!(report.findings.is_empty(), "{}", report.to_text());
    assert_eq!(ds.train.len(), 6);
    assert_eq!(ds.test.len(), 2 + 5);
    assert!(ds.ignored.contains(&cat.join("test/good/.DS_Store")));
}

#[test]
fn no_data_set_given_is_a_clear_error() {
    Cmd::new(["data", "check"]).fails_with("no data set given");
}

#[test]
fn folder_that_is_not_a_data_set_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("random/stuff")).unwrap();
    let all = check_cli(dir.path()).fails_with(dir.path().to_str().unwrap());
    assert!(all.contains("not an MVTec AD category"), "{all}");
}

#[test]
fn check_of_a_root_covers_every_category_and_fails_if_one_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    reconad::data::synth::generate(dir.path(), &tiny_config(4, &SynthCategory::ALL), false)
        .unwrap();
    let all = check_cli(dir.path()).ok();
    for c in SynthCategory::ALL {
        assert!(all.contains(&format!("data set {}", c.name())), "{all}");
    }
    let bad = dir.path().join("grain/test/crack/000.png");
    std::fs::write(&bad, b"garbage").unwrap();
    check_cli(dir.path()).fails_with(bad.to_str().unwrap());
}

#[test]
fn mixed_gray_and_colour_follow_one_channel_policy() {
    let dir = tempfile::tempdir().unwrap();
    let cat = tiny_dataset(dir.path(), SynthCategory::Disc);
    let gray = cat.join("train/good/000.png");
    image::open(&gray).unwrap().to_luma8().save(&gray).unwrap();
    // `auto` converts nothing: check reports an error, train refuses before writing a run.
    let report = check_dataset(&open_category(&cat).unwrap(), &options());
    assert!(!report.is_ok(), "{}", report.to_text());
    let all = check_cli(&cat).fails_with("mixed gray and colour images (1 gray");
    assert!(all.contains("--channels rgb"), "{all}");
    let run = dir.path().join("run");
    let all = crate::common::train(&cat, &run)
        .args(["--epochs", "1", "--quiet"])
        .fails_with("mixed gray and colour images");
    assert!(all.contains(gray.to_str().unwrap()), "{all}");
    assert!(
        !run.join("config.json").exists(),
        "a refused training writes no run"
    );
    // An explicit policy converts, and says so.
    let rgb = CheckOptions {
        channels: ChannelMode::Rgb,
        ..options()
    };
    let report = check_dataset(&open_category(&cat).unwrap(), &rgb);
    assert!(report.is_ok(), "{}", report.to_text());
    assert!(report
        .findings
        .iter()
        .any(|f| f.message.contains("all converted to 3 channel(s)")));
    check_cli(&cat).args(["--channels", "rgb"]).ok();
    // The same rule when scoring: a gray image for a colour model under `auto`.
    assert!(ChannelMode::Auto
        .admits(1, 3)
        .unwrap_err()
        .contains("--channels rgb"));
    ChannelMode::Rgb.admits(1, 3).unwrap();
    ChannelMode::Auto.admits(3, 3).unwrap();
}

#[test]
fn a_soft_mask_is_a_warning_with_counts() {
    let dir = tempfile::tempdir().unwrap();
    let cat = tiny_dataset(dir.path(), SynthCategory::Disc);
    let mask = cat.join("ground_truth/crack/000_mask.png");
    // A blurred (resized) mask: grey levels at the rim.
    let soft = image::imageops::blur(&image::open(&mask).unwrap().to_luma8(), 2.0);
    soft.save(&mask).unwrap();
    let report = check_dataset(&open_category(&cat).unwrap(), &options());
    assert!(report.is_ok(), "{}", report.to_text());
    let w = report
        .findings
        .iter()
        .find(|f| f.path == mask)
        .expect("soft mask reported");
    assert_eq!(w.severity, Severity::Warning);
    assert!(w.message.contains("mask is not binary"), "{}", w.message);
    assert!(w.message.contains(" %)"), "{}", w.message);
}

#[test]
fn a_folder_too_small_to_split_is_named_by_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one");
    std::fs::create_dir_all(&one).unwrap();
    image::RgbImage::from_pixel(32, 32, image::Rgb([9, 9, 9]))
        .save(one.join("a.png"))
        .unwrap();
    // A bare relative folder name: the error names it, not an empty path.
    let all = Cmd::new(["train", "--quiet", "--normal", "one", "--out", "run"])
        .current_dir(dir.path())
        .fails_with("cannot split the normal training images");
    assert!(all.contains("one: cannot split"), "{all}");
    assert!(!all.contains(": :"), "{all}");
}

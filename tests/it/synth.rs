//! The synthetic data generator: determinism, layout, masks, and agreement with `data check`.

use std::path::Path;

use crate::common::{files_below, tiny_config, Cmd};
use reconad::data::check::{check_dataset, CheckOptions};
use reconad::data::image_io::{self, ChannelMode};
use reconad::data::mvtec::open_category;
use reconad::data::synth::{self, DefectKind, SynthCategory, DEFECT_AREA_RANGE};

/// `reconad synth --out <out>`.
fn synth_cli(out: &Path) -> Cmd {
    Cmd::new(["synth", "--out"]).arg(out)
}

#[test]
fn same_seed_gives_byte_identical_files_and_another_seed_does_not() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = tempfile::tempdir().unwrap();
    let config = tiny_config(11, &SynthCategory::ALL);
    synth::generate(a.path(), &config, false).unwrap();
    synth::generate(b.path(), &config, false).unwrap();
    let files = files_below(a.path());
    assert_eq!(files, files_below(b.path()));
    assert_eq!(files.len(), synth::expected_files(a.path(), &config).len());
    for f in &files {
        let (x, y) = (
            std::fs::read(a.path().join(f)).unwrap(),
            std::fs::read(b.path().join(f)).unwrap(),
        );
        assert!(
            x == y,
            "{} differs between two runs with the same seed",
            f.display()
        );
    }
    let other = tiny_config(12, &SynthCategory::ALL);
    synth::generate(c.path(), &other, false).unwrap();
    let differing = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
        .filter(|f| {
            std::fs::read(a.path().join(f)).unwrap() != std::fs::read(c.path().join(f)).unwrap()
        })
        .count();
    let pngs = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
        .count();
    assert!(
        differing > pngs * 9 / 10,
        "only {differing} of {pngs} images changed with the seed"
    );
}

#[test]
fn cli_synth_twice_with_the_same_seed_is_identical() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for dir in [a.path(), b.path()] {
        synth_cli(dir)
            .args([
                "--seed",
                "5",
                "--size",
                "40",
                "--train",
                "3",
                "--test-good",
                "1",
                "--test-per-defect",
                "1",
                "--category",
                "disc",
            ])
            .ok();
    }
    let files = files_below(a.path());
    assert!(!files.is_empty());
    for f in &files {
        assert_eq!(
            std::fs::read(a.path().join(f)).unwrap(),
            std::fs::read(b.path().join(f)).unwrap()
        );
    }
}

#[test]
fn synthetic_data_passes_check_with_expected_counts() {
    let dir = tempfile::tempdir().unwrap();
    let config = synth::SynthConfig {
        seed: 3,
        size: 64,
        train: 10,
        test_good: 3,
        test_per_defect: 2,
        categories: SynthCategory::ALL.to_vec(),
    };
    synth::generate(dir.path(), &config, false).unwrap();
    let options = CheckOptions {
        val_fraction: 0.1,
        seed: 42,
        channels: ChannelMode::Auto,
    };
    for category in SynthCategory::ALL {
        let ds = open_category(&dir.path().join(category.name())).unwrap();
        let report = check_dataset(&ds, &options);
        assert!(report.is_ok(), "{}", report.to_text());
        assert!(report.findings.is_empty(), "{}", report.to_text());
        assert_eq!(ds.train.len(), 10);
        assert_eq!(ds.test.iter().filter(|i| i.defect == "good").count(), 3);
        assert_eq!(report.defect_images, 2 * DefectKind::ALL.len());
        assert_eq!(report.masks, report.defect_images);
        for d in DefectKind::ALL {
            assert_eq!(ds.test.iter().filter(|i| i.defect == d.name()).count(), 2);
        }
        assert_eq!(report.sizes.keys().collect::<Vec<_>>(), vec!["64x64"]);
        let expected_channels = if category.is_gray() { 1 } else { 3 };
        assert_eq!(
            report.model_channels,
            expected_channels,
            "{}",
            category.name()
        );
        let split = report.split.unwrap();
        assert_eq!((split.train, split.val), (9, 1));
    }
}

#[test]
fn masks_are_exact_and_within_the_size_range() {
    let dir = tempfile::tempdir().unwrap();
    let config = synth::SynthConfig {
        seed: 9,
        size: 128,
        train: 2,
        test_good: 0,
        test_per_defect: 3,
        categories: SynthCategory::ALL.to_vec(),
    };
    synth::generate(dir.path(), &config, false).unwrap();
    for category in SynthCategory::ALL {
        let ds = open_category(&dir.path().join(category.name())).unwrap();
        for item in ds.defects() {
            let mask_path = item
                .mask
                .as_ref()
                .expect("every synthetic defect has a mask");
            let mask =
                image_io::load_mask(mask_path, &item.path, reconad::Size::square(128)).unwrap();
            let share = mask.foreground() as f64 / (128.0 * 128.0);
            assert!(
                (DEFECT_AREA_RANGE.0..=DEFECT_AREA_RANGE.1).contains(&share),
                "{}: defect covers {:.3} % of the image",
                item.path.display(),
                share * 100.0
            );
        }
    }
}

#[test]
fn generating_into_an_existing_folder_needs_force() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config(1, &[SynthCategory::Grain]);
    synth::generate(dir.path(), &config, false).unwrap();
    let err = synth::generate(dir.path(), &config, false).unwrap_err();
    assert!(err.to_string().contains("grain"), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    synth::generate(dir.path(), &config, true).unwrap();

    // A folder not made by synth is never replaced, even with --force.
    let foreign = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(foreign.path().join("grain/train/good")).unwrap();
    let err = synth::generate(foreign.path(), &config, true).unwrap_err();
    assert!(err.to_string().contains("synth.json"), "{err}");
    assert!(foreign.path().join("grain/train/good").is_dir());
}

#[test]
fn invalid_synth_settings_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    synth_cli(dir.path())
        .args(["--size", "8"])
        .fails_with("size");
    synth_cli(dir.path())
        .args(["--train", "1"])
        .fails_with("train");
}

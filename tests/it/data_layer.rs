//! Data layer: decoding (8/16-bit, gray/RGB, JPEG), masks, the split and the folder data set.

use crate::common::{tiny_dataset, Cmd};
use image::{ImageBuffer, Luma, Rgb};
use reconad::data::folder::{open_folder, FolderSpec};
use reconad::data::image_io::{self, ChannelMode};
use reconad::data::mvtec::open_category;
use reconad::data::split::Split;
use reconad::data::synth::SynthCategory;
use reconad::data::{Label, Part};

#[test]
fn decodes_8_and_16_bit_gray_and_rgb_into_unit_range_chw() {
    let dir = tempfile::tempdir().unwrap();
    let gray16 = dir.path().join("g16.png");
    ImageBuffer::<Luma<u16>, _>::from_fn(4, 2, |x, _| Luma([(x as u16) * 21845]))
        .save(&gray16)
        .unwrap();
    let img = image_io::load_chw(&gray16, 1, None).unwrap();
    assert_eq!((img.channels, img.height, img.width), (1, 2, 4));
    for (x, want) in [0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0].into_iter().enumerate() {
        assert!(
            (img.get(0, 1, x) - want).abs() < 1e-4,
            "x={x}: {}",
            img.get(0, 1, x)
        );
    }
    let info = image_io::probe(&gray16).unwrap();
    assert_eq!((info.channels, info.bit_depth), (1, 16));

    let rgb8 = dir.path().join("rgb.png");
    ImageBuffer::<Rgb<u8>, _>::from_fn(3, 3, |x, y| Rgb([255, (x * 100) as u8, (y * 50) as u8]))
        .save(&rgb8)
        .unwrap();
    let img = image_io::load_chw(&rgb8, 3, None).unwrap();
    assert_eq!((img.channels, img.height, img.width), (3, 3, 3));
    assert_eq!(img.get(0, 2, 2), 1.0);
    assert!((img.get(1, 0, 2) - 200.0 / 255.0).abs() < 1e-6);
    assert!((img.get(2, 2, 0) - 100.0 / 255.0).abs() < 1e-6);
    // Planar layout: the green plane starts after the whole red plane.
    assert_eq!(img.data[9 + 2], img.get(1, 0, 2));
    // Gray replicated to RGB, RGB reduced to gray.
    let as_rgb = image_io::load_chw(&gray16, 3, None).unwrap();
    assert_eq!(as_rgb.get(0, 0, 3), as_rgb.get(2, 0, 3));
    assert_eq!(image_io::load_chw(&rgb8, 1, None).unwrap().channels, 1);
}

#[test]
fn resizes_with_antialiasing_and_reads_jpeg() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checker.jpg");
    // A fine checkerboard averages to mid-gray when downscaled with a proper filter.
    ImageBuffer::<Rgb<u8>, _>::from_fn(64, 64, |x, y| {
        if (x + y) % 2 == 0 {
            Rgb([255; 3])
        } else {
            Rgb([0; 3])
        }
    })
    .save(&path)
    .unwrap();
    let img = image_io::load_chw(&path, 3, Some(reconad::Size::new(16, 8))).unwrap();
    assert_eq!((img.height, img.width), (8, 16));
    let mean = img.data.iter().sum::<f32>() / img.data.len() as f32;
    assert!((mean - 0.5).abs() < 0.08, "mean {mean}");
    assert!(img.data.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn masks_count_values_above_half_their_maximum_as_foreground() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.png");
    let write = |values: [u8; 4]| {
        ImageBuffer::<Luma<u8>, _>::from_fn(4, 1, |x, _| Luma([values[x as usize]]))
            .save(&path)
            .unwrap();
        image_io::load_mask(&path, &path, reconad::Size::new(4, 1))
            .unwrap()
            .data
    };
    // 0/255 and 0/254 masks as drawn; a soft edge (1, 100) is not defect; 0/1 masks work too.
    assert_eq!(write([0, 254, 255, 1]), vec![false, true, true, false]);
    assert_eq!(write([0, 100, 255, 200]), vec![false, false, true, true]);
    assert_eq!(write([0, 1, 1, 0]), vec![false, true, true, false]);
    assert_eq!(write([0, 0, 0, 0]), vec![false; 4]);
    write([0, 254, 255, 1]);
    let err = image_io::load_mask(
        &path,
        std::path::Path::new("img.png"),
        reconad::Size::new(5, 1),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("m.png") && err.to_string().contains("img.png"),
        "{err}"
    );
}

#[test]
fn channel_mode_keeps_gray_categories_gray() {
    assert_eq!(ChannelMode::Auto.resolve([1, 1, 1]), 1);
    assert_eq!(ChannelMode::Auto.resolve([1, 3]), 3);
    assert_eq!(ChannelMode::Rgb.resolve([1]), 3);
    assert_eq!(ChannelMode::Gray.resolve([3]), 1);
}

fn dataset_with_train(n: usize) -> reconad::data::Dataset {
    let dir = tempfile::tempdir().unwrap().keep();
    let cfg = reconad::data::synth::SynthConfig {
        seed: 1,
        size: 32,
        train: n,
        test_good: 1,
        test_per_defect: 1,
        categories: vec![SynthCategory::Grain],
    };
    reconad::data::synth::generate(&dir, &cfg, false).unwrap();
    open_category(&dir.join("grain")).unwrap()
}

#[test]
fn split_is_seeded_by_image_and_sized_by_fraction() {
    let ds = dataset_with_train(30);
    let a = Split::new(&ds, 0.1, 42).unwrap();
    let b = Split::new(&ds, 0.1, 42).unwrap();
    let c = Split::new(&ds, 0.1, 43).unwrap();
    assert_eq!(a, b);
    assert_ne!(a.val, c.val);
    assert_eq!((a.train.len(), a.val.len()), (27, 3));
    let d = Split::new(&ds, 0.15, 42).unwrap();
    assert_eq!((d.train.len(), d.val.len()), (25, 5));
    // No image in both parts; together they are the training images, stored relative to the root.
    assert!(a.val.iter().all(|p| !a.train.contains(p)));
    let mut all: Vec<_> = a.train.iter().chain(&a.val).cloned().collect();
    all.sort();
    let expected: Vec<_> = ds
        .train
        .iter()
        .map(|i| i.path.strip_prefix(&ds.root).unwrap().to_path_buf())
        .collect();
    assert_eq!(all, expected);
}

#[test]
fn split_round_trips_through_json_and_detects_changed_data() {
    let ds = dataset_with_train(12);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("split.json");
    let split = Split::new(&ds, 0.1, 7).unwrap();
    split.save(&path).unwrap();
    let loaded = Split::load(&path).unwrap();
    assert_eq!(loaded, split);
    let (train, val) = loaded.resolve(&ds, &path).unwrap();
    assert_eq!((train.len(), val.len()), (11, 1));
    assert!(val
        .iter()
        .all(|i| i.label == Label::Normal && i.part == Part::Train));

    // An image added to the data set after the split was made.
    let extra = ds.root.join("train/good/999.png");
    std::fs::copy(&ds.train[0].path, &extra).unwrap();
    let grown = open_category(&ds.root).unwrap();
    let err = loaded.resolve(&grown, &path).unwrap_err();
    assert!(
        err.to_string().contains("999.png") && err.to_string().contains("split.json"),
        "{err}"
    );
    std::fs::remove_file(&extra).unwrap();

    // An image removed.
    std::fs::remove_file(&ds.train[3].path).unwrap();
    let shrunk = open_category(&ds.root).unwrap();
    let err = loaded.resolve(&shrunk, &path).unwrap_err();
    assert!(err.to_string().contains("003.png"), "{err}");

    // A broken file.
    std::fs::write(&path, b"{ not json").unwrap();
    let err = Split::load(&path).unwrap_err();
    assert!(err.to_string().contains("split.json"), "{err}");
}

#[test]
fn split_rejects_bad_fractions_and_too_few_images() {
    let ds = dataset_with_train(5);
    for bad in [0.0, -0.1, 0.6, f64::NAN] {
        let err = Split::new(&ds, bad, 1).unwrap_err();
        assert!(err.to_string().contains("val_fraction"), "{err}");
    }
    let mut one = ds.clone();
    one.train.truncate(1);
    let err = Split::new(&one, 0.1, 1).unwrap_err();
    assert!(err.to_string().contains("at least 2"), "{err}");
}

#[test]
fn cli_split_writes_a_reloadable_split() {
    let dir = tempfile::tempdir().unwrap();
    let cat = tiny_dataset(dir.path(), SynthCategory::Disc);
    let out_path = dir.path().join("runs/split.json");
    Cmd::new(["data", "split"])
        .arg(&cat)
        .arg("--out")
        .arg(&out_path)
        .args(["--val-fraction", "0.15"])
        .ok();
    let split = Split::load(&out_path).unwrap();
    assert_eq!((split.train.len(), split.val.len()), (5, 1));
    assert_eq!(split.dataset, "disc");
}

#[test]
fn folder_data_set_matches_masks_by_stem_and_holds_out_normals() {
    let dir = tempfile::tempdir().unwrap();
    let cat = tiny_dataset(dir.path(), SynthCategory::Weave);
    let user = dir.path().join("user");
    let copy = |from: &str, to: &str| {
        let to = user.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(cat.join(from), to).unwrap();
    };
    for i in 0..6 {
        copy(&format!("train/good/{i:03}.png"), &format!("ok/{i:03}.png"));
    }
    copy("test/crack/000.png", "bad_crack/c1.png");
    copy("test/stain/000.png", "bad_stain/s1.png");
    copy(
        "ground_truth/crack/000_mask.png",
        "masks/bad_crack/c1_mask.png",
    );
    copy("ground_truth/stain/000_mask.png", "masks/s1.png");
    copy("ground_truth/stain/000_mask.png", "masks/zz_mask.png");
    let spec = FolderSpec {
        name: Some("mine".into()),
        normal: user.join("ok"),
        abnormal: vec![user.join("bad_crack"), user.join("bad_stain")],
        masks: Some(user.join("masks")),
        normal_test: None,
        normal_test_fraction: 0.2,
        seed: 3,
    };
    let ds = open_folder(&spec).unwrap();
    assert_eq!(ds.train.len(), 5);
    assert_eq!(
        ds.test.iter().filter(|i| i.label == Label::Normal).count(),
        1
    );
    let crack = ds.test.iter().find(|i| i.defect == "bad_crack").unwrap();
    assert_eq!(
        crack.mask.as_deref(),
        Some(user.join("masks/bad_crack/c1_mask.png").as_path())
    );
    let stain = ds.test.iter().find(|i| i.defect == "bad_stain").unwrap();
    assert_eq!(
        stain.mask.as_deref(),
        Some(user.join("masks/s1.png").as_path())
    );
    // The unmatched mask is an error naming it.
    assert_eq!(ds.findings.len(), 1);
    assert_eq!(ds.findings[0].path, user.join("masks/zz_mask.png"));

    // `data check --normal ok --abnormal <each> --masks masks`, below `user`.
    let check = |abnormal: &[&str]| {
        let mut cmd = Cmd::new(["data", "check", "--normal"]).arg(user.join("ok"));
        for a in abnormal {
            cmd = cmd.arg("--abnormal").arg(user.join(a));
        }
        cmd.arg("--masks").arg(user.join("masks"))
    };
    check(&["bad_crack", "bad_stain"]).fails_with(user.join("masks/zz_mask.png").to_str().unwrap());
    std::fs::remove_file(user.join("masks/zz_mask.png")).unwrap();
    copy("test/good/000.png", "ok_test/t0.png");
    // s1.png is now a mask without an image (bad_stain not given).
    check(&["bad_crack"])
        .arg("--normal-test")
        .arg(user.join("ok_test"))
        .fails_with(user.join("masks/s1.png").to_str().unwrap());
}

#[test]
fn folder_data_set_errors_name_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let spec = FolderSpec {
        name: None,
        normal: dir.path().join("nope"),
        abnormal: vec![],
        masks: None,
        normal_test: None,
        normal_test_fraction: 0.2,
        seed: 0,
    };
    let err = open_folder(&spec).unwrap_err();
    assert!(err.to_string().contains("nope"), "{err}");
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    let spec = FolderSpec {
        normal: dir.path().join("empty"),
        ..spec
    };
    let err = open_folder(&spec).unwrap_err();
    assert!(
        err.to_string().contains("empty") && err.to_string().contains("no images"),
        "{err}"
    );

    // Testing on the training images would leak: refused.
    let ok = dir.path().join("ok");
    std::fs::create_dir_all(&ok).unwrap();
    image::GrayImage::new(8, 8).save(ok.join("a.png")).unwrap();
    let spec = FolderSpec {
        normal: ok.clone(),
        normal_test: Some(dir.path().join("./ok")),
        ..spec
    };
    let err = open_folder(&spec).unwrap_err();
    assert!(err.to_string().contains("normal_test"), "{err}");
}

#[test]
fn info_reports_the_backend_and_rejects_missing_ones() {
    let all = Cmd::new("info").ok();
    assert!(all.contains("backend cpu ok"), "{all}");
    assert!(all.contains(reconad::device::BURN_VERSION), "{all}");
    if !cfg!(feature = "cuda") {
        Cmd::new(["info", "--backend", "cuda"]).fails_with("--features cuda");
    }
}

#[test]
fn burn_version_constant_matches_the_lock_file() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let entry = format!(
        "name = \"burn\"\nversion = \"{}\"",
        reconad::device::BURN_VERSION
    );
    assert!(
        lock.contains(&entry),
        "Cargo.lock does not pin burn {}",
        reconad::device::BURN_VERSION
    );
}

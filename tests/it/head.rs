//! The discriminative head (issue 10 item 4): it trains after the autoencoder, resumes to the
//! same weights as an uninterrupted run, is scored through calibration's candidates, can be
//! added to a finished run from the command line, and is a clear error where a model has none.

use std::path::{Path, PathBuf};

use crate::common::{self, Cmd};
use reconad::calibrate::default_candidates;
use reconad::data::mvtec::open_category;
use reconad::data::synth::{self, SynthCategory, SynthConfig};
use reconad::detector::single::TrainedModel;
use reconad::device::Backend;
use reconad::model::head::HeadConfig;
use reconad::score::ErrorMaps;
use reconad::train::head::{load_head_state, HeadTrainConfig};
use reconad::train::{self, DataRef, RunDir, TrainConfig, TrainOptions};

/// A 32 px synthetic `disc` category with 16 normal training images.
fn disc_data(dir: &Path) -> PathBuf {
    let cfg = SynthConfig {
        seed: 7,
        size: 32,
        train: 16,
        test_good: 2,
        test_per_defect: 1,
        categories: vec![SynthCategory::Disc],
    };
    synth::generate(dir, &cfg, false).unwrap();
    dir.join("disc")
}

/// Whole images at 32 px, the tiny preset, 2 epochs, then a tiny head for 4 steps.
fn config_with_head() -> TrainConfig {
    let mut c = TrainConfig::default().with_whole_image(32).with_epochs(2);
    c.preset = reconad::model::unet::Preset::Tiny;
    c.batch_size = 4;
    c.val_fraction = 0.25;
    c.head = Some(HeadTrainConfig {
        arch: HeadConfig {
            widths: vec![4, 8],
            bottleneck: 8,
        },
        steps: 4,
        ..HeadTrainConfig::default()
    });
    c
}

fn train_new(data: &Path, run: &Path, options: &TrainOptions) -> train::TrainSummary {
    let ds = open_category(data).unwrap();
    let data_ref = DataRef::Mvtec {
        category_dir: data.to_path_buf(),
    };
    reconad::pipeline::train_and_calibrate(
        &RunDir::new(run),
        &ds,
        data_ref,
        config_with_head(),
        false,
        options,
    )
    .unwrap()
    .summary
}

#[test]
fn a_head_trains_after_the_autoencoder_resumes_the_same_and_is_a_candidate() {
    let dir = tempfile::tempdir().unwrap();
    let data = disc_data(dir.path());
    let whole = dir.path().join("whole");
    let summary = train_new(&data, &whole, &TrainOptions::quiet());
    assert!(summary.finished());
    let head = summary.head.expect("the head stage ran");
    // 12 training images in batches of 4: 3 steps an epoch, so 4 steps are 2 epochs.
    assert_eq!((head.epochs_done, head.finished), (2, true));
    assert!(head.losses.iter().all(|l| l.is_finite() && *l > 0.0));
    assert!(whole.join("head.safetensors").is_file());

    // Paused after the autoencoder's 2 epochs and one head epoch, then resumed.
    let paused = dir.path().join("paused");
    let first = train_new(
        &data,
        &paused,
        &TrainOptions {
            max_epochs_this_call: Some(3),
            ..TrainOptions::quiet()
        },
    );
    assert!(first.state.finished && !first.finished());
    assert!(!paused.join("head.safetensors").exists());
    assert!(
        !paused.join("scoring.json").exists(),
        "calibrated while paused"
    );
    assert_eq!(
        load_head_state(&RunDir::new(&paused))
            .unwrap()
            .unwrap()
            .epochs_done,
        1
    );
    let resumed =
        reconad::pipeline::resume_and_calibrate(&RunDir::new(&paused), &TrainOptions::quiet())
            .unwrap();
    assert!(resumed.summary.finished());
    assert!(resumed.profile.is_some(), "the finished run was calibrated");
    let (p, w) = (
        common::safetensors_tensors(&paused.join("head.safetensors")),
        common::safetensors_tensors(&whole.join("head.safetensors")),
    );
    assert!(p.len() > 10);
    assert!(
        p == w,
        "the resumed head differs from the uninterrupted one"
    );

    // Calibration tries the head's maps; a head map scores every image.
    let model = TrainedModel::open(&whole, Backend::Cpu).unwrap();
    let errors: Vec<ErrorMaps> = default_candidates(&model).iter().map(|c| c.error).collect();
    assert!(errors.contains(&ErrorMaps::Head) && errors.contains(&ErrorMaps::HeadSsim));
    let profile = reconad::calibrate::calibrate_model(
        &model,
        reconad::score::ScoringConfig {
            error: ErrorMaps::Head,
            ..reconad::score::ScoringConfig::whole_image(32)
        },
        &reconad::util::progress::NoProgress,
    )
    .unwrap();
    assert!(profile.val_auroc.is_finite());

    // The candidates share one model pass over the validation set (soft blends included); the
    // profile equals the one of a model pass per candidate, to the bit.
    let mut model = model;
    for blends in [0, 1] {
        model.config.train.blend.per_image = blends;
        let calibrated = |share| {
            let p = reconad::calibrate::calibrate_candidates(
                &model,
                default_candidates(&model),
                share,
                &reconad::util::progress::NoProgress,
            )
            .unwrap();
            serde_json::to_string(&p).unwrap()
        };
        assert_eq!(calibrated(true), calibrated(false), "{blends} blends");
    }
}

#[test]
fn a_head_is_added_to_a_finished_run_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = disc_data(dir.path());
    let run = dir.path().join("run");
    let tiny = [
        "--preset",
        "tiny",
        "--whole-image",
        "32",
        "--epochs",
        "1",
        "--batch",
        "4",
        "--val-fraction",
        "0.25",
        "--quiet",
    ];
    common::train(&data, &run).args(tiny).ok();
    let no_head = TrainedModel::open(&run, Backend::Cpu).unwrap();
    assert!(default_candidates(&no_head)
        .iter()
        .all(|c| !c.error.needs_head()));
    // Scoring a head map without a head says what is missing.
    let all = common::eval(&run, &dir.path().join("e"))
        .args(["--error", "head", "--quiet"])
        .fails_with("discriminative head");
    assert!(all.contains("--head"), "{all}");

    // Other settings are still refused with --resume; --head is taken.
    Cmd::new(["train", "--quiet", "--head", "--seed", "3", "--resume"])
        .arg(&run)
        .fails_with("--seed");
    let out = Cmd::new(["train", "--quiet", "--head", "--resume"])
        .arg(&run)
        .ok();
    assert!(out.contains("head was added"), "{out}");
    let saved = RunDir::new(&run).load_config().unwrap();
    assert!(saved.train.head.is_some());
    assert!(run.join("head.safetensors").is_file());
    let profile: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("scoring.json")).unwrap()).unwrap();
    assert!(profile["config"]["error"].is_string(), "recalibrated");
    common::eval(&run, &dir.path().join("e2"))
        .args(["--error", "head", "--quiet"])
        .ok();
}

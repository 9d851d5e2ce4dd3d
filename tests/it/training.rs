//! Training: the tiny preset learns on synthetic data, runs are reproducible, an interrupted run
//! resumes, run directories hold what they promise, and bad settings are clear errors.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::{self, Cmd};
use reconad::data::mvtec::open_category;
use reconad::data::synth::{self, SynthCategory, SynthConfig};
use reconad::train::{self, TrainConfig, TrainOptions};
use reconad::train::{DataRef, RunDir};

/// A 64 px synthetic `disc` category with 40 normal training images.
fn disc_data(dir: &Path) -> std::path::PathBuf {
    let cfg = SynthConfig {
        seed: 42,
        size: 64,
        train: 40,
        test_good: 1,
        test_per_defect: 1,
        categories: vec![SynthCategory::Disc],
    };
    synth::generate(dir, &cfg, false).unwrap();
    dir.join("disc")
}

/// Tiny-model settings for tests: 64 px, a fast learning rate, evaluation every epoch.
fn tiny_config(epochs: usize, seed: u64) -> TrainConfig {
    let mut c = TrainConfig::default().with_image_size(64);
    c.preset = reconad::model::unet::Preset::Tiny;
    c.seed = seed;
    c = c.with_epochs(epochs);
    c.batch_size = 8;
    c.eval_every = 1;
    c.patience = 100;
    c.val_fraction = 0.25;
    c.optimizer.lr = 5e-3;
    // The U-Net with its skips: these tests are about the training loop (and a skip U-Net
    // shows the identity problem the best checkpoint guards against).
    c.no_skips = false;
    c.optimizer.schedule = reconad::train::LrSchedule::Constant;
    c.keep = reconad::train::KeepWeights::Best;
    c.head = None;
    c
}

fn quiet() -> TrainOptions<'static> {
    TrainOptions::quiet()
}

fn train(data: &Path, run: &Path, config: TrainConfig) -> reconad::train::TrainSummary {
    let ds = open_category(data).unwrap();
    let data_ref = DataRef::Mvtec {
        category_dir: data.to_path_buf(),
    };
    train::train_new(&RunDir::new(run), &ds, data_ref, config, false, &quiet()).unwrap()
}

/// history.csv without the wall-time column (the only one that may differ between runs).
fn history_without_time(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("history.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

#[test]
fn tiny_preset_learns_the_synthetic_disc() {
    let dir = tempfile::tempdir().unwrap();
    let data = disc_data(dir.path());
    let run = dir.path().join("run");
    let started = Instant::now();
    // Seed 2 at this size: the AUROC climbs from 0.5 to about 0.76 around epoch 15 and falls
    // again as the model learns the identity (SPEC §3), which is why the best checkpoint is
    // kept.
    let summary = train(&data, &run, tiny_config(20, 2));
    let rows = &summary.state.history;
    println!(
        "{}",
        std::fs::read_to_string(run.join("history.csv")).unwrap()
    );
    println!("20 epochs in {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(rows.len(), 20);
    let last = rows.len() - 1;
    assert!(
        rows[last].train_loss < 0.2 * rows[0].train_loss,
        "loss {} -> {}",
        rows[0].train_loss,
        rows[last].train_loss
    );
    let best = summary.state.best_auroc.unwrap();
    assert!(best > 0.7, "best CutPaste-val AUROC {best}");
    for file in [
        "config.json",
        "split.json",
        "env.json",
        "history.csv",
        "model-best.safetensors",
        "model-last.safetensors",
        "checkpoint/state.json",
    ] {
        assert!(run.join(file).is_file(), "{file} missing");
    }
    // The weights are a standard safetensors file: 8-byte header length, JSON header naming
    // the module paths.
    let tensors = common::safetensors_tensors(&run.join("model-best.safetensors"));
    let names: Vec<&String> = tensors.keys().collect();
    assert!(
        names.iter().any(|n| n.contains("encoders.0.conv1.weight")),
        "{names:?}"
    );
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("env.json")).unwrap()).unwrap();
    for key in ["reconad", "burn", "backend", "device", "rustc", "os", "cpu"] {
        assert!(env[key].is_string(), "env.json lacks {key}");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["train"]["seed"], 2);
    assert_eq!(config["model"]["widths"], serde_json::json!([4, 8, 16]));
}

#[test]
fn same_seed_same_history_other_seed_other_history() {
    let dir = tempfile::tempdir().unwrap();
    let data = disc_data(dir.path());
    let runs: Vec<_> = [(1, "a"), (1, "b"), (2, "c")]
        .into_iter()
        .map(|(seed, name)| {
            let run = dir.path().join(name);
            train(&data, &run, tiny_config(3, seed));
            run
        })
        .collect();
    let (a, b, c) = (
        history_without_time(&runs[0]),
        history_without_time(&runs[1]),
        history_without_time(&runs[2]),
    );
    assert_eq!(a.len(), 4);
    assert_eq!(a, b, "same seed, different history");
    assert_ne!(a, c, "different seed, same history");
    assert_eq!(
        std::fs::read(runs[0].join("split.json")).unwrap(),
        std::fs::read(runs[1].join("split.json")).unwrap()
    );
}

#[test]
fn a_fixed_schedule_runs_every_epoch_and_is_scored_with_the_last() {
    use reconad::detector::single::TrainedModel;
    let dir = tempfile::tempdir().unwrap();
    let data = disc_data(dir.path());
    let run = dir.path().join("run");
    // 4 epochs of 4 steps (30 training images in batches of 8) are raised to 5 to reach 20
    // optimizer steps (`min_steps`: small training sets train more epochs).
    let mut c = tiny_config(4, 3);
    c.min_steps = 20;
    c.keep = reconad::train::KeepWeights::Last;
    // A patience of one evaluation would stop a `best` run at the first dip; a fixed
    // schedule never stops early.
    c.patience = 1;
    let summary = train(&data, &run, c);
    assert_eq!(summary.state.epochs_done, 5);
    assert_eq!(summary.state.history.len(), 5);
    assert!(summary.state.finished);
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(saved["train"]["keep"], "last");
    assert_eq!(saved["train"]["min_steps"], 20);
    // Scored with model-last: without the best epoch's weights it opens, without the last
    // epoch's it is an error naming them.
    std::fs::remove_file(run.join("model-best.safetensors")).unwrap();
    TrainedModel::open(&run, reconad::device::Backend::Cpu).unwrap();
    std::fs::remove_file(run.join("model-last.safetensors")).unwrap();
    let err = TrainedModel::open(&run, reconad::device::Backend::Cpu)
        .err()
        .expect("no weights to score");
    assert!(err.to_string().contains("model-last.safetensors"), "{err}");
}

#[test]
fn a_paused_run_resumes_to_the_same_result_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = disc_data(dir.path());
    let whole = dir.path().join("whole");
    train(&data, &whole, tiny_config(4, 5));

    let paused = dir.path().join("paused");
    let ds = open_category(&data).unwrap();
    let data_ref = DataRef::Mvtec {
        category_dir: data.clone(),
    };
    let first = train::train_new(
        &RunDir::new(&paused),
        &ds,
        data_ref,
        tiny_config(4, 5),
        false,
        &TrainOptions {
            max_epochs_this_call: Some(2),
            ..TrainOptions::quiet()
        },
    )
    .unwrap();
    assert_eq!(first.state.epochs_done, 2);
    assert!(!first.state.finished);
    let resumed = train::resume(&RunDir::new(&paused), DataRef::open, &quiet()).unwrap();
    assert_eq!(resumed.state.epochs_done, 4);
    assert!(resumed.state.finished);
    assert_eq!(history_without_time(&paused), history_without_time(&whole));
    let (p, w) = (
        common::safetensors_tensors(&paused.join("model-last.safetensors")),
        common::safetensors_tensors(&whole.join("model-last.safetensors")),
    );
    assert!(p.len() > 10);
    assert!(
        p == w,
        "the resumed run's weights differ from the uninterrupted run's"
    );
}

#[test]
fn a_run_directory_is_locked_while_a_process_trains_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = disc_data(dir.path());
    let run = dir.path().join("run");
    let tiny = [
        "--preset",
        "tiny",
        "--image-size",
        "64",
        "--val-fraction",
        "0.25",
        "--quiet",
    ];
    let mut child = common::train(&data, &run)
        .args(tiny)
        .args(["--epochs", "1000"])
        .spawn();
    let state = run.join("checkpoint/state.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !state.is_file() {
        assert!(Instant::now() < deadline, "no checkpoint after 120 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let config_before = std::fs::read(run.join("config.json")).unwrap();
    // A second process on the same run: a resume, a replacement, a calibration.
    let holder = format!("pid {}", child.id());
    for mut other in [
        Cmd::new(["train", "--quiet", "--resume"]).arg(&run),
        common::train(&data, &run)
            .args(tiny)
            .args(["--epochs", "3", "--force"]),
        Cmd::new(["calibrate", "--quiet", "--model"]).arg(&run),
    ] {
        let all = other.fails_with("in use by another reconad process");
        assert!(all.contains(&holder), "{all}");
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first training ended"
    );
    assert_eq!(
        std::fs::read(run.join("config.json")).unwrap(),
        config_before
    );
    // The lock dies with its process: after a SIGKILL the run can be taken over.
    child.kill().unwrap();
    child.wait().unwrap();
    reconad::util::lock::DirLock::acquire(&run).unwrap();
}

#[test]
fn a_killed_run_resumes_from_its_last_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = disc_data(dir.path());
    let run = dir.path().join("run");
    let mut cmd = common::train(&data, &run).args([
        "--preset",
        "tiny",
        "--image-size",
        "64",
        "--epochs",
        "8",
        "--batch",
        "8",
        "--eval-every",
        "2",
        "--val-fraction",
        "0.25",
        "--quiet",
    ]);
    let mut child = cmd.spawn();
    // Kill it once the first checkpoint is on disk, i.e. during a later epoch.
    let state = run.join("checkpoint/state.json");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !state.is_file() {
        assert!(Instant::now() < deadline, "no checkpoint after 120 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "training ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let split_before = std::fs::read(run.join("split.json")).unwrap();
    let done_before: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(done_before["epochs_done"].as_u64().unwrap() < 8);

    // A second start without --resume refuses to touch the run.
    let all = cmd.fails_with(run.to_str().unwrap());
    assert!(all.contains("--resume"), "{all}");

    let all = Cmd::new(["train", "--resume"])
        .arg(&run)
        .arg("--quiet")
        .ok();
    assert!(all.contains("finished after 8 epoch(s)"), "{all}");
    assert_eq!(std::fs::read(run.join("split.json")).unwrap(), split_before);
    assert!(run.join("model-best.safetensors").is_file());
    assert_eq!(
        std::fs::read_to_string(run.join("history.csv"))
            .unwrap()
            .lines()
            .count(),
        9
    );
}

#[test]
fn bad_training_settings_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = disc_data(dir.path());
    let run = dir.path().join("run");
    // `train --data <data> --out <run> --image-size 64 <extra>`.
    let with = |extra: &[&str]| {
        common::train(&data, &run)
            .args(["--image-size", "64"])
            .args(extra)
    };
    with(&["--preset", "huge"]).fails_with("unknown preset 'huge'");
    with(&["--ssim-weight", "-0.5"]).fails_with("ssim_weight");
    with(&["--batch", "0"]).fails_with("batch_size");
    with(&["--patience", "0"]).fails_with("patience");
    with(&["--epochs", "0"]).fails_with("epochs");
    common::train(&data, &run)
        .args(["--image-size", "60"])
        .fails_with("multiples of 16");
    let bad_config = dir.path().join("bad.json");
    std::fs::write(&bad_config, r#"{"batch_sise": 4}"#).unwrap();
    with(&["--config", bad_config.to_str().unwrap()]).fails_with("bad.json");
    assert!(!run.exists(), "a refused run must not create its directory");

    // An existing folder without --resume or --force.
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("notes.txt"), b"mine").unwrap();
    with(&["--preset", "tiny"]).fails_with("already exists");
    // --force never deletes a folder that is not a run.
    with(&["--preset", "tiny", "--force"]).fails_with("not a reconad run");
    assert!(run.join("notes.txt").is_file());
    // --resume of something that is not a run.
    Cmd::new(["train", "--resume"])
        .arg(&run)
        .fails_with("config.json");
    // --resume keeps the run's settings: one given beside it is an error, not ignored.
    let all = Cmd::new(["train", "--resume"])
        .arg(&run)
        .args(["--epochs", "99"])
        .fails_with("--epochs");
    assert!(all.contains("config.json"), "{all}");
}

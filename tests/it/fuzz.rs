//! Property tests of the settings and run-file parsers: seeded random mutations of real files
//! (a value replaced by an extreme or a wrong type, a key dropped, the text cut short) must
//! each be read into a value that validates, or refused with an error; never a panic, and a
//! file that is accepted must save back without losing a number (no NaN written as `null`).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reconad::data::split::Split;
use reconad::score::profile::ScoringProfile;
use reconad::train::{load_config_file, RunDir, TrainConfig};
use serde_json::Value;

use crate::common::fixture;

/// Mutated files per kind of file.
const CASES: usize = 1000;

/// Values that break naive parsers and unbounded settings.
fn nasty(rng: &mut ChaCha8Rng) -> Value {
    let choices = [
        serde_json::json!(0),
        serde_json::json!(-1),
        serde_json::json!(1),
        serde_json::json!(1e300),
        serde_json::json!(-1e300),
        serde_json::json!(1e-300),
        serde_json::json!(0.5),
        serde_json::json!(100000),
        serde_json::json!(4294967296u64),
        serde_json::json!(u64::MAX),
        serde_json::json!(i64::MIN),
        serde_json::json!("x"),
        serde_json::json!(""),
        Value::Null,
        serde_json::json!(true),
        serde_json::json!([]),
        serde_json::json!([1, 2]),
        serde_json::json!({}),
    ];
    choices[rng.random_range(0..choices.len())].clone()
}

/// Paths (object keys / array indices) of every leaf of `v`.
fn leaves(v: &Value, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let mut p = prefix.clone();
                p.push(k.clone());
                leaves(child, p, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, child) in items.iter().enumerate() {
                let mut p = prefix.clone();
                p.push(i.to_string());
                leaves(child, p, out);
            }
        }
        _ => out.push(prefix),
    }
}

fn at<'a>(v: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(v, |v, key| match v {
        Value::Object(map) => map.get_mut(key),
        Value::Array(items) => items.get_mut(key.parse::<usize>().ok()?),
        _ => None,
    })
}

/// One random mutation of `text` (a JSON document).
fn mutate(text: &str, rng: &mut ChaCha8Rng) -> String {
    let mut v: Value = serde_json::from_str(text).unwrap();
    match rng.random_range(0..10) {
        // Cut short: a torn write.
        0 => {
            let cut = rng.random_range(0..text.len());
            return text[..cut].to_string();
        }
        // A key dropped.
        1 => {
            let mut all = Vec::new();
            leaves(&v, Vec::new(), &mut all);
            let path = &all[rng.random_range(0..all.len())];
            if let Some((last, parent)) = path.split_last() {
                if let Some(Value::Object(map)) = at(&mut v, parent) {
                    map.remove(last);
                }
            }
        }
        // One to three values replaced.
        _ => {
            let mut all = Vec::new();
            leaves(&v, Vec::new(), &mut all);
            for _ in 0..rng.random_range(1..=3) {
                let path = all[rng.random_range(0..all.len())].clone();
                if let Some(slot) = at(&mut v, &path) {
                    *slot = nasty(rng);
                }
            }
        }
    }
    serde_json::to_string_pretty(&v).unwrap()
}

/// Runs `check` on `CASES` mutations of `original` written to `path`; counts accepted files.
fn fuzz(original: &Path, path: &Path, seed: u64, check: impl Fn(&Path) -> bool) -> usize {
    let text = std::fs::read_to_string(original).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut accepted = 0;
    for case in 0..CASES {
        let mutated = mutate(&text, &mut rng);
        std::fs::write(path, &mutated).unwrap();
        match catch_unwind(AssertUnwindSafe(|| check(path))) {
            Ok(ok) => accepted += usize::from(ok),
            Err(_) => panic!("case {case} of {} panicked on:\n{mutated}", path.display()),
        }
    }
    accepted
}

#[test]
fn mutated_settings_and_run_files_are_refused_or_valid_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let member = fixture().join("ens/member-1");
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    for f in ["config.json", "split.json", "scoring.json"] {
        std::fs::copy(member.join(f), run.join(f)).unwrap();
    }
    let model = RunDir::new(&member).load_config().unwrap().model;

    // A --config file: the `train` part of a run's config.
    let settings = dir.path().join("settings.json");
    let config: Value = reconad::util::fs::read_json(&member.join("config.json")).unwrap();
    std::fs::write(
        dir.path().join("train.json"),
        serde_json::to_string_pretty(&config["train"]).unwrap(),
    )
    .unwrap();
    let accepted = fuzz(&dir.path().join("train.json"), &settings, 1, |p| {
        let Ok(c) = load_config_file(p) else {
            return false;
        };
        if c.validate().is_err() {
            return false;
        }
        // Accepted settings round-trip exactly: no number lost to `null`.
        let back: TrainConfig = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        true
    });
    println!("settings file: {accepted} of {CASES} mutations accepted");
    assert!(accepted > 0 && accepted < CASES);

    // The run's config.json, as resume and scoring read it.
    let config_path = run.join("config.json");
    let accepted = fuzz(&member.join("config.json"), &config_path, 2, |_| {
        let Ok(rc) = RunDir::new(&run).load_config() else {
            return false;
        };
        rc.train.validate().is_ok() && rc.model.validate().is_ok()
    });
    println!("config.json: {accepted} of {CASES} mutations accepted");
    std::fs::copy(member.join("config.json"), &config_path).unwrap();

    // split.json and scoring.json.
    let accepted = fuzz(
        &member.join("split.json"),
        &run.join("split.json"),
        3,
        |p| Split::load(p).is_ok(),
    );
    println!("split.json: {accepted} of {CASES} mutations accepted");
    let accepted = fuzz(
        &member.join("scoring.json"),
        &run.join("scoring.json"),
        4,
        |p| ScoringProfile::load(p, &model).is_ok(),
    );
    println!("scoring.json: {accepted} of {CASES} mutations accepted");
    assert!(accepted < CASES);
}

//! Shared helpers of the integration tests: small synthetic data sets and the CLI binary.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use reconad::data::synth::{self, SynthCategory, SynthConfig};

/// A tiny synthetic config: 48 px, few images, the given categories.
pub fn tiny_config(seed: u64, categories: &[SynthCategory]) -> SynthConfig {
    SynthConfig {
        seed,
        size: 48,
        train: 6,
        test_good: 2,
        test_per_defect: 1,
        categories: categories.to_vec(),
    }
}

/// Generates a tiny data set under `dir` and returns the category folder of the first category.
pub fn tiny_dataset(dir: &Path, category: SynthCategory) -> PathBuf {
    synth::generate(dir, &tiny_config(7, &[category]), false).expect("synth works");
    dir.join(category.name())
}

/// Arguments for [`Cmd::new`]: one (`"train"`) or several (`["eval", "--quiet"]`).
pub trait IntoArgs {
    fn into_args(self) -> Vec<OsString>;
}

impl IntoArgs for &str {
    fn into_args(self) -> Vec<OsString> {
        vec![self.into()]
    }
}

impl<S: AsRef<OsStr>, const N: usize> IntoArgs for [S; N] {
    fn into_args(self) -> Vec<OsString> {
        self.iter().map(|a| a.as_ref().to_os_string()).collect()
    }
}

impl<S: AsRef<OsStr>> IntoArgs for &[S] {
    fn into_args(self) -> Vec<OsString> {
        self.iter().map(|a| a.as_ref().to_os_string()).collect()
    }
}

/// A run of the `reconad` binary (with `RECONAD_LOG=warn`), built like
/// `Cmd::new("train").arg("--data").arg(&data)` or `Cmd::new(["info", "--backend", "cuda"])`.
/// Arguments are anything `Command` takes, paths included. A command can run more than once.
pub struct Cmd {
    cmd: Command,
}

impl Cmd {
    pub fn new(args: impl IntoArgs) -> Cmd {
        Cmd {
            cmd: Command::new(env!("CARGO_BIN_EXE_reconad")),
        }
        .env("RECONAD_LOG", "warn")
        .args(args.into_args())
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.cmd.arg(arg);
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Cmd {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        self.cmd.env(key, value);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.cmd.current_dir(dir);
        self
    }

    /// Runs the command to its end and returns what it printed and its exit status.
    pub fn run(&mut self) -> Output {
        self.cmd.output().expect("the reconad binary runs")
    }

    /// Starts the command without waiting for it; its output goes to the test's.
    pub fn spawn(&mut self) -> Child {
        self.cmd.spawn().expect("the reconad binary starts")
    }

    /// Runs the command, asserts that it succeeded and returns stdout and stderr as one string.
    pub fn ok(&mut self) -> String {
        let output = self.run();
        let all = text(&output);
        assert!(
            output.status.success(),
            "{:?} failed with {}:\n{all}",
            self.cmd,
            output.status
        );
        all
    }

    /// Runs the command, asserts that it succeeded and returns its stdout alone (UTF-8).
    pub fn stdout(&mut self) -> String {
        let output = self.run();
        assert!(
            output.status.success(),
            "{:?} failed with {}:\n{}",
            self.cmd,
            output.status,
            text(&output)
        );
        String::from_utf8(output.stdout).expect("stdout is UTF-8")
    }

    /// Runs the command and asserts that it failed cleanly (exit code 1, not a panic) with
    /// output naming `needle` (usually a file path); returns stdout and stderr as one string.
    pub fn fails_with(&mut self, needle: &str) -> String {
        let output = self.run();
        let all = text(&output);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{:?}: expected exit code 1, got {:?}:\n{all}",
            self.cmd,
            output.status
        );
        assert!(!all.contains("panicked"), "{:?} panicked:\n{all}", self.cmd);
        assert!(
            all.contains(needle),
            "{:?}: output does not name {needle}:\n{all}",
            self.cmd
        );
        all
    }
}

/// Stdout and stderr of a run, as one string.
fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `reconad eval --model <model> --out <out>`.
pub fn eval(model: &Path, out: &Path) -> Cmd {
    Cmd::new(["eval", "--model"])
        .arg(model)
        .arg("--out")
        .arg(out)
}

/// `reconad predict --model <model>`; the images follow as arguments.
pub fn predict(model: &Path) -> Cmd {
    Cmd::new(["predict", "--model"]).arg(model)
}

/// `reconad train --data <data> --out <out>`.
pub fn train(data: &Path, out: &Path) -> Cmd {
    // Without the default's head (720 steps): tests/it/head.rs trains heads of a few steps.
    Cmd::new(["train", "--no-head", "--data"])
        .arg(data)
        .arg("--out")
        .arg(out)
}

/// Every file below `dir`, relative to it, sorted.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The run directories and ensemble written by reconad 0.1.0 (see `compat`).
pub fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v0.1.0")
}

/// The tensors of a safetensors file by name (the metadata map's order is not stable).
pub fn safetensors_tensors(path: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).unwrap();
    let data = &bytes[8 + len..];
    header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .map(|(name, info)| {
            let range = &info["data_offsets"];
            let (a, b) = (
                range[0].as_u64().unwrap() as usize,
                range[1].as_u64().unwrap() as usize,
            );
            (name.clone(), data[a..b].to_vec())
        })
        .collect()
}

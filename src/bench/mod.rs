//! Throughput and memory benchmarks (`reconad bench`), each result one machine-readable line
//! `BENCH kind=… key=value …`, comparable with `../shared/bench/torch_reference.py`:
//! - `train_step`: the optimizer step alone on a fixed random batch (median of `steps` timed
//!   steps after 2 warm-up steps), as `torch_reference.py train` measures it;
//! - `train_epoch`: one real training epoch with data loading and augmentation, on a generated
//!   data set;
//! - `score`: images per second scoring files from disk (decode, resize, model, maps, score);
//! - `score_memory`: the peak RSS of a process that opens a model and scores one image;
//! - `conv3x3`: each 3x3 conv shape of a preset, burn's `Conv2d` against `model::conv` ([`conv`]).

pub mod conv;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;

use crate::data::mvtec::open_category;
use crate::data::synth::{self, SynthCategory, SynthConfig};
use crate::detector::single::{SingleModel, TrainedModel};
use crate::detector::Scorer;
use crate::device::{self, Backend};
use crate::error::{fail, Error, Result};
use crate::model::loss::{reconstruction_loss, LossConfig};
use crate::model::unet::Preset;
use crate::score::profile::ScoringProfile;
use crate::train::{DataRef, RunDir, TrainConfig, TrainOptions, TrainSummary};
use crate::util::progress::NoProgress;

/// One benchmark result: a kind and its fields, printed as `BENCH kind=<kind> k=v …`.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchLine {
    /// What was measured.
    pub kind: &'static str,
    /// Settings and results, in order.
    pub fields: Vec<(String, String)>,
}

impl BenchLine {
    fn new(kind: &'static str) -> Self {
        Self {
            kind,
            fields: Vec::new(),
        }
    }

    /// The line with `key=value` appended.
    pub fn with(mut self, key: &str, value: impl std::fmt::Display) -> Self {
        self.fields.push((key.into(), value.to_string()));
        self
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Display for BenchLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = format!("BENCH kind={}", self.kind);
        for (k, v) in &self.fields {
            let _ = write!(s, " {k}={v}");
        }
        f.write_str(&s)
    }
}

/// The optimizer step alone: forward, the training loss, backward and Adam on one random batch
/// of `batch` × 3 × `size`², the median of `steps` steps after 2 warm-up steps. `no_skips` as
/// the CPU default (false: the SPEC U-Net with its skips, as `torch_reference.py`).
pub fn train_step(
    preset: Preset,
    no_skips: bool,
    batch: usize,
    size: usize,
    steps: usize,
    backend: Backend,
) -> Result<BenchLine> {
    if batch == 0 || steps == 0 {
        fail!("bench: batch and steps must be at least 1");
    }
    let config = TrainConfig {
        preset,
        no_skips,
        batch_size: batch,
        ..TrainConfig::default()
    }
    .with_whole_image(size);
    config.validate()?;
    let model_config = config.model_config(3);
    let base = device::device(backend, 0)?;
    let ad = base.autodiff();
    let mut model = model_config.init_seeded(&ad, 0);
    let mut optim = AdamConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(Some(WeightDecayConfig::new(1e-5)))
        .init();
    let data: Vec<f32> = (0..batch * 3 * size * size)
        .map(|i| ((i as u64).wrapping_mul(2654435761) % 1000) as f32 / 1000.0)
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(data, [batch, 3, size, size]), &ad);
    let loss_config = LossConfig::default();
    let mut times = Vec::with_capacity(steps);
    for step in 0..steps + 2 {
        let t0 = Instant::now();
        let recon = model.forward(x.clone());
        let loss = reconstruction_loss(recon, x.clone(), &loss_config);
        let _ = loss.clone().into_scalar::<f32>();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-4, model, grads);
        if step >= 2 {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    let step_s = median(&mut times);
    Ok(BenchLine::new("train_step")
        .with("preset", preset.name())
        .with("skips", !no_skips)
        .with("batch", batch)
        .with("size", size)
        .with("steps", steps)
        .with("step_ms", format!("{:.1}", step_s * 1e3))
        .with("images_per_s", format!("{:.2}", batch as f64 / step_s))
        .with("threads", rayon::current_num_threads()))
}

/// A generated data set for the benchmarks: the synthetic `disc` category, `train` normal
/// images of `size` px, under `dir`.
pub fn bench_data(dir: &Path, train: usize, size: u32) -> Result<PathBuf> {
    let config = SynthConfig {
        seed: 7,
        size,
        train,
        test_good: 4,
        test_per_defect: 2,
        categories: vec![SynthCategory::Disc],
    };
    synth::generate(dir, &config, true)?;
    Ok(dir.join(SynthCategory::Disc.name()))
}

/// One real training epoch of `config` on the data set at `data`, into `run`: loading,
/// augmentation and the steps (the first epoch of a 2-epoch run, which has no validation; the
/// images are decoded before it, as in a real run).
pub fn train_epoch(data: &Path, run: &Path, config: TrainConfig) -> Result<BenchLine> {
    let config = TrainConfig {
        epochs: 2,
        min_steps: 0,
        eval_every: 1000,
        ..config
    };
    let (preset, batch) = (config.preset, config.batch_size);
    let side = config
        .augment
        .input_sizes
        .iter()
        .copied()
        .max()
        .unwrap_or(0);
    let summary = train_on(data, run, config, Some(1))?;
    let row = summary
        .state
        .history
        .first()
        .ok_or_else(|| Error::Unusable("bench: the epoch left no history".into()))?;
    Ok(BenchLine::new("train_epoch")
        .with("preset", preset.name())
        .with("batch", batch)
        .with("size", side)
        .with("images", summary.train_images)
        .with("epoch_s", format!("{:.2}", row.seconds))
        .with(
            "images_per_s",
            format!("{:.2}", summary.train_images as f64 / row.seconds),
        )
        .with("threads", rayon::current_num_threads()))
}

/// Trains `config` for one epoch on `data` into `run` (the weights a scoring benchmark needs;
/// their quality does not change its cost) without calibrating it.
pub fn prepare_model(data: &Path, run: &Path, config: TrainConfig) -> Result<TrainedModel> {
    // One CutPaste and one scar copy per validation image: the calibration that follows is
    // setup, not what is measured.
    let mut config = TrainConfig {
        epochs: 1,
        min_steps: 0,
        ..config
    };
    config.cutpaste.cutpaste_per_image = 1;
    config.cutpaste.scars_per_image = 1;
    // A head of one step: it is scored like a trained one (same passes), and calibration
    // still chooses among its maps.
    if let Some(head) = &mut config.head {
        head.steps = 1;
    }
    train_on(data, run, config.clone(), None)?;
    TrainedModel::open(run, config.backend)
}

/// A new run of `config` on the MVTec-layout category at `data` into `run` (replacing one
/// there), quietly, for at most `max_epochs` epochs now.
fn train_on(
    data: &Path,
    run: &Path,
    config: TrainConfig,
    max_epochs: Option<usize>,
) -> Result<TrainSummary> {
    let dataset = open_category(data)?;
    let data_ref = DataRef::Mvtec {
        category_dir: data.to_path_buf(),
    };
    let options = TrainOptions {
        progress: &NoProgress,
        max_epochs_this_call: max_epochs,
    };
    crate::train::train_new(
        &RunDir::new(run),
        &dataset,
        data_ref,
        config,
        true,
        &options,
    )
}

/// Images per second scoring `files` from disk with `model` under `profile` (decode, resize,
/// maps and score of every file; one warm-up image first), labelled `name`.
pub fn score_files(
    name: &str,
    model: TrainedModel,
    profile: ScoringProfile,
    files: &[PathBuf],
) -> Result<BenchLine> {
    if files.is_empty() {
        fail!("bench: no images to score");
    }
    let config = profile.config.clone();
    let scorer = SingleModel { model, profile };
    let warm = scorer.load_image(&files[0])?;
    scorer.score(vec![warm])?;
    // The product's own path: `predict`'s chunks, parallel decoding, scores and labels.
    let started = Instant::now();
    crate::eval::predict(
        &scorer,
        files,
        scorer.threshold(),
        None,
        false,
        false,
        |_| Ok(()),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let first = image::image_dimensions(&files[0])
        .map(|(w, h)| format!("{w}x{h}"))
        .unwrap_or_else(|_| "?".into());
    let windows: Vec<String> = config.windows.iter().map(|w| w.to_string()).collect();
    Ok(BenchLine::new("score")
        .with("profile", name)
        .with("images", files.len())
        .with("image_size", first)
        .with("working_size", config.working_size)
        .with("windows", windows.join(","))
        .with("error", format!("{:?}", config.error).to_lowercase())
        .with(
            "s_per_image",
            format!("{:.3}", seconds / files.len() as f64),
        )
        .with(
            "images_per_s",
            format!("{:.3}", files.len() as f64 / seconds),
        )
        .with("threads", rayon::current_num_threads()))
}

/// This process's peak resident memory (Linux `VmHWM`), bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The median of `values` (sorted in place); 0 for none.
fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bench_line_is_one_line_of_key_value_pairs() {
        let line = BenchLine::new("score")
            .with("profile", "default")
            .with("images_per_s", "1.50");
        assert_eq!(
            line.to_string(),
            "BENCH kind=score profile=default images_per_s=1.50"
        );
        assert_eq!(line.get("images_per_s"), Some("1.50"));
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
    }
}

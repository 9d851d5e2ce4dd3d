//! Training (SPEC §4): Adam on `MSE + λ·(1 − SSIM)` with multi-scale augmented batches; every
//! `eval_every` epochs the CutPaste-val image AUROC is computed (single scale: each validation
//! image whole, resized to `val_size` x `val_size`; image score = mean of the top `val_top_k`
//! share of per-pixel squared errors), the best checkpoint is kept, and training stops after
//! `patience` evaluations without improvement.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::calibrate::ScoringProfile;
use crate::data::augment::{plan_epoch, spawn_loader, AugmentConfig, Batch};
use crate::data::cutpaste::{build_val_set, CutPasteConfig, PasteKind, ValSample};
use crate::data::image_io::{self, ChannelMode, ChwImage};
use crate::data::split::{Split, DEFAULT_VAL_FRACTION};
use crate::data::{Dataset, Item};
use crate::device::{self, Backend};
use crate::eval::calibration_bar;
use crate::fsutil::write_json_atomic;
use crate::inference::TrainedModel;
use crate::metrics::{auroc, top_fraction_mean};
use crate::model::loss::{reconstruction_loss, LossConfig};
use crate::model::unet::{Preset, UNet, UNetConfig};
use crate::run::{
    load_checkpoint, save_model, DataRef, EnvRecord, HistoryRow, RunConfig, RunDir, TrainState,
    RUN_FORMAT_VERSION,
};
use crate::score::gaussian_blur;

/// Adam settings (PyTorch's defaults, epsilon included; burn's default epsilon is 1e-5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OptimizerConfig {
    /// Learning rate.
    pub lr: f64,
    /// L2 weight decay.
    pub weight_decay: f32,
    /// Adam β1.
    pub beta1: f32,
    /// Adam β2.
    pub beta2: f32,
    /// Adam ε.
    pub epsilon: f32,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            lr: 1e-4,
            weight_decay: 1e-5,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }
}

/// Every training setting. Saved as `config.json` in the run directory; a JSON file with any
/// subset of these fields can be passed with `--config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Seed of every random choice (split, weights, augmentation, CutPaste).
    pub seed: u64,
    /// Seed of the train/val split only, when it must differ from `seed` (ensemble members
    /// share one split, so that they share one validation set).
    pub split_seed: Option<u64>,
    /// Architecture preset (ignored when `model` is given).
    pub preset: Preset,
    /// Explicit architecture; its channel count is set from the data.
    pub model: Option<UNetConfig>,
    /// Skip levels to switch off (0 = shallowest), applied on top of the preset.
    pub disabled_skips: Vec<usize>,
    /// Loss.
    pub loss: LossConfig,
    /// Optimizer.
    pub optimizer: OptimizerConfig,
    /// Images per batch.
    pub batch_size: usize,
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Evaluate the CutPaste-val AUROC every this many epochs.
    pub eval_every: usize,
    /// Stop after this many evaluations without improvement.
    pub patience: usize,
    /// Share of normal training images held out for validation.
    pub val_fraction: f64,
    /// Channel policy.
    pub channels: ChannelMode,
    /// Augmentation.
    pub augment: AugmentConfig,
    /// Side of the (square) validation images.
    pub val_size: usize,
    /// Share of pixels averaged for the validation image score.
    pub val_top_k: f64,
    /// Gaussian smoothing (σ, pixels at `val_size`) of validation error maps before top-k.
    pub val_sigma: f64,
    /// CutPaste validation set.
    pub cutpaste: CutPasteConfig,
    /// Compute backend.
    pub backend: Backend,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: crate::DEFAULT_SEED,
            split_seed: None,
            preset: Preset::Default,
            model: None,
            disabled_skips: Vec::new(),
            loss: LossConfig::default(),
            optimizer: OptimizerConfig::default(),
            batch_size: 32,
            epochs: 200,
            eval_every: 2,
            patience: 10,
            val_fraction: DEFAULT_VAL_FRACTION,
            channels: ChannelMode::Auto,
            augment: AugmentConfig::default(),
            val_size: 256,
            val_top_k: 0.01,
            val_sigma: 2.0,
            cutpaste: CutPasteConfig::default(),
            backend: Backend::Cpu,
        }
    }
}

impl TrainConfig {
    /// Sets the training resolution: batches of `size`, rescale range [size, 2·size], validation
    /// images of `size`.
    pub fn with_image_size(mut self, size: usize) -> Self {
        self.augment.input_sizes = vec![size];
        self.augment.rescale = (size as u32, 2 * size as u32);
        self.val_size = size;
        self
    }

    /// The architecture for `channels` input channels.
    pub fn model_config(&self, channels: usize) -> UNetConfig {
        let mut model = self
            .model
            .clone()
            .unwrap_or_else(|| self.preset.config(channels));
        model.channels = channels;
        for &l in &self.disabled_skips {
            if !model.disabled_skips.contains(&l) {
                model.disabled_skips.push(l);
            }
        }
        model
    }

    /// Checks every setting, naming the one that is wrong.
    pub fn validate(&self) -> Result<()> {
        let fail =
            |name: &str, value: String, why: &str| bail!("invalid setting {name} = {value}: {why}");
        if !(self.loss.ssim_weight >= 0.0 && self.loss.ssim_weight.is_finite()) {
            return fail(
                "loss.ssim_weight (λ)",
                self.loss.ssim_weight.to_string(),
                "must be >= 0 (0.5-1.0 sensible)",
            );
        }
        if self.batch_size == 0 {
            return fail(
                "batch_size",
                "0".into(),
                "must be at least 1 (2 or more for BatchNorm)",
            );
        }
        if self.epochs == 0 {
            return fail("epochs", "0".into(), "must be at least 1");
        }
        if self.eval_every == 0 {
            return fail("eval_every", "0".into(), "must be at least 1");
        }
        if self.patience == 0 {
            return fail("patience", "0".into(), "must be at least 1 evaluation");
        }
        if self.optimizer.lr.is_nan() || self.optimizer.lr <= 0.0 {
            return fail("optimizer.lr", self.optimizer.lr.to_string(), "must be > 0");
        }
        if self.val_sigma.is_nan() || self.val_sigma < 0.0 {
            return fail("val_sigma", self.val_sigma.to_string(), "must be >= 0");
        }
        if !(self.val_top_k > 0.0 && self.val_top_k <= 1.0) {
            return fail("val_top_k", self.val_top_k.to_string(), "must be in (0, 1]");
        }
        if let Err(e) = self.augment.validate() {
            bail!("invalid setting: {e}");
        }
        if let Err(e) = self.cutpaste.validate() {
            bail!("invalid setting: {e}");
        }
        let model = self.model_config(3);
        model.validate()?;
        for &size in self.augment.input_sizes.iter().chain([&self.val_size]) {
            model.check_input(size, size).with_context(|| {
                format!("training/validation size {size} does not fit the model")
            })?;
        }
        if self.val_size < 11 {
            return fail(
                "val_size",
                self.val_size.to_string(),
                "must be at least 11 (SSIM window)",
            );
        }
        Ok(())
    }
}

/// How to run [`train`].
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Show a progress bar.
    pub progress: bool,
    /// Stop after this many epochs of this invocation (for tests of resuming); `None` = no limit.
    pub max_epochs_this_call: Option<usize>,
}

/// What a finished (or paused) training run reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Scoring profile calibrated on the validation split when the run finished.
    pub profile: Option<ScoringProfile>,
    /// Final state.
    pub state: TrainState,
    /// Training images.
    pub train_images: usize,
    /// Validation images (normal).
    pub val_images: usize,
    /// Wall time of this invocation, seconds.
    pub seconds: f64,
    /// Training images processed per second in this invocation (augmented samples).
    pub images_per_second: f64,
}

/// Starts a new run in `run` on `dataset`.
pub fn train_new(
    run: &RunDir,
    dataset: &Dataset,
    data: DataRef,
    config: TrainConfig,
    force: bool,
    options: &TrainOptions,
) -> Result<TrainSummary> {
    config.validate()?;
    let split = Split::new(
        dataset,
        config.val_fraction,
        config.split_seed.unwrap_or(config.seed),
    )?;
    let (train_items, _) = split.resolve(dataset, &run.split())?;
    let channels = data_channels(&train_items, config.channels)?;
    let model = config.model_config(channels);
    run.create(force)?;
    split.save(&run.split())?;
    run.save_config(&RunConfig {
        format: RUN_FORMAT_VERSION,
        reconad: env!("CARGO_PKG_VERSION").into(),
        data,
        train: config,
        model,
    })?;
    train_run(run, dataset, options)
}

/// Continues an interrupted run from its last checkpoint, with the same split and settings.
pub fn resume(
    run: &RunDir,
    open_data: impl FnOnce(&DataRef) -> Result<Dataset>,
    options: &TrainOptions,
) -> Result<TrainSummary> {
    let config = run.load_config()?;
    let dataset = open_data(&config.data)?;
    train_run(run, &dataset, options)
}

/// Channel count of the model for these training images.
fn data_channels(items: &[Item], mode: ChannelMode) -> Result<usize> {
    let infos: Vec<u8> = items
        .par_iter()
        .map(|i| image_io::probe(&i.path).map(|info| info.channels))
        .collect::<Result<_, _>>()?;
    Ok(mode.resolve(infos))
}

/// Decodes images in parallel, converting with `f`.
fn load_images(
    items: &[Item],
    channels: usize,
    f: impl Fn(ChwImage) -> ChwImage + Sync,
) -> Result<Vec<ChwImage>> {
    Ok(items
        .par_iter()
        .map(|i| image_io::load_chw(&i.path, channels, None).map(&f))
        .collect::<Result<_, _>>()?)
}

/// Converts a batch of CHW buffers into a tensor `[N, C, H, W]`.
pub fn to_tensor(
    data: Vec<f32>,
    n: usize,
    channels: usize,
    height: usize,
    width: usize,
    device: &Device,
) -> Tensor<4> {
    Tensor::<4>::from_data(TensorData::new(data, [n, channels, height, width]), device)
}

/// Image scores of the validation set: each image's per-pixel squared error (averaged over
/// channels) is smoothed with a Gaussian of `sigma` and the mean of its top `top_k` share is the
/// score. Computed in batches.
pub fn val_scores(
    model: &UNet,
    samples: &[ValSample],
    top_k: f64,
    sigma: f64,
    batch: usize,
    device: &Device,
) -> Result<Vec<f64>> {
    let mut scores = Vec::with_capacity(samples.len());
    for chunk in samples.chunks(batch.max(1)) {
        let (c, h, w) = (
            chunk[0].image.channels,
            chunk[0].image.height,
            chunk[0].image.width,
        );
        let data: Vec<f32> = chunk
            .iter()
            .flat_map(|s| s.image.data.iter().copied())
            .collect();
        let x = to_tensor(data, chunk.len(), c, h, w, device);
        let recon = model.forward(x.clone());
        let err = (recon - x).powi_scalar(2).mean_dim(1);
        let values = err.into_data();
        let values = values
            .as_slice::<f32>()
            .map_err(|e| anyhow::anyhow!("reading errors: {e:?}"))?;
        for map in values.chunks(h * w) {
            scores.push(top_fraction_mean(&gaussian_blur(map, w, h, sigma), top_k));
        }
    }
    Ok(scores)
}

fn train_run(run: &RunDir, dataset: &Dataset, options: &TrainOptions) -> Result<TrainSummary> {
    let started = Instant::now();
    let rc = run.load_config()?;
    let cfg = &rc.train;
    cfg.validate()?;
    let split = Split::load(&run.split())?;
    let (train_items, val_items) = split.resolve(dataset, &run.split())?;
    let channels = rc.model.channels;

    let cache_side = cfg.augment.rescale.1 as usize;
    let train_images = Arc::new(load_images(&train_items, channels, |img| {
        crate::data::augment::fit_long_side(&img, cache_side)
    })?);
    let val_images = load_images(&val_items, channels, |img| {
        img.resized(cfg.val_size, cfg.val_size)
    })?;
    let val_set = build_val_set(&val_images, &cfg.cutpaste, cfg.seed);
    let labels: Vec<u8> = val_set.iter().map(|s| s.label).collect();

    let base = device::device(cfg.backend, 0)?;
    let ad = base.clone().autodiff();
    let mut model: UNet = rc.model.init_seeded(&ad, cfg.seed);
    let mut optim = AdamConfig::new()
        .with_beta_1(cfg.optimizer.beta1)
        .with_beta_2(cfg.optimizer.beta2)
        .with_epsilon(cfg.optimizer.epsilon)
        .with_weight_decay(Some(WeightDecayConfig::new(cfg.optimizer.weight_decay)))
        .init();

    let mut state = match run.load_state()? {
        Some(state) => {
            let dir = run.checkpoint_dir();
            model = load_checkpoint(model, &dir.join(&state.model_file))?;
            let bytes = std::fs::read(dir.join(&state.optimizer_file)).with_context(|| {
                format!(
                    "{}: cannot read optimizer state",
                    dir.join(&state.optimizer_file).display()
                )
            })?;
            optim = optim
                .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
                .map_err(|e| {
                    anyhow::anyhow!(
                        "{}: cannot load optimizer state: {e:?}",
                        state.optimizer_file
                    )
                })?;
            tracing::info!(
                "resuming {} after epoch {}",
                run.root.display(),
                state.epochs_done
            );
            state
        }
        None => {
            write_json_atomic(&run.env(), &EnvRecord::current(cfg.backend, &base))?;
            TrainState {
                epochs_done: 0,
                best_auroc: None,
                best_epoch: None,
                evals_since_best: 0,
                finished: false,
                history: Vec::new(),
                model_file: String::new(),
                optimizer_file: String::new(),
            }
        }
    };

    let mut samples_seen = 0usize;
    let mut epochs_this_call = 0usize;
    while !state.finished && state.epochs_done < cfg.epochs {
        if options
            .max_epochs_this_call
            .is_some_and(|m| epochs_this_call >= m)
        {
            break;
        }
        let epoch = state.epochs_done + 1;
        let epoch_start = Instant::now();
        let plans = plan_epoch(
            train_images.len(),
            cfg.batch_size,
            &cfg.augment.input_sizes,
            cfg.seed,
            epoch,
        );
        let bar = progress_bar(options.progress, plans.len(), epoch, cfg.epochs);
        let loader = spawn_loader(
            train_images.clone(),
            plans.clone(),
            cfg.augment.clone(),
            cfg.seed,
            epoch,
        );
        let (mut loss_sum, mut loss_n) = (0.0f64, 0usize);
        for batch in loader.iter() {
            let Batch {
                n,
                channels: c,
                size,
                input,
                target,
            } = batch;
            let x = to_tensor(input, n, c, size, size, &ad);
            let y = to_tensor(target, n, c, size, size, &ad);
            let recon = model.forward(x);
            let loss = reconstruction_loss(recon, y, &cfg.loss);
            let value = f64::from(loss.clone().into_scalar::<f32>());
            if !value.is_finite() {
                bail!("training diverged at epoch {epoch}: loss {value}");
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(cfg.optimizer.lr, model, grads);
            loss_sum += value * n as f64;
            loss_n += n;
            samples_seen += n;
            bar.inc(1);
            bar.set_message(format!(
                "loss {:.5}  val AUROC {}",
                loss_sum / loss_n as f64,
                state
                    .history
                    .iter()
                    .rev()
                    .find_map(|r| r.val_auroc)
                    .map_or("-".into(), |a| format!("{a:.4}"))
            ));
        }
        bar.finish_and_clear();
        let train_loss = loss_sum / loss_n.max(1) as f64;

        let (mut val_auroc, mut by_kind) = (None, [None, None]);
        if epoch % cfg.eval_every == 0 || epoch == cfg.epochs {
            let valid = model.valid();
            let scores = val_scores(&valid, &val_set, cfg.val_top_k, cfg.val_sigma, 8, &base)?;
            let a = auroc(&scores, &labels)
                .context("validation AUROC needs normal and CutPaste samples")?;
            val_auroc = Some(a);
            by_kind = [PasteKind::CutPaste, PasteKind::Scar]
                .map(|kind| kind_auroc(&val_set, &scores, kind));
            if state.best_auroc.is_none_or(|b| a > b) {
                state.best_auroc = Some(a);
                state.best_epoch = Some(epoch);
                state.evals_since_best = 0;
                save_model(&valid, &run.best_model())?;
            } else {
                state.evals_since_best += 1;
            }
            let show = |v: Option<f64>| v.map_or("-".into(), |a| format!("{a:.4}"));
            tracing::info!(
                "epoch {epoch}/{}: loss {train_loss:.5}, CutPaste-val AUROC {a:.4} (cutpaste {}, scar {}; best {:.4} at epoch {}), {:.1} s",
                cfg.epochs,
                show(by_kind[0]),
                show(by_kind[1]),
                state.best_auroc.unwrap_or(a),
                state.best_epoch.unwrap_or(epoch),
                epoch_start.elapsed().as_secs_f64()
            );
            if state.evals_since_best >= cfg.patience {
                tracing::info!("early stop: no improvement in {} evaluations", cfg.patience);
                state.finished = true;
            }
        }
        state.epochs_done = epoch;
        if epoch == cfg.epochs {
            state.finished = true;
        }
        state.history.push(HistoryRow {
            epoch,
            train_loss,
            val_auroc,
            val_auroc_cutpaste: by_kind[0],
            val_auroc_scar: by_kind[1],
            seconds: epoch_start.elapsed().as_secs_f64(),
        });
        let optimizer_bytes = optim
            .into_bytes()
            .map_err(|e| anyhow::anyhow!("cannot serialise the optimizer: {e:?}"))?;
        run.save_checkpoint(&model, &optimizer_bytes, &mut state)?;
        epochs_this_call += 1;
    }
    let profile = if state.finished && run.best_model().is_file() {
        let trained = TrainedModel::open(&run.root, cfg.backend)?;
        let profile = trained.calibrate_and_save(
            trained.default_scorings(),
            &calibration_bar(options.progress),
        )?;
        tracing::info!(
            "calibrated on {} validation images + {} CutPaste/scar copies: working size {}, top-k {} %, CutPaste-val AUROC {:.4}, threshold {:.4}",
            profile.val_normal,
            profile.val_anomalous,
            profile.config.working_size,
            profile.config.top_k,
            profile.val_auroc,
            profile.threshold
        );
        Some(profile)
    } else {
        None
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok(TrainSummary {
        profile,
        state,
        train_images: train_items.len(),
        val_images: val_items.len(),
        seconds,
        images_per_second: samples_seen as f64 / seconds.max(1e-9),
    })
}

/// AUROC of the normal validation images against one kind of synthetic anomaly.
fn kind_auroc(set: &[ValSample], scores: &[f64], kind: PasteKind) -> Option<f64> {
    let (s, l): (Vec<f64>, Vec<u8>) = set
        .iter()
        .zip(scores)
        .filter(|(v, _)| v.kind.is_none() || v.kind == Some(kind))
        .map(|(v, &score)| (score, v.label))
        .unzip();
    auroc(&s, &l)
}

fn progress_bar(show: bool, batches: usize, epoch: usize, epochs: usize) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(batches as u64);
    bar.set_style(
        ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}

/// Reads a `--config` JSON file of training settings (any subset of [`TrainConfig`]'s fields).
pub fn load_config_file(path: &Path) -> Result<TrainConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: invalid training config", path.display()))
}

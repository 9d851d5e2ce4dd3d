//! The second training stage (issue 10 item 4): after the autoencoder, a discriminative head
//! ([`crate::model::head`]) learns to find DRAEM restoration anomalies (Perlin masks filled with
//! another altered training image) from the input beside its reconstruction, with focal loss on
//! the masks. The autoencoder is frozen: it is the scored weights of the first stage. The head
//! never sees CutPaste or scars, so the CutPaste validation that later decides whether its map
//! is used stays a different generator family. Checkpointed after every epoch in its own files
//! (`checkpoint/head-state.json`, `head-e*.bpk`), so a killed run resumes here too.

use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::checkpoint::{checkpoint_bytes, load_checkpoint};
use super::run_dir::{RunConfig, RunDir};
use super::validate::to_tensor;
use super::TrainOptions;
use crate::data::anomaly::restoration::RestorationConfig;
use crate::data::augment::Corruption;
use crate::data::loader::{make_masked_batch, plan_epoch, steps_per_epoch, MaskedBatch};
use crate::device;
use crate::error::{fail, Error, Result};
use crate::image::ChwImage;
use crate::model::head::{HeadConfig, SegHead};
use crate::model::loss::focal_loss;
use crate::model::unet::UNet;
use crate::model::weights::{load_model, save_model};
use crate::util::fs::{read_json, write_atomic, write_json_atomic};

/// Seed offset of the head's weights and batches (apart from the autoencoder's streams).
const HEAD_STREAM: u64 = 0x4EAD;

/// Settings of the discriminative head and its training stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadTrainConfig {
    /// Architecture.
    pub arch: HeadConfig,
    /// Optimizer steps of the stage (whole epochs: rounded up to the next epoch's end).
    pub steps: usize,
    /// Adam learning rate (cosine schedule over the stage).
    pub lr: f64,
    /// Focal loss γ (DRAEM: 2).
    pub focal_gamma: f64,
    /// The synthetic anomalies it learns from.
    pub anomaly: RestorationConfig,
}

impl Default for HeadTrainConfig {
    fn default() -> Self {
        Self {
            arch: HeadConfig::default(),
            steps: 720,
            lr: 1e-3,
            focal_gamma: 2.0,
            anomaly: RestorationConfig::default(),
        }
    }
}

impl HeadTrainConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        self.arch.validate()?;
        let bad = |name: &str, value: String, why: &str| Err(Error::setting(name, value, why));
        if self.steps == 0 {
            return bad("head.steps", "0".into(), "must be at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return bad("head.lr", format!("{}", self.lr), "must be > 0");
        }
        if !(0.0..=5.0).contains(&self.focal_gamma) {
            return bad(
                "head.focal_gamma",
                format!("{}", self.focal_gamma),
                "must be in [0, 5] (2 is DRAEM's)",
            );
        }
        self.anomaly
            .validate()
            .map_err(|why| Error::setting("head.anomaly", "(see the reason)", why))
    }

    /// Epochs of the stage on `train_images` images in batches of `batch_size`.
    pub fn epochs_for(&self, train_images: usize, batch_size: usize) -> usize {
        self.steps
            .div_ceil(steps_per_epoch(train_images, batch_size).max(1))
    }
}

/// Progress of the head stage, saved with each of its checkpoints.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HeadState {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Whether the stage is over.
    pub finished: bool,
    /// Mean focal loss of every epoch so far.
    pub losses: Vec<f64>,
    /// Wall time of every epoch so far, seconds.
    pub seconds: Vec<f64>,
    /// Weight file of the last completed epoch (in the checkpoint folder).
    pub model_file: String,
    /// Optimizer file of the last completed epoch.
    pub optimizer_file: String,
}

/// The head stage's saved progress, if it has started.
pub fn load_head_state(run: &RunDir) -> Result<Option<HeadState>> {
    let path = run.head_state();
    Ok(if path.is_file() {
        Some(read_json(&path)?)
    } else {
        None
    })
}

/// Whether a run is over: its autoencoder stage and, when its settings have one, its head.
pub fn run_finished(run: &RunDir, rc: &RunConfig) -> Result<bool> {
    let autoencoder = run.load_state()?.is_some_and(|s| s.finished);
    let head = rc.train.head.is_none() || load_head_state(run)?.is_some_and(|s| s.finished);
    Ok(autoencoder && head)
}

/// Gives a run a discriminative head with `config` (saved in its `config.json`), so that
/// resuming it trains the head on its autoencoder; a run that has one keeps it. Returns
/// whether the settings changed.
pub fn add_head(run: &RunDir, config: HeadTrainConfig) -> Result<bool> {
    let mut rc = run.load_config()?;
    if rc.train.head.is_some() {
        return Ok(false);
    }
    config.validate()?;
    rc.train.head = Some(config);
    run.save_config(&rc)?;
    Ok(true)
}

/// Builds the head of a run (untrained) for `channels` image channels.
pub fn head_network(
    config: &HeadTrainConfig,
    channels: usize,
    device: &Device,
    seed: u64,
) -> SegHead {
    config
        .arch
        .init_seeded(channels, device, seed ^ HEAD_STREAM)
}

/// Loads a run's trained head for scoring, if the run has one.
pub fn load_head(run: &RunDir, rc: &RunConfig, device: &Device) -> Result<Option<SegHead>> {
    let Some(config) = &rc.train.head else {
        return Ok(None);
    };
    let path = run.head_model();
    if !path.is_file() {
        crate::error::fail_file!(
            path,
            "missing: the run's settings have a discriminative head but it is not trained yet (resume the run)"
        );
    }
    let head = head_network(config, rc.model.channels, device, 0);
    Ok(Some(load_model(head, &path)?))
}

/// Trains (or resumes) the head stage of a run whose autoencoder stage is finished.
pub fn train_head(
    run: &RunDir,
    rc: &RunConfig,
    train_images: &Arc<Vec<ChwImage>>,
    options: &TrainOptions,
) -> Result<Option<HeadState>> {
    let Some(h) = &rc.train.head else {
        return Ok(None);
    };
    let cfg = &rc.train;
    let mut state = load_head_state(run)?.unwrap_or_default();
    if state.finished || options.max_epochs_this_call == Some(0) {
        return Ok(Some(state));
    }
    let base = device::device(cfg.backend, 0)?;
    let unet: UNet = load_model(rc.model.init_seeded(&base, 0), &run.scored_model(cfg.keep))?;
    let ad = base.clone().autodiff();
    let mut head = head_network(h, rc.model.channels, &ad, cfg.seed);
    let mut optim = AdamConfig::new()
        .with_beta_1(cfg.optimizer.beta1)
        .with_beta_2(cfg.optimizer.beta2)
        .with_epsilon(cfg.optimizer.epsilon)
        .with_weight_decay(Some(WeightDecayConfig::new(cfg.optimizer.weight_decay)))
        .init();
    let dir = run.checkpoint_dir();
    if state.epochs_done > 0 {
        head = load_checkpoint(head, &dir.join(&state.model_file))?;
        let path = dir.join(&state.optimizer_file);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        optim = optim
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| Error::file(&path, format!("cannot load optimizer state: {e:?}")))?;
        tracing::info!("resuming the head after epoch {}", state.epochs_done);
    }
    let epochs = h.epochs_for(train_images.len(), cfg.batch_size);
    // The head sees the frames as the autoencoder did, without the autoencoder's corruption.
    let augment = crate::data::augment::AugmentConfig {
        corruption: Corruption::None,
        ..cfg.augment.clone()
    };
    let seed = cfg.seed ^ HEAD_STREAM;
    tracing::info!(
        "discriminative head: widths {:?} bottleneck {}, {epochs} epochs, focal γ {}, lr {}",
        h.arch.widths,
        h.arch.bottleneck,
        h.focal_gamma,
        h.lr
    );
    let mut epochs_this_call = 0usize;
    while state.epochs_done < epochs {
        if options
            .max_epochs_this_call
            .is_some_and(|m| epochs_this_call >= m)
        {
            break;
        }
        let epoch = state.epochs_done + 1;
        let started = Instant::now();
        let plans = plan_epoch(
            train_images.len(),
            cfg.batch_size,
            &cfg.augment.input_sizes,
            seed,
            epoch,
        );
        let lr = cfg.optimizer.schedule.lr(h.lr, epoch, epochs);
        let bar = options.progress;
        bar.start(&format!("head epoch {epoch}/{epochs}"), plans.len() as u64);
        let (mut loss_sum, mut loss_n) = (0.0f64, 0usize);
        for (index, plan) in plans.iter().enumerate() {
            let MaskedBatch {
                n,
                channels: c,
                size,
                input,
                mask,
            } = make_masked_batch(train_images, plan, &augment, &h.anomaly, seed, epoch, index);
            // The frozen autoencoder runs without autodiff; its output joins the graph as data.
            let recon = unet.forward(to_tensor(input.clone(), n, c, size, size, &base));
            let recon = recon
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| Error::framework("cannot read the reconstruction", e))?;
            let x = to_tensor(input, n, c, size, size, &ad); // [N, C, S, S]
            let r = to_tensor(recon, n, c, size, size, &ad); // [N, C, S, S]
            let m = to_tensor(mask, n, 1, size, size, &ad); // [N, 1, S, S]
            let loss = focal_loss(head.logits(x, r), m, h.focal_gamma);
            let value = f64::from(loss.clone().into_scalar::<f32>());
            if !value.is_finite() {
                fail!("head training diverged at epoch {epoch}: loss {value}");
            }
            let grads = GradientsParams::from_grads(loss.backward(), &head);
            head = optim.step(lr, head, grads);
            loss_sum += value * n as f64;
            loss_n += n;
            bar.advance(1);
            bar.message(&format!("focal loss {:.5}", loss_sum / loss_n as f64));
        }
        bar.finish();
        let loss = loss_sum / loss_n.max(1) as f64;
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!("head epoch {epoch}/{epochs}: focal loss {loss:.5}, {seconds:.1} s");
        state.epochs_done = epoch;
        state.finished = epoch == epochs;
        state.losses.push(loss);
        state.seconds.push(seconds);
        let optimizer = optim
            .into_bytes()
            .map_err(|e| Error::framework("cannot serialise the head optimizer", e))?;
        save_head_checkpoint(run, &head, &optimizer, &mut state)?;
        epochs_this_call += 1;
    }
    Ok(Some(state))
}

/// Writes the head's checkpoint of a completed epoch: weights and optimizer under new names,
/// then the state naming them, then `head.safetensors` when the stage is over; older head
/// checkpoint files go last.
fn save_head_checkpoint(
    run: &RunDir,
    head: &SegHead,
    optimizer: &[u8],
    state: &mut HeadState,
) -> Result<()> {
    let dir = run.checkpoint_dir();
    state.model_file = format!("head-e{:04}.bpk", state.epochs_done);
    state.optimizer_file = format!("head-optimizer-e{:04}.bpk", state.epochs_done);
    write_atomic(&dir.join(&state.model_file), &checkpoint_bytes(head)?)?;
    write_atomic(&dir.join(&state.optimizer_file), optimizer)?;
    write_json_atomic(&run.head_state(), state)?;
    if state.finished {
        save_model(&head.valid(), &run.head_model())?;
    }
    for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let name = entry
            .map_err(|e| Error::io(&dir, e))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        let stale = name.starts_with("head-")
            && name.ends_with(".bpk")
            && name != state.model_file
            && name != state.optimizer_file;
        if stale {
            let _ = std::fs::remove_file(dir.join(name));
        }
    }
    Ok(())
}

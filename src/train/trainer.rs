//! The training loop (SPEC §4): Adam on the reconstruction loss over multi-scale augmented
//! batches; every `eval_every` epochs the CutPaste-val AUROC ([`super::validate`]), the best
//! weights kept, a checkpoint written after every epoch, and (when the best weights are the
//! ones scored) an early stop after `patience` evaluations without improvement. It writes only
//! its own run directory; scoring and calibration come after it and read what it wrote.

use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams};
use rayon::prelude::*;

use super::checkpoint::{load_checkpoint, save_checkpoint};
use super::config::{KeepWeights, TrainConfig};
use super::run_dir::{
    DataRef, EnvRecord, HistoryRow, RunConfig, RunDir, TrainState, RUN_FORMAT_VERSION,
};
use super::validate::{kind_auroc, to_tensor, val_scores};
use super::{TrainOptions, TrainSummary};
use crate::data::anomaly::cutpaste::{build_val_set, PasteKind};
use crate::data::image_io::{self, ChannelMode};
use crate::data::loader::{plan_epoch, spawn_loader, Batch};
use crate::data::split::Split;
use crate::data::{Dataset, Item};
use crate::device;
use crate::error::{fail, fail_file, Context, Error, Result};
use crate::image::{ChwImage, Size};
use crate::metrics::auroc;
use crate::model::loss::reconstruction_loss;
use crate::model::unet::UNet;
use crate::model::weights::save_model;
use crate::util::fs::write_json_atomic;
use crate::util::memory;

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
    let (train_items, val_items) = split.resolve(dataset, &run.split())?;
    let normal: Vec<Item> = train_items.into_iter().chain(val_items).collect();
    let channels = data_channels(&normal, config.channels)?;
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
    if run.load_state()?.is_none() && run.history().is_file() {
        fail_file!(
            run.state(),
            "missing, but the run has trained before (history.csv): resuming would silently start again from epoch 1; restore the checkpoint folder, or start a new run with --force"
        );
    }
    let dataset = open_data(&config.data)?;
    train_run(run, &dataset, options)
}

/// Channel count of the model for these normal images (the channel policy of
/// [`ChannelMode::admits`]: `auto` refuses a mix of gray and colour).
fn data_channels(items: &[Item], mode: ChannelMode) -> Result<usize> {
    let infos: Vec<u8> = items
        .par_iter()
        .map(|i| image_io::probe(&i.path).map(|info| info.channels))
        .collect::<Result<_, _>>()?;
    let gray: Vec<&Item> = items
        .iter()
        .zip(&infos)
        .filter(|(_, &c)| c == 1)
        .map(|(i, _)| i)
        .collect();
    if let Some(why) = mode.mixed(gray.len(), items.len() - gray.len()) {
        fail_file!(gray[0].path, "{why}");
    }
    Ok(mode.resolve(infos))
}

/// Decodes images in parallel, converting with `f`.
fn load_images(
    items: &[Item],
    channels: usize,
    f: impl Fn(ChwImage) -> ChwImage + Sync,
) -> Result<Vec<ChwImage>> {
    items
        .par_iter()
        .map(|i| image_io::load_chw(&i.path, channels, None).map(&f))
        .collect()
}

fn train_run(run: &RunDir, dataset: &Dataset, options: &TrainOptions) -> Result<TrainSummary> {
    let started = Instant::now();
    let rc = run.load_config()?;
    let cfg = &rc.train;
    cfg.validate()
        .with_context(|| format!("training settings of {}", run.config().display()))?;
    let split = Split::load(&run.split())?;
    let (train_items, val_items) = split.resolve(dataset, &run.split())?;
    let channels = rc.model.channels;

    let cache_side = cfg.augment.rescale.1 as usize;
    // The decoded training images stay in memory at the top of the rescale range, beside one
    // training step: both must fit before anything is decoded.
    let cache_bytes = (train_items.len() as u64)
        .saturating_mul((channels * 4) as u64)
        .saturating_mul((cache_side as u64).saturating_pow(2));
    memory::check_fits(
        &format!(
            "keeping {} training images decoded at {cache_side} px",
            train_items.len()
        ),
        cache_bytes,
        memory::available_bytes(),
        "lower the training size (--image-size / --whole-image)",
    )?;
    let train_images = Arc::new(load_images(&train_items, channels, |img| {
        img.fit_long_side(cache_side)
    })?);
    let val_images = load_images(&val_items, channels, |img| {
        img.resized(Size::square(cfg.val_size))
    })?;
    let val_set = build_val_set(&val_images, &cfg.cutpaste, cfg.seed);
    tracing::info!(
        "training on {} images ({} more for validation): {}",
        train_items.len(),
        val_items.len(),
        rc.describe(train_items.len())
    );
    // The epochs of this run: more than `cfg.epochs` on a small set (`min_steps`).
    let epochs = cfg.epochs_for(train_items.len());
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
            let optimizer_path = dir.join(&state.optimizer_file);
            let bytes =
                std::fs::read(&optimizer_path).map_err(|e| Error::io(&optimizer_path, e))?;
            optim = optim
                .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
                .map_err(|e| {
                    Error::file(
                        &optimizer_path,
                        format!("cannot load optimizer state: {e:?}"),
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
    while !state.finished && state.epochs_done < epochs {
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
        let bar = options.progress;
        bar.start(&format!("epoch {epoch}/{epochs}"), plans.len() as u64);
        let loader = spawn_loader(
            train_images.clone(),
            plans.clone(),
            cfg.augment.clone(),
            cfg.seed,
            epoch,
        );
        let lr = cfg.optimizer.schedule.lr(cfg.optimizer.lr, epoch, epochs);
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
                fail!("training diverged at epoch {epoch}: loss {value}");
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            loss_sum += value * n as f64;
            loss_n += n;
            samples_seen += n;
            bar.advance(1);
            bar.message(&format!(
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
        bar.finish();
        let train_loss = loss_sum / loss_n.max(1) as f64;

        let (mut val_auroc, mut by_kind) = (None, [None, None]);
        if epoch % cfg.eval_every == 0 || epoch == epochs {
            let valid = model.valid();
            let scores = val_scores(
                &valid,
                &val_set,
                cfg.val_top_k_fraction,
                cfg.val_sigma,
                8,
                &base,
            )?;
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
                epochs,
                show(by_kind[0]),
                show(by_kind[1]),
                state.best_auroc.unwrap_or(a),
                state.best_epoch.unwrap_or(epoch),
                epoch_start.elapsed().as_secs_f64()
            );
            if cfg.keep == KeepWeights::Best && state.evals_since_best >= cfg.patience {
                tracing::info!("early stop: no improvement in {} evaluations", cfg.patience);
                state.finished = true;
            }
        }
        state.epochs_done = epoch;
        if epoch == epochs {
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
            .map_err(|e| Error::framework("cannot serialise the optimizer", e))?;
        save_checkpoint(run, &model, &optimizer_bytes, &mut state)?;
        epochs_this_call += 1;
    }
    let head = if state.finished && rc.train.head.is_some() {
        let left = TrainOptions {
            max_epochs_this_call: options
                .max_epochs_this_call
                .map(|m| m.saturating_sub(epochs_this_call)),
            ..*options
        };
        super::head::train_head(run, &rc, &train_images, &left)?
    } else {
        None
    };
    let seconds = started.elapsed().as_secs_f64();
    Ok(TrainSummary {
        state,
        train_images: train_items.len(),
        val_images: val_items.len(),
        seconds,
        images_per_second: samples_seen as f64 / seconds.max(1e-9),
        head,
    })
}

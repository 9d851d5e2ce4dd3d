//! The CutPaste-val score used during training: single scale, each validation image whole at
//! `val_size`, its per-pixel squared error (mean over channels) smoothed and the top share
//! averaged. Cheap on purpose: it runs every `eval_every` epochs.

use burn::prelude::*;

use crate::data::anomaly::cutpaste::{PasteKind, ValSample};
use crate::error::{Error, Result};
use crate::image::filter::gaussian_blur;
use crate::image::Size;
use crate::metrics::{auroc, top_fraction_mean};
use crate::model::unet::UNet;

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
/// channels) is smoothed with a Gaussian of `sigma` and the mean of its top `top_k_fraction` share is the
/// score. Computed in batches.
pub fn val_scores(
    model: &UNet,
    samples: &[ValSample],
    top_k_fraction: f64,
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
            .map_err(|e| Error::framework("reading errors", e))?;
        for map in values.chunks(h * w) {
            scores.push(top_fraction_mean(
                &gaussian_blur(map, Size::new(w, h), sigma),
                top_k_fraction,
            ));
        }
    }
    Ok(scores)
}

/// AUROC of the normal validation images against one kind of synthetic anomaly.
pub fn kind_auroc(set: &[ValSample], scores: &[f64], kind: PasteKind) -> Option<f64> {
    let (s, l): (Vec<f64>, Vec<u8>) = set
        .iter()
        .zip(scores)
        .filter(|(v, _)| v.kind.is_none() || v.kind == Some(kind))
        .map(|(v, &score)| (score, v.label))
        .unzip();
    auroc(&s, &l)
}

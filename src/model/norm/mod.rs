//! BatchNorm in training as one op with a two-pass backward on the CPU backend, with the
//! LeakyReLU that follows it fused in.
//!
//! burn-flex has no `batch_norm_train` of its own: burn's generic one swaps the batch and channel
//! axes and reshapes (a layout copy) for the mean, again for the variance, and its backward does
//! the same for four per-channel sums (BENCHMARKS.md: `copy_2d_tiled` and the reductions, about
//! 10 % of a training step). [`BatchNormOps`] on Flex (`flex`) reads each channel's planes in
//! place: one parallel pass for the statistics and one for the output; backward, one for the two
//! sums and one for the input gradient. [`batch_norm`] keeps `BatchNorm::forward`'s contract:
//! the training path only on an autodiff device with the layer's training flag on, and the
//! running statistics updated as burn does. [`batch_norm_leaky_relu`] adds the LeakyReLU of a
//! conv block to the same passes (its own op cost a pass each way, the backward one of the
//! largest non-GEMM costs of a step in `perf`; BENCHMARKS.md). Other backends keep burn's.

mod autodiff;
mod flex;
mod fold;

pub use fold::conv_batch_norm_leaky_relu;

use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch};
use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::DType;

use super::activation::leaky_relu;
use crate::device::on_flex;

/// The settings of one [`BatchNormOps`] call: BatchNorm's ε, and the slope of a LeakyReLU
/// applied to its output (`None`: no activation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NormSettings {
    /// Added to the variance under the square root.
    pub epsilon: f64,
    /// LeakyReLU's slope for negative inputs, fused into the normalisation's passes.
    pub leaky_slope: Option<f32>,
}

/// Batch normalisation of `[N, C, ...]` with batch statistics, optionally followed by LeakyReLU.
#[backend_extension(Flex, Autodiff)]
pub trait BatchNormOps: Backend {
    /// `(z, mean, variance)`: `y = (x − mean)/√(variance + ε)·γ + β` per channel, with the
    /// batch mean and biased variance (`[C]` each; constants of the graph), and `z` = `y`, or
    /// LeakyReLU(`y`) when `settings.leaky_slope` is set.
    fn bn_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        settings: NormSettings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `(dx, dγ, dβ)` of [`BatchNormOps::bn_train`] for the output gradient `grad`, given the
    /// statistics it returned.
    fn bn_train_grads(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        settings: NormSettings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// `norm.forward(x)`, with the training path through [`BatchNormOps`] on the Flex backend.
pub fn batch_norm(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    if !fused_training(norm, &x) {
        return norm.forward(x);
    }
    train_through_ops(norm, x, None)
}

/// `leaky_relu(norm.forward(x), slope)`; in training on the Flex backend one [`BatchNormOps`] op
/// whose passes apply the activation (forward) and its mask (backward), so the activation costs
/// no pass of its own over the tensor.
pub fn batch_norm_leaky_relu(norm: &BatchNorm, x: Tensor<4>, slope: f64) -> Tensor<4> {
    if !fused_training(norm, &x) || x.dtype() != DType::F32 {
        return leaky_relu(batch_norm(norm, x), slope);
    }
    train_through_ops(norm, x, Some(slope as f32))
}

/// Whether `norm` normalises `x` with batch statistics through [`BatchNormOps`]: on an
/// autodiff Flex device with the layer's training flag on.
fn fused_training(norm: &BatchNorm, x: &Tensor<4>) -> bool {
    let device = x.device();
    device.is_autodiff() && norm.training.is_enabled() && on_flex(&device)
}

/// The training path: [`BatchNormOps::bn_train`], and the running statistics updated as burn's
/// `BatchNorm::forward_train` does.
fn train_through_ops(norm: &BatchNorm, x: Tensor<4>, leaky_slope: Option<f32>) -> Tensor<4> {
    let device = x.device();
    let settings = NormSettings {
        epsilon: norm.epsilon,
        leaky_slope,
    };
    let (y, mean, variance) = <Dispatch as BatchNormOps>::bn_train(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        settings,
    );
    let (mean, variance) = (
        Tensor::<1>::from_dispatch(mean).detach(),
        Tensor::<1>::from_dispatch(variance).detach(),
    );
    let momentum = norm.momentum;
    let running_mean = norm.running_mean.value_sync().to_device(&device);
    let running_var = norm.running_var.value_sync().to_device(&device);
    let running_mean = running_mean
        .mul_scalar(1.0 - momentum)
        .add(mean.mul_scalar(momentum));
    let running_var = running_var
        .mul_scalar(1.0 - momentum)
        .add(variance.mul_scalar(momentum));
    norm.running_mean.update(running_mean.detach());
    norm.running_var.update(running_var.detach());
    Tensor::from_dispatch(y)
}

#[cfg(test)]
mod tests;

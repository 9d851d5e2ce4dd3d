//! BatchNorm in training as one op with a two-pass backward on the CPU backend.
//!
//! burn-flex has no `batch_norm_train` of its own: burn's generic one swaps the batch and channel
//! axes and reshapes (a layout copy) for the mean, again for the variance, and its backward does
//! the same for four per-channel sums (BENCHMARKS.md: `copy_2d_tiled` and the reductions, about
//! 10 % of a training step). [`BatchNormOps`] on Flex (`flex`) reads each channel's planes in
//! place: one parallel pass for the statistics and one for the output; backward, one for the two
//! sums and one for the input gradient. [`batch_norm`] keeps `BatchNorm::forward`'s contract:
//! the training path only on an autodiff device with the layer's training flag on, and the
//! running statistics updated as burn does. Other backends keep burn's.

mod autodiff;
mod flex;
mod fold;

pub use fold::conv_batch_norm;

use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch};
use burn::nn::BatchNorm;
use burn::prelude::*;

use crate::device::on_flex;

/// Batch normalisation of `[N, C, ...]` with batch statistics.
#[backend_extension(Flex, Autodiff)]
pub trait BatchNormOps: Backend {
    /// `(y, mean, variance)`: `y = (x − mean)/√(variance + ε)·γ + β` per channel, with the
    /// batch mean and biased variance (`[C]` each; constants of the graph).
    fn bn_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// `(dx, dγ, dβ)` of [`BatchNormOps::bn_train`] for the output gradient `grad`, given the
    /// statistics it returned.
    fn bn_train_grads(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// `norm.forward(x)`, with the training path through [`BatchNormOps`] on the Flex backend.
pub fn batch_norm(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let device = x.device();
    let training = device.is_autodiff() && norm.training.is_enabled();
    if !training || !on_flex(&device) {
        return norm.forward(x);
    }
    let (y, mean, variance) = <Dispatch as BatchNormOps>::bn_train(
        x.into_dispatch(),
        norm.gamma.val().into_dispatch(),
        norm.beta.val().into_dispatch(),
        norm.epsilon,
    );
    let (mean, variance) = (
        Tensor::<1>::from_dispatch(mean).detach(),
        Tensor::<1>::from_dispatch(variance).detach(),
    );
    // As burn's `BatchNorm::forward_train`.
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

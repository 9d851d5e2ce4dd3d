//! [`Up2x2Ops`] under autodiff: one tracked op (`../tracked.rs`) whose backward takes the
//! input gradient from [`Up2x2Ops::up2x2_x_grad`] and the weight and bias gradients from
//! [`Up2x2Ops::up2x2_param_grads`].

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::Autodiff;
use burn::backend::tensor::FloatTensor;
use burn::backend::Backend;

use super::super::tracked::{tracked_conv, ConvKernel};
use super::Up2x2Ops;

impl<B: Backend + Up2x2Ops, C: CheckpointStrategy> Up2x2Ops for Autodiff<B, C> {
    fn up2x2(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        tracked_conv::<B, C, Up2x2Kernel>(x, weight, bias)
    }

    /// Only called inside a backward pass, on the inner backend: here, the inner backend's
    /// gradient as a constant of the graph.
    fn up2x2_x_grad(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::up2x2_x_grad(
            weight.into_primitive(),
            grad.into_primitive(),
        ))
    }

    /// Only called inside a backward pass, on the inner backend: here, the inner backend's
    /// gradients as constants of the graph.
    fn up2x2_param_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dw, db) = B::up2x2_param_grads(
            x.into_primitive(),
            weight.into_primitive(),
            grad.into_primitive(),
        );
        (FloatTensor::<Self>::new(dw), FloatTensor::<Self>::new(db))
    }
}

/// [`Up2x2Ops`] as a [`ConvKernel`] of the inner backend.
#[derive(Debug)]
struct Up2x2Kernel;

impl<B: Backend + Up2x2Ops> ConvKernel<B> for Up2x2Kernel {
    fn forward(x: FloatTensor<B>, weight: FloatTensor<B>, bias: FloatTensor<B>) -> FloatTensor<B> {
        B::up2x2(x, weight, bias)
    }

    fn x_grad(weight: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
        B::up2x2_x_grad(weight, grad)
    }

    fn param_grads(
        x: FloatTensor<B>,
        weight: FloatTensor<B>,
        grad: FloatTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>) {
        B::up2x2_param_grads(x, weight, grad)
    }
}

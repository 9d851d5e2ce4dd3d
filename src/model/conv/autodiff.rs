//! [`Conv3x3Ops`] under autodiff: one tracked op (`tracked.rs`) whose backward takes
//! the input gradient from [`Conv3x3Ops::conv3x3_x_grad`] and the weight and bias gradients from
//! [`Conv3x3Ops::conv3x3_param_grads`].

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::Autodiff;
use burn::backend::tensor::FloatTensor;
use burn::backend::Backend;

use super::tracked::{tracked_conv, ConvKernel};
use super::Conv3x3Ops;

impl<B: Backend + Conv3x3Ops, C: CheckpointStrategy> Conv3x3Ops for Autodiff<B, C> {
    fn conv3x3(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        tracked_conv::<B, C, Conv3x3Kernel>(x, weight, bias)
    }

    /// Only called inside a backward pass, on the inner backend: here, the inner backend's
    /// gradient as a constant of the graph.
    fn conv3x3_x_grad(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(B::conv3x3_x_grad(
            weight.into_primitive(),
            grad.into_primitive(),
        ))
    }

    /// Only called inside a backward pass, on the inner backend: here, the inner backend's
    /// gradients as constants of the graph.
    fn conv3x3_param_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let (dw, db) = B::conv3x3_param_grads(
            x.into_primitive(),
            weight.into_primitive(),
            grad.into_primitive(),
        );
        (FloatTensor::<Self>::new(dw), FloatTensor::<Self>::new(db))
    }
}

/// [`Conv3x3Ops`] as a [`ConvKernel`] of the inner backend.
#[derive(Debug)]
struct Conv3x3Kernel;

impl<B: Backend + Conv3x3Ops> ConvKernel<B> for Conv3x3Kernel {
    fn forward(x: FloatTensor<B>, weight: FloatTensor<B>, bias: FloatTensor<B>) -> FloatTensor<B> {
        B::conv3x3(x, weight, bias)
    }

    fn x_grad(weight: FloatTensor<B>, grad: FloatTensor<B>) -> FloatTensor<B> {
        B::conv3x3_x_grad(weight, grad)
    }

    fn param_grads(
        x: FloatTensor<B>,
        weight: FloatTensor<B>,
        grad: FloatTensor<B>,
    ) -> (FloatTensor<B>, FloatTensor<B>) {
        B::conv3x3_param_grads(x, weight, grad)
    }
}

//! The U-Net's 3x3 "same" convolutions (stride 1, padding 1, one group, a bias) with a kernel of
//! our own on the CPU backend.
//!
//! burn-flex lowers a conv to im2col copies and GEMMs whose shapes fit its micro-kernel badly
//! (the weight gradient is a forward conv with the batch and channel axes swapped: M = 9 of
//! the AVX-512 kernel's 16 rows; BENCHMARKS.md, issue 11). [`Conv3x3Ops`] is a burn backend
//! extension; on Flex (`flex`) the forward is an im2col of a band of whole rows per image and
//! one GEMM per band written straight into the NCHW output (Winograd F(2x2, 3x3) instead, 16
//! GEMMs per band of tiles, where both channel counts are at least 64: `winograd`), the input
//! gradient is the same forward with the flipped, transposed kernel, and the weight and bias
//! gradients are pixel-major im2col tiles and a GEMM of shape Cout x 9·Cin accumulated over
//! the batch. Under autodiff (`autodiff`) the backward calls those. Every other backend (wgpu,
//! CUDA) keeps burn's `Conv2d`; the results equal burn's to float rounding (tests).

mod autodiff;
mod flex;
mod tracked;
pub mod up;
mod winograd;

use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch};
use burn::nn::conv::Conv2d;
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;

use crate::device::on_flex;

/// A conv of 3x3 kernels, stride 1, padding 1 and one group, with a bias.
#[backend_extension(Flex, Autodiff)]
pub trait Conv3x3Ops: Backend {
    /// `x [N, Cin, H, W]`, `weight [Cout, Cin, 3, 3]`, `bias [Cout]` → `[N, Cout, H, W]`.
    fn conv3x3(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The input gradient of [`Conv3x3Ops::conv3x3`] for the output gradient `grad [N, Cout,
    /// H, W]`: `[N, Cin, H, W]`.
    fn conv3x3_x_grad(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The weight and bias gradients of [`Conv3x3Ops::conv3x3`] for the output gradient `grad
    /// [N, Cout, H, W]`: `([Cout, Cin, 3, 3], [Cout])`. `weight` gives the shape (and the
    /// operands of the generic fallback).
    fn conv3x3_param_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// How [`conv3x3_f32`] lowers a conv (the product picks by shape; benchmarks compare both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lowering {
    /// Rows of im2col and one GEMM per band.
    Im2col,
    /// Winograd F(2x2, 3x3): 16 GEMMs per band of tiles.
    Winograd,
}

/// `y [n, c_out, h, w]` of the 3x3 "same" conv of the contiguous `x [n, c_in, h, w]` with
/// `weight [c_out, c_in, 3, 3]` and `bias [c_out]`, on plain f32 slices, lowered as asked.
///
/// # Panics
/// If a slice's length is not the one its shape says (the GEMMs read through raw pointers).
pub fn conv3x3_f32(
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    [n, c_in, c_out, h, w]: [usize; 5],
    lowering: Lowering,
) -> Vec<f32> {
    assert_eq!(x.len(), n * c_in * h * w, "x [n, c_in, h, w]");
    assert_eq!(weight.len(), c_out * c_in * 9, "weight [c_out, c_in, 3, 3]");
    assert_eq!(bias.len(), c_out, "bias [c_out]");
    let d = flex::Dims {
        n,
        cin: c_in,
        cout: c_out,
        h,
        w,
    };
    match lowering {
        Lowering::Im2col => flex::forward_im2col(x, weight, Some(bias), d),
        Lowering::Winograd => winograd::forward(x, weight, Some(bias), d),
    }
}

/// The options of the convs [`Conv3x3Ops`] computes.
pub(crate) fn same_options() -> ConvOptions<2> {
    ConvOptions::new([1, 1], [1, 1], [1, 1], 1)
}

/// `conv.forward(x)`, through [`Conv3x3Ops`] where it applies: a 3x3, stride-1, padding-1,
/// one-group conv with a bias on the Flex backend (with or without autodiff).
pub fn conv3x3_forward(conv: &Conv2d, x: Tensor<4>) -> Tensor<4> {
    let Some(bias) = &conv.bias else {
        return conv.forward(x);
    };
    let same = conv.kernel_size == [3, 3]
        && conv.stride == [1, 1]
        && conv.dilation == [1, 1]
        && conv.groups == 1
        && matches!(conv.padding, PaddingConfig2d::Explicit(1, 1, 1, 1));
    if !same || !on_flex(&x.device()) {
        return conv.forward(x);
    }
    let y = <Dispatch as Conv3x3Ops>::conv3x3(
        x.into_dispatch(),
        conv.weight.val().into_dispatch(),
        bias.val().into_dispatch(),
    );
    Tensor::from_dispatch(y)
}

#[cfg(test)]
mod tests;

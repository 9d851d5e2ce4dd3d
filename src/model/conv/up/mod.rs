//! The U-Net's 2x2, stride-2 transposed convs (the decoder's upsampling) with a kernel of our
//! own on the CPU backend.
//!
//! Each input pixel feeds its own 2x2 block of the output, so the op is one GEMM per image:
//! `P [H·W, 4·Cout] = Xᵀ [H·W, Cin] · W [Cin, 4·Cout]`, scattered into the output's blocks;
//! the input gradient is the gathered output gradient times `Wᵀ`, and the weight gradient `X ·
//! G` accumulated over the batch (`flex`). burn-flex lowers it as a general 3-D transposed conv
//! (about 6 % of a training step in the profile, BENCHMARKS.md). Other backends keep burn's
//! `ConvTranspose2d`; the results equal burn's to float rounding (tests).

mod autodiff;
mod flex;

use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch};
use burn::nn::conv::ConvTranspose2d;
use burn::prelude::*;
use burn::tensor::ops::ConvTransposeOptions;

use crate::device::on_flex;

/// A transposed conv of 2x2 kernels, stride 2, no padding, one group, with a bias.
#[backend_extension(Flex, Autodiff)]
pub trait Up2x2Ops: Backend {
    /// `x [N, Cin, H, W]`, `weight [Cin, Cout, 2, 2]`, `bias [Cout]` → `[N, Cout, 2H, 2W]`.
    fn up2x2(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The input gradient of [`Up2x2Ops::up2x2`] for the output gradient `grad [N, Cout, 2H,
    /// 2W]`: `[N, Cin, H, W]`.
    fn up2x2_x_grad(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The weight and bias gradients of [`Up2x2Ops::up2x2`] for the output gradient `grad`:
    /// `([Cin, Cout, 2, 2], [Cout])`.
    fn up2x2_param_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
}

/// The options of the transposed convs [`Up2x2Ops`] computes.
pub(crate) fn up_options() -> ConvTransposeOptions<2> {
    ConvTransposeOptions::new([2, 2], [0, 0], [0, 0], [1, 1], 1)
}

/// `up.forward(x)`, through [`Up2x2Ops`] where it applies: a 2x2, stride-2, unpadded,
/// one-group transposed conv with a bias on the Flex backend (with or without autodiff).
pub fn up2x2_forward(up: &ConvTranspose2d, x: Tensor<4>) -> Tensor<4> {
    let Some(bias) = &up.bias else {
        return up.forward(x);
    };
    let fits = up.kernel_size == [2, 2]
        && up.stride == [2, 2]
        && up.dilation == [1, 1]
        && up.groups == 1
        && up.padding == [0, 0]
        && up.padding_out == [0, 0];
    if !fits || !on_flex(&x.device()) {
        return up.forward(x);
    }
    let y = <Dispatch as Up2x2Ops>::up2x2(
        x.into_dispatch(),
        up.weight.val().into_dispatch(),
        bias.val().into_dispatch(),
    );
    Tensor::from_dispatch(y)
}

#[cfg(test)]
mod tests;

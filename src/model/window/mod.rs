//! The SSIM loss's Gaussian window (11 x 11, σ 1.5, "valid" positions only) as one separable
//! op on the CPU backend.
//!
//! burn runs it as a depth-wise 11 x 11 conv, 121 taps per pixel, whose input gradient is a
//! general transposed conv: in the training profile the loss's five window filters took more
//! of a step than the U-Net's upsampling (BENCHMARKS.md). The window is the outer product of
//! a 1-D Gaussian with itself, so [`WindowOps`] filters rows then columns (22 taps per pixel);
//! its gradient is the adjoint, the same taps scattered back (a "full" filter), again in two
//! 1-D passes (`flex`). Other backends keep burn's conv.

mod autodiff;
mod flex;

use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch};
use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;

use crate::device::on_flex;

/// A separable "valid" filter of every plane with the same 1-D taps along rows and columns.
#[backend_extension(Flex, Autodiff)]
pub trait WindowOps: Backend {
    /// `x [N, C, H, W]`, `taps [K]` → `[N, C, H − K + 1, W − K + 1]`:
    /// `y[i, j] = Σ_k Σ_l taps[k]·taps[l]·x[i + k, j + l]`.
    fn window_filter(x: FloatTensor<Self>, taps: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The input gradient of [`WindowOps::window_filter`] for the output gradient `grad [N, C,
    /// Ho, Wo]`: `[N, C, Ho + K − 1, Wo + K − 1]`.
    fn window_filter_x_grad(taps: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// Each plane of `x [N, C, H, W]` filtered with the window `taps ⊗ taps` at the valid positions:
/// `[N, C, H − K + 1, W − K + 1]` (H, W ≥ K), through [`WindowOps`] on Flex, else as burn's
/// depth-wise conv.
pub fn window_filter(x: Tensor<4>, taps: &[f32]) -> Tensor<4> {
    let device = x.device();
    let k = taps.len();
    if !on_flex(&device) {
        let c = x.dims()[1];
        let window: Vec<f32> = (0..c)
            .flat_map(|_| taps.iter().flat_map(|a| taps.iter().map(move |b| a * b)))
            .collect();
        let w = Tensor::<1>::from_floats(window.as_slice(), &device).reshape([c, 1, k, k]);
        return conv2d(x, w, None, ConvOptions::new([1, 1], [0, 0], [1, 1], c));
    }
    let taps = Tensor::<1>::from_floats(taps, &device);
    let y = <Dispatch as WindowOps>::window_filter(x.into_dispatch(), taps.into_dispatch());
    Tensor::from_dispatch(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_data::{assert_close, hashed};

    /// The separable op and its input gradient equal burn's depth-wise conv with the outer
    /// product window (asymmetric taps, so a wrong orientation or flip shows).
    #[test]
    fn the_separable_window_and_its_gradient_equal_the_depthwise_conv() {
        let device = Device::flex().autodiff();
        let taps = [0.1f32, 0.5, 0.3, 0.05, 0.05];
        let k = taps.len();
        for (n, c, h, w) in [(2, 3, 9, 12), (1, 1, 5, 5), (3, 2, 17, 6)] {
            let x0 = hashed([n, c, h, w], 1, &device);
            let target = hashed([n, c, h - k + 1, w - k + 1], 2, &device);
            let window: Vec<f32> = (0..c)
                .flat_map(|_| taps.iter().flat_map(|a| taps.iter().map(move |b| a * b)))
                .collect();
            let kernel = Tensor::<1>::from_floats(window.as_slice(), &device).reshape([c, 1, k, k]);
            let run = |ours: bool| {
                let x = x0.clone().detach().require_grad();
                let y = if ours {
                    window_filter(x.clone(), &taps)
                } else {
                    conv2d(
                        x.clone(),
                        kernel.clone(),
                        None,
                        ConvOptions::new([1, 1], [0, 0], [1, 1], c),
                    )
                };
                let grads = (y.clone() * target.clone()).sum().backward();
                (y.inner(), x.grad(&grads).expect("x is tracked"))
            };
            let (y0, dx0) = run(false);
            let (y1, dx1) = run(true);
            assert_close(y1, y0, 1e-5, &format!("output {n} {c} {h}x{w}"));
            assert_close(dx1, dx0, 1e-5, &format!("gradient {n} {c} {h}x{w}"));
        }
    }
}

//! 2x2 max pooling with stride 2 (the U-Nets' downsampling) as one op on the CPU backend.
//!
//! burn-flex lowers `max_pool2d` to a general 3-D pooling that also writes an i64 index per
//! output and bounds-checks every tap; in the SPEC §5 scoring profile it took ~7 % of the time
//! (BENCHMARKS.md). [`MaxPool2x2Ops`] is a burn backend extension: on Flex a direct pass over
//! pairs of rows, and a backward that finds each window's maximum again from the input instead
//! of storing indices (`flex`); under autodiff (`autodiff`) one tracked op. Ties and NaN go
//! where burn sends them (the first maximum in row-major order; a NaN wins). Other backends
//! (wgpu, CUDA), and odd sides, keep burn's `MaxPool2d`.

mod autodiff;
mod flex;

use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch};
use burn::nn::pool::MaxPool2d;
use burn::prelude::*;

use crate::device::on_flex;

/// 2x2 max pooling with stride 2 and its input gradient.
#[backend_extension(Flex, Autodiff)]
pub trait MaxPool2x2Ops: Backend {
    /// `[N, C, H, W]` → `[N, C, H/2, W/2]`, each output the maximum of its 2x2 window.
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The input gradient of [`MaxPool2x2Ops::max_pool2x2`] for the output gradient `grad`
    /// (`[N, C, H/2, W/2]`): each window's gradient at its maximum, zero elsewhere.
    fn max_pool2x2_x_grad(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// `pool.forward(x)` for a 2x2, stride-2 `pool` without padding, through [`MaxPool2x2Ops`] on
/// the Flex backend (with or without autodiff) when H and W are even.
pub fn max_pool2x2(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    if !on_flex(&x.device()) || h % 2 != 0 || w % 2 != 0 {
        return pool.forward(x);
    }
    let y = <Dispatch as MaxPool2x2Ops>::max_pool2x2(x.into_dispatch());
    Tensor::from_dispatch(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_data::{hashed, values};
    use burn::nn::pool::MaxPool2dConfig;

    /// Output and input gradient equal burn's on a non-contiguous input with ties, on a 2x2
    /// input, and on an odd side (burn's path).
    #[test]
    fn max_pool_and_its_gradient_equal_burns() {
        let device = Device::flex().autodiff();
        let pool = MaxPool2dConfig::new([2, 2]).init();
        // Ties: values clamped at 0.5, so about a quarter of the windows hold two or more
        // equal maxima.
        let tied = hashed([2, 6, 3, 8], 7, &device).clamp_max(0.5);
        let cases = [
            ("non-contiguous with ties", tied.swap_dims(1, 2)),
            ("2x2", hashed([1, 2, 2, 2], 3, &device)),
            ("odd side", hashed([1, 3, 5, 4], 5, &device)),
        ];
        for (case, x0) in cases {
            let [n, c, h, w] = x0.dims();
            let target = hashed([n, c, h / 2, w / 2], 11, &device);
            let run = |ours: bool| {
                let x = x0.clone().detach().require_grad();
                let y = if ours {
                    max_pool2x2(&pool, x.clone())
                } else {
                    pool.forward(x.clone())
                };
                let grads = (y.clone() * target.clone()).sum().backward();
                let dx = x.grad(&grads).expect("x is tracked");
                (values(y.inner()), values(dx))
            };
            let (burn_y, burn_dx) = run(false);
            let (y, dx) = run(true);
            assert_eq!(y, burn_y, "{case}: output");
            assert_eq!(dx, burn_dx, "{case}: input gradient");
        }
    }

    #[test]
    fn inference_equals_burns() {
        let device = Device::flex();
        let pool = MaxPool2dConfig::new([2, 2]).init();
        let x = hashed([2, 3, 8, 6], 13, &device);
        assert_eq!(
            values(max_pool2x2(&pool, x.clone())),
            values(pool.forward(x))
        );
    }
}

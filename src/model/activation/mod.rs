//! LeakyReLU as one op under autodiff on the CPU backend.
//!
//! burn's autodiff has no LeakyReLU of its own: it records the generic composite (a `< 0` mask,
//! a scaled copy, a masked select), so a training step spends three passes forward and a
//! masked select with its zero-filled partner backward per activation; in the training
//! profile `mask_where` alone took ~10 % of the step (BENCHMARKS.md). [`LeakyReluOps`] is a
//! burn backend extension: on Flex the forward is flex's fused `leaky_relu` and the backward one
//! pass over the input and the output gradient (`flex`); under autodiff (`autodiff`) it is one
//! tracked op. Other backends (wgpu, CUDA) keep burn's `leaky_relu`.

mod autodiff;
mod flex;

use burn::backend::{backend_extension, tensor::FloatTensor, Backend, Dispatch};
use burn::prelude::*;

use crate::device::on_flex;

/// LeakyReLU and its input gradient.
#[backend_extension(Flex, Autodiff)]
pub trait LeakyReluOps: Backend {
    /// `x` where `x ≥ 0`, else `slope · x`; any shape.
    fn leaky_relu_op(x: FloatTensor<Self>, slope: f32) -> FloatTensor<Self>;

    /// The input gradient of [`LeakyReluOps::leaky_relu_op`] for the output gradient `grad`
    /// (the shape of `x`): `grad` where `x ≥ 0`, else `slope · grad`.
    fn leaky_relu_x_grad(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        slope: f32,
    ) -> FloatTensor<Self>;
}

/// `burn::tensor::activation::leaky_relu(x, slope)`, through [`LeakyReluOps`] on the Flex backend
/// (with or without autodiff).
pub fn leaky_relu<const D: usize>(x: Tensor<D>, slope: f64) -> Tensor<D> {
    if !on_flex(&x.device()) {
        return burn::tensor::activation::leaky_relu(x, slope);
    }
    let y = <Dispatch as LeakyReluOps>::leaky_relu_op(x.into_dispatch(), slope as f32);
    Tensor::from_dispatch(y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_data::values;

    /// Forward and input gradient equal burn's composite, including at 0 and on a
    /// non-contiguous (transposed) input.
    #[test]
    fn leaky_relu_and_its_gradient_equal_burns() {
        let device = Device::flex().autodiff();
        let data: Vec<f32> = (0..60).map(|i| (i as f32 - 29.0) * 0.37).collect();
        let weights: Vec<f32> = (0..60).map(|i| 1.0 + (i % 7) as f32).collect();
        let x0 = Tensor::<3>::from_data(TensorData::new(data, [3, 4, 5]), &device).swap_dims(1, 2);
        let w = Tensor::<3>::from_data(TensorData::new(weights, [3, 5, 4]), &device);
        let run = |ours: bool| {
            let x = x0.clone().detach().require_grad();
            let y = if ours {
                leaky_relu(x.clone(), 0.2)
            } else {
                burn::tensor::activation::leaky_relu(x.clone(), 0.2)
            };
            let grads = (y.clone() * w.clone()).sum().backward();
            let dx = x.grad(&grads).expect("x is tracked");
            (values(y.inner()), values(dx))
        };
        let (burn_y, burn_dx) = run(false);
        let (y, dx) = run(true);
        assert_eq!(y, burn_y);
        assert_eq!(dx, burn_dx);
        assert!(dx.iter().any(|&g| g < 1.0) && y.iter().any(|&v| v < 0.0));
    }

    #[test]
    fn inference_equals_burns() {
        let device = Device::flex();
        let data: Vec<f32> = (0..24).map(|i| (i as f32 - 11.5) * 0.5).collect();
        let x = Tensor::<3>::from_data(TensorData::new(data, [2, 3, 4]), &device);
        assert_eq!(
            values(leaky_relu(x.clone(), 0.1)),
            values(burn::tensor::activation::leaky_relu(x, 0.1))
        );
    }
}

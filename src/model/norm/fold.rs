//! A 3x3 conv followed by BatchNorm (and the conv block's LeakyReLU), with the normalisation
//! folded into the conv when it uses running statistics (inference: scoring, validation), and
//! fused with the activation in training ([`super::batch_norm_leaky_relu`]).
//!
//! In inference BatchNorm is an affine map per channel, `y = (x − μ)·s + β` with
//! `s = γ/√(σ² + ε)`, so `BN(conv(x; w, b)) = conv(x; w·s, (b − μ)·s + β)`: the pass over the
//! conv's output (four element-wise ops in burn's `BatchNorm::forward`) disappears, for weights
//! rescaled per call (`Cout × Cin × 9` multiplies, negligible beside the conv). Equal to the
//! unfolded pair up to float rounding (a test).

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::BatchNorm;
use burn::prelude::*;

use super::{batch_norm, batch_norm_leaky_relu};
use crate::model::activation::leaky_relu;
use crate::model::conv::conv3x3_forward;

/// `norm.forward(conv.forward(x))`, folded when `norm` uses its running statistics.
pub(crate) fn conv_batch_norm(conv: &Conv2d, norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    if x.device().is_autodiff() && norm.training.is_enabled() {
        return batch_norm(norm, conv3x3_forward(conv, x));
    }
    conv3x3_forward(&folded(conv, norm), x)
}

/// `leaky_relu(norm.forward(conv.forward(x)), slope)`: in training BatchNorm and the activation
/// as one op ([`batch_norm_leaky_relu`]), in inference the folded conv and the activation.
pub fn conv_batch_norm_leaky_relu(
    conv: &Conv2d,
    norm: &BatchNorm,
    x: Tensor<4>,
    slope: f64,
) -> Tensor<4> {
    if x.device().is_autodiff() && norm.training.is_enabled() {
        return batch_norm_leaky_relu(norm, conv3x3_forward(conv, x), slope);
    }
    leaky_relu(conv_batch_norm(conv, norm, x), slope)
}

/// `conv` with `norm` (in inference) folded into its weight and bias.
fn folded(conv: &Conv2d, norm: &BatchNorm) -> Conv2d {
    let weight = conv.weight.val(); // [Cout, Cin, kh, kw]
    let [cout, ..] = weight.dims();
    let scale = norm.gamma.val() / (norm.running_var.value() + norm.epsilon).sqrt(); // [Cout]
    let bias = match &conv.bias {
        Some(b) => b.val(),
        None => Tensor::zeros([cout], &weight.device()),
    }; // [Cout]
    let bias = (bias - norm.running_mean.value()) * scale.clone() + norm.beta.val();
    let weight = weight * scale.reshape([cout, 1, 1, 1]);
    Conv2d {
        weight: Param::from_tensor(weight),
        bias: Some(Param::from_tensor(bias)),
        ..conv.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_data::{assert_close, hashed};
    use burn::nn::conv::Conv2dConfig;
    use burn::nn::{BatchNormConfig, PaddingConfig2d};

    /// Folded equals conv then BatchNorm, with running statistics far from 0 and 1, on the CPU
    /// kernel's path.
    #[test]
    fn folded_conv_equals_conv_then_batch_norm() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([3, 5], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&device);
        let mut norm = BatchNormConfig::new(5).init(&device);
        let stats =
            |seed, shift: f32| hashed([1, 1, 1, 5], seed, &device).reshape([5]) * 0.5 + shift;
        norm.gamma = Param::from_tensor(stats(1, 1.2));
        norm.beta = Param::from_tensor(stats(2, 0.3));
        norm.running_mean = burn::module::RunningState::new(stats(3, -0.4));
        norm.running_var = burn::module::RunningState::new(stats(4, 2.0));
        let x = hashed([2, 3, 6, 7], 5, &device);
        let reference = norm.forward(conv.forward(x.clone()));
        assert_close(conv_batch_norm(&conv, &norm, x), reference, 1e-5, "folded");
    }
}

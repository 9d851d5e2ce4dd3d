use burn::module::Param;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::prelude::*;

use super::{batch_norm, batch_norm_leaky_relu};
use crate::model::test_data::{assert_close_values, hashed, values};

/// A norm with non-trivial γ and β.
fn norm(c: usize, device: &Device) -> BatchNorm {
    let mut norm = BatchNormConfig::new(c).init(device);
    let gamma: Vec<f32> = (0..c).map(|i| 0.5 + i as f32 * 0.25).collect();
    let beta: Vec<f32> = (0..c).map(|i| i as f32 * 0.1 - 0.2).collect();
    norm.gamma = Param::from_tensor(Tensor::from_floats(gamma.as_slice(), device));
    norm.beta = Param::from_tensor(Tensor::from_floats(beta.as_slice(), device));
    norm
}

/// Output, running statistics and the gradients for x, γ and β equal burn's BatchNorm, alone
/// and followed by burn's LeakyReLU (fused in ours).
#[test]
fn batch_norm_training_equals_burns() {
    let device = Device::flex().autodiff();
    let cases = [(3, 4, 5, 6), (1, 2, 1, 1), (2, 3, 7, 2)];
    for ((n, c, h, w), slope) in cases
        .into_iter()
        .flat_map(|dims| [(dims, None), (dims, Some(0.2))])
    {
        let x0 = hashed([n, c, h, w], 1, &device);
        let target = hashed([n, c, h, w], 2, &device);
        let run = |ours: bool| {
            let norm = norm(c, &device);
            let x = x0.clone().detach().require_grad();
            let y = match (ours, slope) {
                (true, None) => batch_norm(&norm, x.clone()),
                (true, Some(slope)) => batch_norm_leaky_relu(&norm, x.clone(), slope),
                (false, None) => norm.forward(x.clone()),
                (false, Some(slope)) => {
                    burn::tensor::activation::leaky_relu(norm.forward(x.clone()), slope)
                }
            };
            let grads = (y.clone() * target.clone()).sum().backward();
            let dx = x.grad(&grads).expect("x is tracked");
            let dgamma = norm.gamma.val().grad(&grads).expect("γ is tracked");
            let dbeta = norm.beta.val().grad(&grads).expect("β is tracked");
            [
                values(y.inner()),
                values(dx),
                values(dgamma),
                values(dbeta),
                values(norm.running_mean.value()),
                values(norm.running_var.value()),
            ]
        };
        let (burn, ours) = (run(false), run(true));
        for (what, (a, b)) in [
            "output",
            "x grad",
            "γ grad",
            "β grad",
            "running mean",
            "running var",
        ]
        .iter()
        .zip(ours.iter().zip(&burn))
        {
            let case = format!("{what}, {n}x{c}x{h}x{w}, slope {slope:?}");
            assert_close_values(a, b, 1e-4, &case);
        }
        if slope.is_some() && n * h * w > 1 {
            // Both sides of the activation were exercised.
            assert!(ours[0].iter().any(|&v| v < 0.0) && ours[0].iter().any(|&v| v > 0.0));
        }
    }
}

/// Without autodiff, or with the layer's training flag off, it is burn's inference path.
#[test]
fn inference_is_burns() {
    let device = Device::flex();
    let norm = norm(3, &device);
    let x = hashed([2, 3, 4, 4], 3, &device);
    assert_eq!(
        values(batch_norm(&norm, x.clone())),
        values(norm.forward(x))
    );
}

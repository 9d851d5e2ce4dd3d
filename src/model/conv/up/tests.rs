use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
use burn::prelude::*;

use super::up2x2_forward;
use crate::model::test_data::{assert_close, assert_grads_close, hashed, output_and_grads};
use crate::model::unet::init_seeded_with;

/// The U-Net's upsampling conv with seeded weights (under the lock of `init_seeded_with`).
fn seeded_up(cin: usize, cout: usize, device: &Device, seed: u64) -> ConvTranspose2d {
    init_seeded_with(device, seed, || {
        ConvTranspose2dConfig::new([cin, cout], [2, 2])
            .with_stride([2, 2])
            .init(device)
    })
}

/// The fast path's output and its gradients for x, the weights and the bias equal burn's.
#[test]
fn fast_up_conv_matches_burn_and_its_gradients() {
    let device = Device::flex().autodiff();
    // The last case has several bands, the last one partial (600 rows of 1 px > 512).
    for (n, cin, cout, h, w) in [
        (3, 5, 7, 6, 9),
        (1, 1, 2, 1, 1),
        (2, 4, 3, 2, 8),
        (3, 2, 3, 600, 1),
    ] {
        let up = seeded_up(cin, cout, &device, 5);
        let x = hashed([n, cin, h, w], 1, &device);
        let target = hashed([n, cout, 2 * h, 2 * w], 2, &device);
        let bias = up.bias.as_ref().expect("a bias");
        let ours = output_and_grads(|x| up2x2_forward(&up, x), &up.weight, bias, &x, &target);
        let burn = output_and_grads(|x| up.forward(x), &up.weight, bias, &x, &target);
        assert_grads_close(
            &ours,
            &burn,
            &format!("n {n} cin {cin} cout {cout} {h}x{w}"),
        );
    }
}

/// Without autodiff (scoring) the fast path equals burn's forward too.
#[test]
fn fast_up_conv_inference_equals_burn() {
    let device = Device::flex();
    let up = seeded_up(3, 4, &device, 3);
    let x = hashed([2, 3, 5, 7], 3, &device);
    assert_close(
        up2x2_forward(&up, x.clone()),
        up.forward(x),
        1e-4,
        "inference",
    );
}

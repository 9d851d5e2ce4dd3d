use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;

use super::conv3x3_forward;
use crate::model::test_data::{assert_close, assert_grads_close, hashed, output_and_grads};
use crate::model::unet::init_seeded_with;

/// A 3x3 "same" conv with seeded weights (under the lock of `init_seeded_with`: burn's
/// generator is global, and tests run in parallel).
fn seeded_conv(cin: usize, cout: usize, device: &Device, seed: u64) -> Conv2d {
    init_seeded_with(device, seed, || {
        Conv2dConfig::new([cin, cout], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device)
    })
}

/// The fast path's output and its gradients for x, the weights and the bias equal burn's conv.
#[test]
fn fast_conv_matches_burn_conv_and_its_gradients() {
    let device = Device::flex().autodiff();
    // The fourth case has a partial band of rows and a partial pixel tile (13 x 20 = 260 > 256);
    // the last goes through Winograd (64 channels, 9 x 8 tiles, odd sides) forward and for
    // the input gradient.
    for (n, cin, cout, h, w) in [
        (3, 5, 7, 6, 9),
        (1, 1, 2, 1, 1),
        (2, 4, 3, 8, 2),
        (5, 3, 4, 13, 20),
        (2, 64, 64, 17, 15),
    ] {
        let conv = seeded_conv(cin, cout, &device, 7);
        let x = hashed([n, cin, h, w], 1, &device);
        let target = hashed([n, cout, h, w], 2, &device);
        let bias = conv.bias.as_ref().expect("a bias");
        let ours = output_and_grads(
            |x| conv3x3_forward(&conv, x),
            &conv.weight,
            bias,
            &x,
            &target,
        );
        let burn = output_and_grads(|x| conv.forward(x), &conv.weight, bias, &x, &target);
        assert_grads_close(
            &ours,
            &burn,
            &format!("n {n} cin {cin} cout {cout} {h}x{w}"),
        );
    }
}

/// Without autodiff (scoring) the fast path equals burn's forward too.
#[test]
fn fast_conv_inference_equals_burn_conv() {
    let device = Device::flex();
    let conv = seeded_conv(3, 4, &device, 3);
    let x = hashed([2, 3, 5, 7], 3, &device);
    assert_close(
        conv3x3_forward(&conv, x.clone()),
        conv.forward(x),
        1e-4,
        "inference",
    );
}

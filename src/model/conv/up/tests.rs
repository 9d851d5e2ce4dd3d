use burn::nn::conv::{ConvTranspose2d, ConvTranspose2dConfig};
use burn::prelude::*;

use super::up2x2_forward;
use crate::model::unet::init_seeded_with;

fn assert_close(a: Tensor<4>, b: Tensor<4>, what: &str) {
    let (a, b) = (
        a.into_data().try_to_vec::<f32>().unwrap(),
        b.into_data().try_to_vec::<f32>().unwrap(),
    );
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let worst = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        worst <= 1e-4 * scale,
        "{what}: max |diff| {worst} (scale {scale})"
    );
}

/// The U-Net's upsampling conv with seeded weights (under the lock of `init_seeded_with`).
fn seeded_up(cin: usize, cout: usize, device: &Device, seed: u64) -> ConvTranspose2d {
    init_seeded_with(device, seed, || {
        ConvTranspose2dConfig::new([cin, cout], [2, 2])
            .with_stride([2, 2])
            .init(device)
    })
}

/// Values in [-1, 1) from a multiplicative hash of the index and `seed`.
fn hashed(dims: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
    let values: Vec<f32> = (0..dims.iter().product::<usize>() as u64)
        .map(|i| {
            let h = (i ^ (seed << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            h as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    Tensor::from_data(TensorData::new(values, dims), device)
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
        let run = |fast: bool| {
            let x = x.clone().detach().require_grad();
            let y = if fast {
                up2x2_forward(&up, x.clone())
            } else {
                up.forward(x.clone())
            };
            let grads = (y.clone() * target.clone()).sum().backward();
            let dx = x.grad(&grads).expect("x grad");
            let dw = up.weight.val().grad(&grads).expect("weight grad");
            let db = up
                .bias
                .as_ref()
                .unwrap()
                .val()
                .grad(&grads)
                .expect("bias grad");
            (y.inner(), dx, dw, db.reshape([1, 1, 1, cout]))
        };
        let (y0, dx0, dw0, db0) = run(false);
        let (y1, dx1, dw1, db1) = run(true);
        let case = format!("n {n} cin {cin} cout {cout} {h}x{w}");
        assert_close(y1, y0, &format!("output, {case}"));
        assert_close(dx1, dx0, &format!("x gradient, {case}"));
        assert_close(dw1, dw0, &format!("weight gradient, {case}"));
        assert_close(db1, db0, &format!("bias gradient, {case}"));
    }
}

/// Without autodiff (scoring) the fast path equals burn's forward too.
#[test]
fn fast_up_conv_inference_equals_burn() {
    let device = Device::flex();
    let up = seeded_up(3, 4, &device, 3);
    let x = hashed([2, 3, 5, 7], 3, &device);
    assert_close(up2x2_forward(&up, x.clone()), up.forward(x), "inference");
}

//! Helpers of the kernels' tests: data that does not touch burn's global generator (tests run in
//! parallel, and seeded initialisations draw from it under a lock), and a relative comparison.

use burn::module::Param;
use burn::prelude::*;

/// Values in [-1, 1) from a multiplicative hash of the index and `seed`.
pub fn hashed(dims: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
    let values = hashed_values(dims.iter().product(), seed);
    Tensor::from_data(TensorData::new(values, dims), device)
}

/// The `len` values of [`hashed`], as a plain vector.
pub fn hashed_values(len: usize, seed: u64) -> Vec<f32> {
    (0..len as u64)
        .map(|i| {
            let h = (i ^ (seed << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            h as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// The values of a float tensor.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Asserts `max |a − b| ≤ tolerance · max |b|` (with a floor on the scale).
pub fn assert_close_values(a: &[f32], b: &[f32], tolerance: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    let worst = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(
        worst <= tolerance * scale,
        "{what}: max |diff| {worst} (scale {scale})"
    );
}

/// [`assert_close_values`] of two tensors.
pub fn assert_close<const D: usize>(a: Tensor<D>, b: Tensor<D>, tolerance: f32, what: &str) {
    assert_close_values(&values(a), &values(b), tolerance, what);
}

/// The output and the input, weight and bias gradients (flattened) of `forward(x)` under the
/// loss `Σ y·target`, with `weight` and `bias` the parameters `forward` uses.
pub fn output_and_grads(
    forward: impl Fn(Tensor<4>) -> Tensor<4>,
    weight: &Param<Tensor<4>>,
    bias: &Param<Tensor<1>>,
    x: &Tensor<4>,
    target: &Tensor<4>,
) -> [Vec<f32>; 4] {
    let x = x.clone().detach().require_grad();
    let y = forward(x.clone());
    let grads = (y.clone() * target.clone()).sum().backward();
    let dx = x.grad(&grads).expect("x is tracked");
    let dw = weight.val().grad(&grads).expect("the weight is tracked");
    let db = bias.val().grad(&grads).expect("the bias is tracked");
    [values(y.inner()), values(dx), values(dw), values(db)]
}

/// [`assert_close_values`] (1e-4) of each of two [`output_and_grads`].
pub fn assert_grads_close(ours: &[Vec<f32>; 4], reference: &[Vec<f32>; 4], case: &str) {
    let names = ["output", "x gradient", "weight gradient", "bias gradient"];
    for ((name, a), b) in names.iter().zip(ours).zip(reference) {
        assert_close_values(a, b, 1e-4, &format!("{name}, {case}"));
    }
}

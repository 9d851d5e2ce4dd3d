//! [`MaxPool2x2Ops`] on Flex (f32, even sides): one parallel pass per pair of input rows, forward
//! and backward; other dtypes and odd sides use burn's pooling.

use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata};
use burn::tensor::{DType, IntDType, TensorData};
use rayon::prelude::*;

use super::MaxPool2x2Ops;

/// Output rows per parallel task (at least one).
fn rows_per_task(out_w: usize) -> usize {
    ((1 << 14) / out_w.max(1)).max(1)
}

/// The position (0–3, row-major in the window) of the maximum of a window's values `v`, as
/// burn-flex picks it: the first of equal maxima, and any NaN (the last one) over numbers.
#[inline]
fn argmax4(v: [f32; 4]) -> usize {
    let mut best = 0;
    for k in 1..4 {
        if v[k] > v[best] || v[k].is_nan() {
            best = k;
        }
    }
    best
}

/// The window values of output column `ox` from the input rows `top` and `bottom`.
#[inline]
fn window(top: &[f32], bottom: &[f32], ox: usize) -> [f32; 4] {
    let x = 2 * ox;
    [top[x], top[x + 1], bottom[x], bottom[x + 1]]
}

/// The dims, as `[N, C, H, W]`, when `x` is an f32 tensor with even H and W.
fn pooled_dims(x: &FlexTensor) -> Option<[usize; 4]> {
    let dims = x.shape().dims::<4>();
    (x.dtype() == DType::F32 && dims[2] % 2 == 0 && dims[3] % 2 == 0).then_some(dims)
}

impl MaxPool2x2Ops for Flex {
    fn max_pool2x2(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let Some([n, c, h, w]) = pooled_dims(&x) else {
            return Self::max_pool2d(x, [2, 2], [2, 2], [0, 0], [1, 1], false);
        };
        let x = x.to_contiguous();
        let xs = x.as_slice::<f32>().expect("contiguous f32");
        let (oh, ow) = (h / 2, w / 2);
        let mut y = vec![0f32; n * c * oh * ow];
        // Output row r (over all planes) reads input rows 2r and 2r + 1 (rows of a plane are
        // consecutive, and a plane has an even number of them).
        let rows = rows_per_task(ow);
        y.par_chunks_mut(rows * ow)
            .enumerate()
            .for_each(|(task, out)| {
                for (i, out_row) in out.chunks_mut(ow).enumerate() {
                    let r = task * rows + i;
                    let top = &xs[2 * r * w..(2 * r + 1) * w];
                    let bottom = &xs[(2 * r + 1) * w..(2 * r + 2) * w];
                    for (ox, o) in out_row.iter_mut().enumerate() {
                        let v = window(top, bottom, ox);
                        *o = v[argmax4(v)];
                    }
                }
            });
        FlexTensor::from_data(TensorData::new(y, [n, c, oh, ow]))
    }

    fn max_pool2x2_x_grad(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let Some([n, c, h, w]) = pooled_dims(&x) else {
            let indices = Self::max_pool2d_with_indices(
                x.clone(),
                [2, 2],
                [2, 2],
                [0, 0],
                [1, 1],
                false,
                IntDType::I64,
            )
            .indices;
            return Self::max_pool2d_with_indices_backward(
                x,
                [2, 2],
                [2, 2],
                [0, 0],
                [1, 1],
                false,
                grad,
                indices,
            )
            .x_grad;
        };
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        let xs = x.as_slice::<f32>().expect("contiguous f32");
        let gs = grad.as_slice::<f32>().expect("contiguous f32");
        let ow = w / 2;
        let mut dx = vec![0f32; n * c * h * w];
        // Each task owns whole pairs of input rows of dx.
        let rows = rows_per_task(ow);
        dx.par_chunks_mut(rows * 2 * w)
            .enumerate()
            .for_each(|(task, d)| {
                for (i, pair) in d.chunks_mut(2 * w).enumerate() {
                    let r = task * rows + i;
                    let top = &xs[2 * r * w..(2 * r + 1) * w];
                    let bottom = &xs[(2 * r + 1) * w..(2 * r + 2) * w];
                    let g = &gs[r * ow..(r + 1) * ow];
                    for (ox, &g) in g.iter().enumerate() {
                        let k = argmax4(window(top, bottom, ox));
                        pair[(k / 2) * w + 2 * ox + k % 2] = g;
                    }
                }
            });
        FlexTensor::from_data(TensorData::new(dx, [n, c, h, w]))
    }
}

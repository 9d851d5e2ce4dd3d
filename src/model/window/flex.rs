//! [`WindowOps`] on Flex: the filter and its adjoint as two 1-D passes per plane, planes in
//! parallel (computed in f32; other float types are cast to f32 and back).

use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata};
use burn::tensor::{DType, FloatDType, TensorData};
use rayon::prelude::*;

use super::WindowOps;

impl WindowOps for Flex {
    fn window_filter(x: FloatTensor<Self>, taps: FloatTensor<Self>) -> FloatTensor<Self> {
        let dtype = x.dtype();
        let (x, taps) = (as_f32(x), as_f32(taps));
        let [n, c, h, w] = dims4(&x);
        let k = taps.shape()[0];
        let (x, taps) = (x.to_contiguous(), taps.to_contiguous());
        let xs = x.as_slice::<f32>().expect("contiguous f32 input");
        let ts = taps.as_slice::<f32>().expect("contiguous f32 taps");
        let (ho, wo) = (h + 1 - k, w + 1 - k);
        let mut y = vec![0f32; n * c * ho * wo];
        y.par_chunks_mut(ho * wo)
            .zip(xs.par_chunks(h * w))
            .for_each(|(out, plane)| filter_plane(plane, ts, h, w, out));
        restore(
            FlexTensor::from_data(TensorData::new(y, [n, c, ho, wo])),
            dtype,
        )
    }

    fn window_filter_x_grad(taps: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let dtype = grad.dtype();
        let (taps, grad) = (as_f32(taps), as_f32(grad));
        let [n, c, ho, wo] = dims4(&grad);
        let k = taps.shape()[0];
        let (taps, grad) = (taps.to_contiguous(), grad.to_contiguous());
        let ts = taps.as_slice::<f32>().expect("contiguous f32 taps");
        let gs = grad.as_slice::<f32>().expect("contiguous f32 gradient");
        let (h, w) = (ho + k - 1, wo + k - 1);
        let mut dx = vec![0f32; n * c * h * w];
        dx.par_chunks_mut(h * w)
            .zip(gs.par_chunks(ho * wo))
            .for_each(|(out, g)| adjoint_plane(g, ts, ho, wo, out));
        restore(
            FlexTensor::from_data(TensorData::new(dx, [n, c, h, w])),
            dtype,
        )
    }
}

/// `out [H − K + 1, W − K + 1]` = the plane `x [H, W]` filtered along rows, then columns.
fn filter_plane(x: &[f32], taps: &[f32], h: usize, w: usize, out: &mut [f32]) {
    let k = taps.len();
    let wo = w + 1 - k;
    // Rows: tmp [H, Wo].
    let mut tmp = vec![0f32; h * wo];
    for (src, dst) in x.chunks_exact(w).zip(tmp.chunks_exact_mut(wo)) {
        for (j, d) in dst.iter_mut().enumerate() {
            *d = taps.iter().zip(&src[j..j + k]).map(|(t, v)| t * v).sum();
        }
    }
    // Columns: out row i = Σ_k taps[k] · tmp row i + k.
    for (i, dst) in out.chunks_exact_mut(wo).enumerate() {
        for (t, src) in taps.iter().zip(tmp[i * wo..].chunks_exact(wo)) {
            dst.iter_mut().zip(src).for_each(|(d, s)| *d += t * s);
        }
    }
}

/// `out [Ho + K − 1, Wo + K − 1]` = the adjoint of [`filter_plane`] applied to `g [Ho, Wo]`:
/// every output gradient spread back over the window it was filtered from.
fn adjoint_plane(g: &[f32], taps: &[f32], ho: usize, wo: usize, out: &mut [f32]) {
    let k = taps.len();
    let (h, w) = (ho + k - 1, wo + k - 1);
    // Columns: tmp [H, Wo], tmp row r + k += taps[k] · g row r.
    let mut tmp = vec![0f32; h * wo];
    for (r, src) in g.chunks_exact(wo).enumerate() {
        for (t, dst) in taps.iter().zip(tmp[r * wo..].chunks_exact_mut(wo)) {
            dst.iter_mut().zip(src).for_each(|(d, s)| *d += t * s);
        }
    }
    // Rows: out[i, j + k] += taps[k] · tmp[i, j].
    for (src, dst) in tmp.chunks_exact(wo).zip(out.chunks_exact_mut(w)) {
        for (kk, t) in taps.iter().enumerate() {
            dst[kk..kk + wo]
                .iter_mut()
                .zip(src)
                .for_each(|(d, s)| *d += t * s);
        }
    }
}

fn as_f32(t: FlexTensor) -> FlexTensor {
    if t.dtype() == DType::F32 {
        t
    } else {
        Flex::float_cast(t, FloatDType::F32)
    }
}

fn restore(t: FlexTensor, dtype: DType) -> FlexTensor {
    if dtype == DType::F32 {
        t
    } else {
        Flex::float_cast(t, dtype.into())
    }
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.shape();
    [s[0], s[1], s[2], s[3]]
}

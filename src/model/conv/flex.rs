//! [`Conv3x3Ops`] on Flex (f32; other dtypes go to burn's conv): the forward as im2col bands
//! of whole rows and one GEMM each into the NCHW output, the input gradient as that forward with
//! the flipped, transposed kernel, and the weight and bias gradients as pixel-major im2col tiles
//! and a GEMM (Cout x 9·Cin, K = the tile's pixels) accumulated over the batch.

use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata};
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use super::{same_options, winograd, Conv3x3Ops};

impl Conv3x3Ops for Flex {
    fn conv3x3(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        if [x.dtype(), weight.dtype(), bias.dtype()] != [DType::F32; 3] {
            return Self::conv2d(x, weight, Some(bias), same_options());
        }
        let [n, cin, h, w] = dims4(&x);
        let cout = dims4(&weight)[0];
        let (x, weight, bias) = (
            x.to_contiguous(),
            weight.to_contiguous(),
            bias.to_contiguous(),
        );
        let (Some(xs), Some(ws), Some(bs)) = (
            x.as_slice::<f32>(),
            weight.as_slice::<f32>(),
            bias.as_slice::<f32>(),
        ) else {
            return Self::conv2d(x, weight, Some(bias), same_options());
        };
        let y = forward_f32(xs, ws, Some(bs), Dims { n, cin, cout, h, w });
        FlexTensor::from_data(TensorData::new(y, [n, cout, h, w]))
    }

    fn conv3x3_x_grad(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let [n, cout, h, w] = dims4(&grad);
        let cin = dims4(&weight)[1];
        if weight.dtype() != DType::F32 || grad.dtype() != DType::F32 {
            let x_shape = [n, cin, h, w].into();
            let x = FlexTensor::zeros(x_shape, grad.dtype());
            return Self::conv2d_x_backward(x, weight, grad, same_options());
        }
        let (weight, grad) = (weight.to_contiguous(), grad.to_contiguous());
        let ws = weight.as_slice::<f32>().expect("contiguous f32 weight");
        let gs = grad.as_slice::<f32>().expect("contiguous f32 gradient");
        // dx = the same conv of the output gradient with the kernels flipped and the channel
        // axes swapped: W'[ci, co, kh, kw] = W[co, ci, 2 − kh, 2 − kw].
        let mut flipped = vec![0f32; ws.len()];
        for co in 0..cout {
            for ci in 0..cin {
                for t in 0..9 {
                    flipped[(ci * cout + co) * 9 + 8 - t] = ws[(co * cin + ci) * 9 + t];
                }
            }
        }
        let d = Dims {
            n,
            cin: cout,
            cout: cin,
            h,
            w,
        };
        let dx = forward_f32(gs, &flipped, None, d);
        FlexTensor::from_data(TensorData::new(dx, [n, cin, h, w]))
    }

    fn conv3x3_param_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        if x.dtype() != DType::F32 || grad.dtype() != DType::F32 {
            return generic_param_grads(x, weight, grad);
        }
        let [n, cin, h, w] = dims4(&x);
        let cout = dims4(&grad)[1];
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        let (Some(xs), Some(gs)) = (x.as_slice::<f32>(), grad.as_slice::<f32>()) else {
            return generic_param_grads(x, weight, grad);
        };
        let (dw, db) = param_grads_f32(xs, gs, Dims { n, cin, cout, h, w });
        (
            FlexTensor::from_data(TensorData::new(dw, [cout, cin, 3, 3])),
            FlexTensor::from_data(TensorData::new(db, [cout])),
        )
    }
}

/// burn's generic weight and bias gradients (other float types).
fn generic_param_grads(
    x: FlexTensor,
    weight: FlexTensor,
    grad: FlexTensor,
) -> (FlexTensor, FlexTensor) {
    let cout = dims4(&grad)[1];
    let bias = FlexTensor::zeros([cout].into(), grad.dtype());
    let dw = Flex::conv2d_weight_backward(x.clone(), weight, grad.clone(), same_options());
    let db = Flex::conv2d_bias_backward(x, bias, grad);
    (dw, db)
}

pub(super) fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.shape();
    [s[0], s[1], s[2], s[3]]
}

/// Sizes of one conv: batch, input and output channels, height and width.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dims {
    pub n: usize,
    pub cin: usize,
    pub cout: usize,
    pub h: usize,
    pub w: usize,
}

/// A pointer the threads of one conv write through, each to its own disjoint part.
#[derive(Clone, Copy)]
pub(super) struct SharedOut(pub(super) *mut f32);
// SAFETY: only used for writes to disjoint index sets, one per task (see `forward_f32`).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The pointer (a method, so that closures capture the whole `Sync` wrapper).
    pub(super) fn ptr(self) -> *mut f32 {
        self.0
    }
}

/// `y [N, Cout, H, W] = conv3x3(x [N, Cin, H, W], w [Cout, Cin, 3, 3]) + bias`, padding 1: by
/// Winograd F(2x2, 3x3) where it pays ([`winograd::pays`]), else by [`forward_im2col`].
pub(crate) fn forward_f32(x: &[f32], wt: &[f32], bias: Option<&[f32]>, d: Dims) -> Vec<f32> {
    if winograd::pays(d) {
        winograd::forward(x, wt, bias, d)
    } else {
        forward_im2col(x, wt, bias, d)
    }
}

/// `y [N, Cout, H, W] = conv3x3(x [N, Cin, H, W], w [Cout, Cin, 3, 3]) + bias`, padding 1.
/// Per image and band of whole image rows, `cols [Cin·9, band]` holds the input shifted by each
/// tap (row copies), and `y_band [band, Cout]` (column-major inside `y`) = `cols`ᵀ · `w`ᵀ: both
/// GEMM operands arrive in the order the micro-kernel reads, so nothing is transposed.
pub(crate) fn forward_im2col(x: &[f32], wt: &[f32], bias: Option<&[f32]>, d: Dims) -> Vec<f32> {
    let Dims { n, cin, cout, h, w } = d;
    let (hw, rows) = (h * w, 9 * cin);
    let mut y = vec![0f32; n * cout * hw];
    if let Some(bias) = bias {
        for (plane, &b) in y.chunks_exact_mut(hw).zip(bias.iter().cycle()) {
            plane.fill(b);
        }
    }
    let band_rows = (TILE / w).clamp(1, h);
    let bands = h.div_ceil(band_rows);
    let out = SharedOut(y.as_mut_ptr());
    (0..n * bands).into_par_iter().for_each_init(
        || vec![0f32; rows * band_rows * w],
        |cols, task| {
            let (b, band) = (task / bands, task % bands);
            let oh0 = band * band_rows;
            let bh = band_rows.min(h - oh0);
            let len = bh * w;
            let xb = &x[b * cin * hw..(b + 1) * cin * hw];
            im2col_rows(xb, cin, h, w, oh0, bh, &mut cols[..rows * len]);
            // SAFETY: task (b, band) writes only y[b, co, oh0·w .. oh0·w + len] for each co,
            // disjoint from every other task's; dst [len, cout] has row stride 1 and column
            // stride hw inside image b; lhs cols [len, rows] has row stride 1, column stride
            // len; rhs wᵀ [rows, cout] has row stride 1, column stride rows.
            unsafe {
                gemm::gemm(
                    len,
                    cout,
                    rows,
                    out.ptr().add(b * cout * hw + oh0 * w),
                    hw as isize,
                    1,
                    true,
                    cols.as_ptr(),
                    len as isize,
                    1,
                    wt.as_ptr(),
                    rows as isize,
                    1,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        },
    );
    y
}

/// `cols [Cin·9, bh·W]`: row `ci·9 + kh·3 + kw` holds image rows `oh0..oh0 + bh` of channel
/// `ci` of `x [Cin, H, W]` shifted by `(kh − 1, kw − 1)`, zero where the shift leaves the image.
fn im2col_rows(x: &[f32], cin: usize, h: usize, w: usize, oh0: usize, bh: usize, cols: &mut [f32]) {
    let (hw, len) = (h * w, bh * w);
    for ci in 0..cin {
        let plane = &x[ci * hw..(ci + 1) * hw];
        for kh in 0..3 {
            for kw in 0..3 {
                let r = ci * 9 + kh * 3 + kw;
                let dst = &mut cols[r * len..(r + 1) * len];
                for (i, out) in dst.chunks_exact_mut(w).enumerate() {
                    let ih = oh0 + i + kh;
                    if ih < 1 || ih > h {
                        out.fill(0.0);
                        continue;
                    }
                    let src = &plane[(ih - 1) * w..ih * w];
                    match kw {
                        0 => {
                            out[0] = 0.0;
                            out[1..].copy_from_slice(&src[..w - 1]);
                        }
                        1 => out.copy_from_slice(src),
                        _ => {
                            out[..w - 1].copy_from_slice(&src[1..]);
                            out[w - 1] = 0.0;
                        }
                    }
                }
            }
        }
    }
}

/// Output pixels per im2col tile: `cols` of one tile, `[TILE, Cin·9]`, stays in L2.
const TILE: usize = 256;

/// `dW [Cout, Cin·9]` and `db [Cout]` from `x [N, Cin, H, W]` and the output gradient
/// `g [N, Cout, H, W]` (both contiguous NCHW). Per image and band of whole rows, the band is
/// transposed once to channel-last with a zero border (`halo [(bh + 2)·(W + 2), Cin]`), and
/// `cols [len, 9·Cin]` (column `t·Cin + ci`, t = kh·3 + kw) is built from it by contiguous
/// copies of `Cin` floats; then `dW'ᵀ [9·Cin, Cout] += colsᵀ · g_bandᵀ`, a GEMM whose left
/// operand is in the column-major order the micro-kernel packs cheaply. Images are split into
/// one contiguous run per thread, each with its own accumulator, summed at the end, and `dW'`
/// is put back into the weight's `(ci, t)` order.
pub(crate) fn param_grads_f32(x: &[f32], g: &[f32], d: Dims) -> (Vec<f32>, Vec<f32>) {
    let Dims { n, cin, cout, h, w } = d;
    let (hw, rows) = (h * w, 9 * cin);
    let band_rows = (TILE / w).clamp(1, h);
    // dW' transposed: [rows, cout] column-major is dW' [cout, rows] row-major.
    let scratch = || {
        (
            vec![0f32; band_rows * w * rows],
            vec![0f32; (band_rows + 2) * (w + 2) * cin],
        )
    };
    let (dw, db) = sum_over_image_runs(n, cout * rows, cout, scratch, |b, (cols, halo), dw, db| {
        let xb = &x[b * cin * hw..(b + 1) * cin * hw];
        let gb = &g[b * cout * hw..(b + 1) * cout * hw];
        for oh0 in (0..h).step_by(band_rows) {
            let bh = band_rows.min(h - oh0);
            let len = bh * w;
            channel_last_halo(xb, cin, h, w, oh0, bh, halo);
            im2col_from_halo(halo, cin, w, bh, cols);
            // SAFETY: dst is [rows, cout] with row stride 1 and column stride rows
            // (inside dw); lhs cols [len, rows] read as its transpose [rows, len]
            // (row stride 1, column stride rows); rhs gb's pixels oh0·w .. oh0·w +
            // len of each output channel read as [len, cout] (row stride 1, column
            // stride hw). Every index stays inside the slices; dst aliases neither.
            unsafe {
                gemm::gemm(
                    rows,
                    cout,
                    len,
                    dw.as_mut_ptr(),
                    rows as isize,
                    1,
                    true,
                    cols.as_ptr(),
                    rows as isize,
                    1,
                    gb.as_ptr().add(oh0 * w),
                    hw as isize,
                    1,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
        for (acc, row) in db.iter_mut().zip(gb.chunks_exact(hw)) {
            *acc += row.iter().sum::<f32>();
        }
    });
    // [cout, t, ci] → [cout, ci, t].
    let mut out = vec![0f32; cout * rows];
    for (src, dst) in dw.chunks_exact(rows).zip(out.chunks_exact_mut(rows)) {
        for (t, taps) in src.chunks_exact(cin).enumerate() {
            for (ci, &v) in taps.iter().enumerate() {
                dst[ci * 9 + t] = v;
            }
        }
    }
    (out, db)
}

/// The weight and bias gradients of a conv, accumulated over the images `0..n`: the images are
/// split into one contiguous run per thread; each run gets zeroed `dw` (`dw_len`) and `db`
/// (`db_len`) accumulators and its own `scratch()`, `accumulate(image, scratch, dw, db)` adds
/// each image, and the runs' accumulators are summed in run order.
pub(super) fn sum_over_image_runs<S>(
    n: usize,
    dw_len: usize,
    db_len: usize,
    scratch: impl Fn() -> S + Sync,
    accumulate: impl Fn(usize, &mut S, &mut [f32], &mut [f32]) + Sync,
) -> (Vec<f32>, Vec<f32>) {
    let threads = rayon::current_num_threads().max(1);
    let per_thread = n.div_ceil(threads).max(1);
    let partials: Vec<(Vec<f32>, Vec<f32>)> = (0..n)
        .collect::<Vec<_>>()
        .par_chunks(per_thread)
        .map(|images| {
            let (mut dw, mut db) = (vec![0f32; dw_len], vec![0f32; db_len]);
            let mut s = scratch();
            for &b in images {
                accumulate(b, &mut s, &mut dw, &mut db);
            }
            (dw, db)
        })
        .collect();
    let mut parts = partials.into_iter();
    let (mut dw, mut db) = parts
        .next()
        .unwrap_or_else(|| (vec![0.0; dw_len], vec![0.0; db_len]));
    for (pw, pb) in parts {
        dw.iter_mut().zip(&pw).for_each(|(a, b)| *a += b);
        db.iter_mut().zip(&pb).for_each(|(a, b)| *a += b);
    }
    (dw, db)
}

/// `halo [(bh + 2)·(W + 2), Cin]`: rows `oh0 − 1 .. oh0 + bh + 1` of `x [Cin, H, W]`,
/// channel-last, with a zero border (padding 1, and rows outside the image).
fn channel_last_halo(
    x: &[f32],
    cin: usize,
    h: usize,
    w: usize,
    oh0: usize,
    bh: usize,
    halo: &mut [f32],
) {
    let (hw, wp) = (h * w, w + 2);
    let halo = &mut halo[..(bh + 2) * wp * cin];
    halo.fill(0.0);
    for r in 0..bh + 2 {
        let Some(ih) = (oh0 + r).checked_sub(1).filter(|&ih| ih < h) else {
            continue;
        };
        let dst_row = &mut halo[(r * wp + 1) * cin..(r * wp + 1 + w) * cin];
        for ci in 0..cin {
            let src = &x[ci * hw + ih * w..ci * hw + (ih + 1) * w];
            for (pixel, &v) in dst_row.chunks_exact_mut(cin).zip(src) {
                pixel[ci] = v;
            }
        }
    }
}

/// `cols [bh·W, 9·Cin]` from `halo` ([`channel_last_halo`]): row `i·W + ow`, columns `t·Cin ..
/// (t + 1)·Cin` hold the `Cin` channels of the halo pixel at `(i + kh, ow + kw)`, `t = kh·3 + kw`.
fn im2col_from_halo(halo: &[f32], cin: usize, w: usize, bh: usize, cols: &mut [f32]) {
    let (wp, rows) = (w + 2, 9 * cin);
    for (p, row) in cols[..bh * w * rows].chunks_exact_mut(rows).enumerate() {
        let (i, ow) = (p / w, p % w);
        for (t, dst) in row.chunks_exact_mut(cin).enumerate() {
            let (kh, kw) = (t / 3, t % 3);
            let at = ((i + kh) * wp + ow + kw) * cin;
            dst.copy_from_slice(&halo[at..at + cin]);
        }
    }
}

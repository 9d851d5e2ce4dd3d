//! [`Up2x2Ops`] on Flex (f32; other dtypes go to burn's transposed conv). Pixels are handled in
//! bands of whole input rows; `j = co·4 + a·2 + b` indexes output channel `co` at offset
//! `(a, b)` of a pixel's 2x2 block, which is the layout of the weight `[Cin, Cout, 2, 2]`.

use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::Flex;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use super::super::flex::{dims4, sum_over_image_runs, Dims, SharedOut};
use super::{up_options, Up2x2Ops};

/// Input pixels per band (whole rows; at least one row).
const BAND: usize = 512;

impl Up2x2Ops for Flex {
    fn up2x2(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        if [x.dtype(), weight.dtype(), bias.dtype()] != [DType::F32; 3] {
            return Self::conv_transpose2d(x, weight, Some(bias), up_options());
        }
        let [n, cin, h, w] = dims4(&x);
        let cout = dims4(&weight)[1];
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
            return Self::conv_transpose2d(x, weight, Some(bias), up_options());
        };
        let y = forward_f32(xs, ws, bs, Dims { n, cin, cout, h, w });
        FlexTensor::from_data(TensorData::new(y, [n, cout, 2 * h, 2 * w]))
    }

    fn up2x2_x_grad(weight: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let [cin, cout, _, _] = dims4(&weight);
        let [n, _, h2, w2] = dims4(&grad);
        let (weight, grad) = (weight.to_contiguous(), grad.to_contiguous());
        let (Some(ws), Some(gs), [DType::F32, DType::F32]) = (
            weight.as_slice::<f32>(),
            grad.as_slice::<f32>(),
            [weight.dtype(), grad.dtype()],
        ) else {
            return Self::conv_transpose2d_x_backward(weight, grad, up_options());
        };
        let d = Dims {
            n,
            cin,
            cout,
            h: h2 / 2,
            w: w2 / 2,
        };
        let dx = x_grad_f32(ws, gs, d);
        FlexTensor::from_data(TensorData::new(dx, [n, cin, d.h, d.w]))
    }

    fn up2x2_param_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let [n, cin, h, w] = dims4(&x);
        let cout = dims4(&weight)[1];
        let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
        let (Some(xs), Some(gs), [DType::F32, DType::F32]) = (
            x.as_slice::<f32>(),
            grad.as_slice::<f32>(),
            [x.dtype(), grad.dtype()],
        ) else {
            let bias = FlexTensor::zeros([cout].into(), grad.dtype());
            let dw = Self::conv_transpose2d_weight_backward(
                x.clone(),
                weight,
                grad.clone(),
                up_options(),
            );
            let db = Self::conv_transpose2d_bias_backward(x, bias, grad);
            return (dw, db);
        };
        let (dw, db) = param_grads_f32(xs, gs, Dims { n, cin, cout, h, w });
        (
            FlexTensor::from_data(TensorData::new(dw, [cin, cout, 2, 2])),
            FlexTensor::from_data(TensorData::new(db, [cout])),
        )
    }
}

/// Rows per band and the number of bands of an `h`-row, `w`-column input.
fn bands(h: usize, w: usize) -> (usize, usize) {
    let rows = (BAND / w.max(1)).clamp(1, h.max(1));
    (rows, h.div_ceil(rows))
}

/// `y [N, Cout, 2H, 2W]` from `x [N, Cin, H, W]`, `w [Cin, 4·Cout]` and `bias [Cout]`. Per image
/// and band, `p [4·Cout, len]` (column-major `[len, 4·Cout]`) = `x_bandᵀ · w`, then each
/// value goes to its place in its pixel's 2x2 output block, plus the bias.
fn forward_f32(x: &[f32], w4: &[f32], bias: &[f32], d: Dims) -> Vec<f32> {
    let Dims { n, cin, cout, h, w } = d;
    let (hw, j4) = (h * w, 4 * cout);
    let mut y = vec![0f32; n * cout * 4 * hw];
    let (band_rows, nbands) = bands(h, w);
    let out = SharedOut(y.as_mut_ptr());
    (0..n * nbands).into_par_iter().for_each_init(
        || vec![0f32; j4 * band_rows * w],
        |p, task| {
            let (b, band) = (task / nbands, task % nbands);
            let i0 = band * band_rows;
            let len = band_rows.min(h - i0) * w;
            let xb = &x[b * cin * hw + i0 * w..];
            // SAFETY: dst p [len, j4] has row stride 1, column stride len (inside p); lhs is
            // x[b, :, i0·w .. i0·w + len] read as [len, cin] (row stride 1, column stride hw),
            // inside x; rhs w4 [cin, j4] has row stride j4, column stride 1.
            unsafe {
                gemm::gemm(
                    len,
                    j4,
                    cin,
                    p.as_mut_ptr(),
                    len as isize,
                    1,
                    false,
                    xb.as_ptr(),
                    hw as isize,
                    1,
                    w4.as_ptr(),
                    1,
                    j4 as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            let y_image = out.ptr().wrapping_add(b * cout * 4 * hw);
            for (j, values) in p[..j4 * len].chunks_exact(len).enumerate() {
                let (co, a, bb) = (j / 4, (j / 2) % 2, j % 2);
                for (q, &v) in values.iter().enumerate() {
                    let (i, jj) = (i0 + q / w, q % w);
                    let at = co * 4 * hw + (2 * i + a) * 2 * w + 2 * jj + bb;
                    // SAFETY: task (b, band) writes only the 2x2 blocks of its own input pixels
                    // of image b, disjoint from every other task's; `at` < cout·4·hw.
                    unsafe { *y_image.add(at) = v + bias[co] };
                }
            }
        },
    );
    y
}

/// `g [len, 4·Cout]` column-major (`g[j·len + q]`): the output gradient of image `gb [Cout, 2H,
/// 2W]` at the 2x2 blocks of input pixels `i0·w ..` (`len` of them, whole rows).
fn gather_by_channel(gb: &[f32], cout: usize, w: usize, i0: usize, len: usize, g: &mut [f32]) {
    let (h2w2, w2) = (gb.len() / cout.max(1), 2 * w);
    for (j, dst) in g[..4 * cout * len].chunks_exact_mut(len).enumerate() {
        let (co, a, bb) = (j / 4, (j / 2) % 2, j % 2);
        let src = &gb[co * h2w2..(co + 1) * h2w2];
        for (q, v) in dst.iter_mut().enumerate() {
            let (i, jj) = (i0 + q / w, q % w);
            *v = src[(2 * i + a) * w2 + 2 * jj + bb];
        }
    }
}

/// `dx [N, Cin, H, W]` from `w4 [Cin, 4·Cout]` and the output gradient `g [N, Cout, 2H, 2W]`:
/// per image and band, `dx_band [len, Cin] = g_band [len, 4·Cout] · w4ᵀ`.
fn x_grad_f32(w4: &[f32], g: &[f32], d: Dims) -> Vec<f32> {
    let Dims { n, cin, cout, h, w } = d;
    let (hw, j4) = (h * w, 4 * cout);
    let mut dx = vec![0f32; n * cin * hw];
    let (band_rows, nbands) = bands(h, w);
    let out = SharedOut(dx.as_mut_ptr());
    (0..n * nbands).into_par_iter().for_each_init(
        || vec![0f32; j4 * band_rows * w],
        |gt, task| {
            let (b, band) = (task / nbands, task % nbands);
            let i0 = band * band_rows;
            let len = band_rows.min(h - i0) * w;
            let gb = &g[b * j4 * hw..(b + 1) * j4 * hw];
            gather_by_channel(gb, cout, w, i0, len, gt);
            // SAFETY: task (b, band) writes only dx[b, :, i0·w .. i0·w + len], disjoint from
            // every other task's; dst [len, cin] has row stride 1, column stride hw; lhs gt
            // [len, j4] row stride 1, column stride len; rhs w4ᵀ [j4, cin] row stride 1,
            // column stride j4.
            unsafe {
                gemm::gemm(
                    len,
                    cin,
                    j4,
                    out.ptr().add(b * cin * hw + i0 * w),
                    hw as isize,
                    1,
                    false,
                    gt.as_ptr(),
                    len as isize,
                    1,
                    w4.as_ptr(),
                    j4 as isize,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        },
    );
    dx
}

/// `dW [Cin, 4·Cout]` and `db [Cout]` from `x [N, Cin, H, W]` and the output gradient `g [N,
/// Cout, 2H, 2W]`: per band, `dWᵀ [4·Cout, Cin] += g_bandᵀ · x_bandᵀ` with the gradient
/// gathered pixel-major. Images are split into one contiguous run per thread, each with its
/// own accumulator, summed at the end.
fn param_grads_f32(x: &[f32], g: &[f32], d: Dims) -> (Vec<f32>, Vec<f32>) {
    let Dims { n, cin, cout, h, w } = d;
    let (hw, j4) = (h * w, 4 * cout);
    let (band_rows, nbands) = bands(h, w);
    let scratch = || vec![0f32; band_rows * w * j4];
    sum_over_image_runs(n, cin * j4, cout, scratch, |b, gp, dw, db| {
        let xb = &x[b * cin * hw..(b + 1) * cin * hw];
        let gb = &g[b * j4 * hw..(b + 1) * j4 * hw];
        for band in 0..nbands {
            let i0 = band * band_rows;
            let len = band_rows.min(h - i0) * w;
            gather_by_pixel(gb, cout, w, i0, len, gp);
            // SAFETY: dst dWᵀ [j4, cin] is dw [cin, j4] row-major: row stride 1,
            // column stride j4; lhs gp [j4, len] has row stride 1, column stride j4;
            // rhs x[b, :, i0·w ..] read as [len, cin]: row stride 1, column stride
            // hw. Every index stays inside the slices; dst aliases neither input.
            unsafe {
                gemm::gemm(
                    j4,
                    cin,
                    len,
                    dw.as_mut_ptr(),
                    j4 as isize,
                    1,
                    true,
                    gp.as_ptr(),
                    j4 as isize,
                    1,
                    xb.as_ptr().add(i0 * w),
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
        for (acc, plane) in db.iter_mut().zip(gb.chunks_exact(4 * hw)) {
            *acc += plane.iter().sum::<f32>();
        }
    })
}

/// `gp [4·Cout, len]` column-major (`gp[q·4·Cout + j]`): the output gradient of image `gb [Cout,
/// 2H, 2W]` at the 2x2 blocks of input pixels `i0·w ..` (`len` of them, whole rows).
fn gather_by_pixel(gb: &[f32], cout: usize, w: usize, i0: usize, len: usize, gp: &mut [f32]) {
    let (h2w2, w2, j4) = (gb.len() / cout.max(1), 2 * w, 4 * cout);
    for (q, dst) in gp[..j4 * len].chunks_exact_mut(j4).enumerate() {
        let (i, jj) = (i0 + q / w, q % w);
        for (co, block) in dst.chunks_exact_mut(4).enumerate() {
            let top = co * h2w2 + 2 * i * w2 + 2 * jj;
            block[0] = gb[top];
            block[1] = gb[top + 1];
            block[2] = gb[top + w2];
            block[3] = gb[top + w2 + 1];
        }
    }
}

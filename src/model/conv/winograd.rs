//! The 3x3 "same" conv on f32 by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, 2016):
//! each 4x4 input tile (stride 2, so tiles overlap by 2) becomes `V = Bᵀ d B`, each kernel
//! `U = G g Gᵀ`, and the 16 element-wise products summed over the input channels are 16 GEMMs
//! `M[ξ] [T, Cout] = V[ξ]ᵀ [T, Cin] · U[ξ]ᵀ [Cin, Cout]`; each tile's 2x2 output is `Aᵀ M A`.
//! That is 16 multiplies per 2x2 outputs and channel pair instead of 36. The transforms use only
//! ±1 and ½, so results equal the im2col path's to float rounding (tests).

use rayon::prelude::*;

use super::flex::{Dims, SharedOut};

/// Whether the Winograd forward is used for a conv of these sizes: where both channel counts
/// are at least 64 and an image has at least 64 tiles (sides of 16 px and more). Below that the
/// GEMMs' short K (Cin instead of 9·Cin) and few rows, and the transforms' memory passes, cost
/// more than the multiplies saved (per shape on a 2-core AVX-512 machine, `reconad bench
/// --what conv`: 1.1–1.4× faster at 64–256 channels on 16–64 px, up to 3× slower at 16–32
/// channels; BENCHMARKS.md).
pub(crate) fn pays(d: Dims) -> bool {
    d.cin >= 64 && d.cout >= 64 && d.h.div_ceil(2) * d.w.div_ceil(2) >= 64
}

/// Tiles per GEMM band, at most: `V` and `M` of one band, `16·T·C` floats each (C = max(Cin,
/// Cout)), stay near 256 KB apiece, in L2 beside the GEMM's packed operands.
fn max_tiles(c: usize) -> usize {
    (TILE_FLOATS / c.max(1)).clamp(32, 1024)
}

/// `T · C` of one band (see [`max_tiles`]).
const TILE_FLOATS: usize = 4096;

/// `y [N, Cout, H, W] = conv3x3(x [N, Cin, H, W], wt [Cout, Cin, 3, 3]) + bias`, padding 1,
/// per image and band of tile rows, in parallel.
pub(crate) fn forward(x: &[f32], wt: &[f32], bias: Option<&[f32]>, d: Dims) -> Vec<f32> {
    let Dims { n, cin, cout, h, w } = d;
    let hw = h * w;
    let (th, tw) = (h.div_ceil(2), w.div_ceil(2));
    let u = filter_transform(wt, cin, cout); // [16, Cout, Cin]
    let band = (max_tiles(cin.max(cout)) / tw).clamp(1, th);
    let bands = th.div_ceil(band);
    let mut y = vec![0f32; n * cout * hw];
    let out = SharedOut(y.as_mut_ptr());
    (0..n * bands).into_par_iter().for_each_init(
        || {
            (
                vec![0f32; 16 * cin * band * tw],
                vec![0f32; 16 * cout * band * tw],
            )
        },
        |(v, m), task| {
            let (b, tr0) = (task / bands, (task % bands) * band);
            let rows = band.min(th - tr0);
            let t = rows * tw;
            let xb = &x[b * cin * hw..(b + 1) * cin * hw];
            input_transform(xb, cin, h, w, tr0, rows, &mut v[..16 * cin * t]);
            for xi in 0..16 {
                // SAFETY: dst M[ξ] [t, cout] at m[ξ·cout·t ..] with row stride 1 and column
                // stride t; lhs V[ξ]ᵀ [t, cin] at v[ξ·cin·t ..] likewise (column stride t);
                // rhs U[ξ]ᵀ [cin, cout] at u[ξ·cout·cin ..], row stride 1, column stride cin.
                // All three lie inside their buffers; dst aliases neither operand.
                unsafe {
                    gemm::gemm(
                        t,
                        cout,
                        cin,
                        m.as_mut_ptr().add(xi * cout * t),
                        t as isize,
                        1,
                        false,
                        v.as_ptr().add(xi * cin * t),
                        t as isize,
                        1,
                        u.as_ptr().add(xi * cout * cin),
                        cin as isize,
                        1,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            }
            for co in 0..cout {
                let b_co = bias.map_or(0.0, |bias| bias[co]);
                // SAFETY: this task alone writes output rows 2·tr0 .. 2·(tr0 + rows) (clipped
                // to H) of plane (b, co): disjoint from every other task's rows.
                let plane = unsafe {
                    std::slice::from_raw_parts_mut(out.ptr().add((b * cout + co) * hw), hw)
                };
                let m_co = |xi: usize| &m[(xi * cout + co) * t..(xi * cout + co + 1) * t];
                let planes: [&[f32]; 16] = std::array::from_fn(m_co);
                for r in 0..rows {
                    let oh = 2 * (tr0 + r);
                    let (top, bottom) = plane[oh * w..].split_at_mut(w);
                    let bottom = if oh + 1 < h {
                        Some(&mut bottom[..w])
                    } else {
                        None
                    };
                    output_tile_row(&planes, r * tw, tw, b_co, top, bottom);
                }
            }
        },
    );
    y
}

/// `U [16, Cout, Cin]` with `U[k·4 + l][co][ci] = (G g Gᵀ)[k][l]` for the kernel `g =
/// wt[co, ci]` and `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`.
fn filter_transform(wt: &[f32], cin: usize, cout: usize) -> Vec<f32> {
    let mut u = vec![0f32; 16 * cout * cin];
    let g3 = |a: f32, b: f32, c: f32| [a, 0.5 * (a + b + c), 0.5 * (a - b + c), c];
    for co in 0..cout {
        for ci in 0..cin {
            let g = &wt[(co * cin + ci) * 9..(co * cin + ci + 1) * 9];
            // G g: [4, 3], one column of kernel rows at a time.
            let cols: [[f32; 4]; 3] = std::array::from_fn(|kw| g3(g[kw], g[3 + kw], g[6 + kw]));
            for k in 0..4 {
                let row = g3(cols[0][k], cols[1][k], cols[2][k]);
                for (l, &value) in row.iter().enumerate() {
                    u[((k * 4 + l) * cout + co) * cin + ci] = value;
                }
            }
        }
    }
    u
}

/// `v [16, Cin, T]` for tile rows `tr0 .. tr0 + rows` of `x [Cin, H, W]` (T = rows·⌈W/2⌉):
/// `v[k·4 + l][ci][r·tw + tc] = (Bᵀ d B)[k][l]` for the 4x4 tile `d` of channel `ci` whose top
/// left pixel is `(2·(tr0 + r) − 1, 2·tc − 1)`, zero outside the image, and
/// `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]`.
fn input_transform(
    x: &[f32],
    cin: usize,
    h: usize,
    w: usize,
    tr0: usize,
    rows: usize,
    v: &mut [f32],
) {
    let (hw, tw) = (h * w, w.div_ceil(2));
    let t = rows * tw;
    // Four image rows, each with a zero column on the left and zeros right of the image.
    let len = 2 * tw + 2;
    let mut padded = [
        vec![0f32; len],
        vec![0f32; len],
        vec![0f32; len],
        vec![0f32; len],
    ];
    let mut combo = vec![0f32; len];
    for ci in 0..cin {
        let plane = &x[ci * hw..(ci + 1) * hw];
        for r in 0..rows {
            let ih0 = 2 * (tr0 + r) as isize - 1;
            for (i, row) in padded.iter_mut().enumerate() {
                let ih = ih0 + i as isize;
                if (0..h as isize).contains(&ih) {
                    let ih = ih as usize;
                    row[1..w + 1].copy_from_slice(&plane[ih * w..(ih + 1) * w]);
                } else {
                    row[1..w + 1].fill(0.0);
                }
            }
            let [d0, d1, d2, d3] = &padded;
            for k in 0..4 {
                // Row k of Bᵀ d, across the whole padded width.
                for (j, c) in combo.iter_mut().enumerate() {
                    *c = match k {
                        0 => d0[j] - d2[j],
                        1 => d1[j] + d2[j],
                        2 => d2[j] - d1[j],
                        _ => d1[j] - d3[j],
                    };
                }
                let at = |l: usize| (((k * 4 + l) * cin + ci) * t) + r * tw;
                let (o0, o1, o2, o3) = (at(0), at(1), at(2), at(3));
                for tc in 0..tw {
                    let s = &combo[2 * tc..2 * tc + 4];
                    v[o0 + tc] = s[0] - s[2];
                    v[o1 + tc] = s[1] + s[2];
                    v[o2 + tc] = s[2] - s[1];
                    v[o3 + tc] = s[1] - s[3];
                }
            }
        }
    }
}

/// One row of tiles of one output channel: `planes[k·4 + l][at + tc]` is `M[k][l]` of tile
/// `tc`; its 2x2 output `Aᵀ M A + bias`, `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`, goes to
/// columns `2·tc, 2·tc + 1` of `top` and `bottom` (the latter absent past the image's last
/// row; the right column is dropped past its last column).
fn output_tile_row(
    planes: &[&[f32]; 16],
    at: usize,
    tw: usize,
    bias: f32,
    top: &mut [f32],
    mut bottom: Option<&mut [f32]>,
) {
    let w = top.len();
    for tc in 0..tw {
        let m = |xi: usize| planes[xi][at + tc];
        // Aᵀ M: two rows of four.
        let o0: [f32; 4] = std::array::from_fn(|l| m(l) + m(4 + l) + m(8 + l));
        let o1: [f32; 4] = std::array::from_fn(|l| m(4 + l) - m(8 + l) - m(12 + l));
        let (c0, c1) = (2 * tc, 2 * tc + 1);
        top[c0] = o0[0] + o0[1] + o0[2] + bias;
        if c1 < w {
            top[c1] = o0[1] - o0[2] - o0[3] + bias;
        }
        if let Some(bottom) = bottom.as_deref_mut() {
            bottom[c0] = o1[0] + o1[1] + o1[2] + bias;
            if c1 < w {
                bottom[c1] = o1[1] - o1[2] - o1[3] + bias;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::flex::forward_im2col;
    use super::*;
    use crate::model::test_data::hashed_values;

    /// Equal to the im2col forward on odd sides, one-pixel images, several bands of tiles and
    /// the transposed channel counts of an input gradient.
    #[test]
    fn winograd_equals_im2col() {
        for (n, cin, cout, h, w) in [
            (2, 5, 7, 6, 9),
            (1, 3, 2, 1, 1),
            (3, 4, 3, 7, 2),
            (2, 17, 16, 13, 20),
            (1, 300, 9, 5, 130),
            (2, 16, 40, 64, 3),
            (1, 64, 64, 40, 40),
        ] {
            let d = Dims { n, cin, cout, h, w };
            let x = hashed_values(n * cin * h * w, 1);
            let wt = hashed_values(cout * cin * 9, 2);
            let bias = hashed_values(cout, 3);
            let want = forward_im2col(&x, &wt, Some(&bias), d);
            let got = forward(&x, &wt, Some(&bias), d);
            let scale = want.iter().fold(1f32, |a, v| a.max(v.abs()));
            for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - e).abs() <= 1e-5 * scale,
                    "{d:?}: index {i}: {g} vs {e}"
                );
            }
            let no_bias = forward(&x, &wt, None, d);
            let shift: f32 = got[0] - no_bias[0];
            assert!((shift - bias[0]).abs() < 1e-5 * scale, "{d:?}: bias");
        }
    }
}

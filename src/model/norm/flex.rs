//! [`BatchNormOps`] on Flex (f32; other dtypes use burn's generic `batch_norm_train`). Channel
//! `c` of `x [N, C, S]` (S = the spatial size) is the N planes `x[b, c, ..]`, read in place;
//! statistics are accumulated in f64 per plane. A fused LeakyReLU is applied in the output pass
//! and its mask, recomputed from `x`, in both backward passes.

use burn::backend::flex::FlexTensor;
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata};
use burn::tensor::{DType, FloatDType, TensorData};
use rayon::prelude::*;

use super::{BatchNormOps, NormSettings};

impl BatchNormOps for Flex {
    fn bn_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        settings: NormSettings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let shape = x.shape();
        let dtype = x.dtype();
        let (x, gamma, beta) = (
            x.to_contiguous(),
            gamma.to_contiguous(),
            beta.to_contiguous(),
        );
        let (Some(xs), Some(gs), Some(bs), DType::F32) = (
            x.as_slice::<f32>(),
            gamma.as_slice::<f32>(),
            beta.as_slice::<f32>(),
            dtype,
        ) else {
            if settings.leaky_slope.is_some() {
                // The fused activation is written for f32: compute there, cast back.
                let (y, mean, var) =
                    Self::bn_train(to_f32(x), to_f32(gamma), to_f32(beta), settings);
                return (cast(y, dtype), cast(mean, dtype), cast(var, dtype));
            }
            let out = Self::batch_norm_train(x, gamma, beta, settings.epsilon);
            return (out.output, out.mean, out.variance);
        };
        let c = shape[1];
        let plane = (shape.num_elements() / (shape[0] * c).max(1)).max(1);
        let stats = channel_stats(xs, c, plane);
        let mean: Vec<f32> = stats.iter().map(|s| s.0 as f32).collect();
        let var: Vec<f32> = stats.iter().map(|s| s.1 as f32).collect();
        let affine = Affine::per_channel(gs, bs, &mean, &var, settings);
        let mut y = vec![0f32; xs.len()];
        y.par_chunks_mut(plane)
            .zip(xs.par_chunks(plane))
            .enumerate()
            .for_each(|(bc, (out, src))| {
                let a = affine[bc % c];
                out.iter_mut()
                    .zip(src)
                    .for_each(|(o, &v)| *o = a.activate(a.normalise(v)));
            });
        (
            FlexTensor::from_data(TensorData::new(y, shape)),
            FlexTensor::from_data(TensorData::new(mean, [c])),
            FlexTensor::from_data(TensorData::new(var, [c])),
        )
    }

    fn bn_train_grads(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        settings: NormSettings,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let shape = x.shape();
        let dtype = x.dtype();
        let (x, gamma, beta, mean, variance, grad) = (
            x.to_contiguous(),
            gamma.to_contiguous(),
            beta.to_contiguous(),
            mean.to_contiguous(),
            variance.to_contiguous(),
            grad.to_contiguous(),
        );
        let (
            Some(xs),
            Some(gms),
            Some(bts),
            Some(ms),
            Some(vs),
            Some(gr),
            [DType::F32, DType::F32],
        ) = (
            x.as_slice::<f32>(),
            gamma.as_slice::<f32>(),
            beta.as_slice::<f32>(),
            mean.as_slice::<f32>(),
            variance.as_slice::<f32>(),
            grad.as_slice::<f32>(),
            [dtype, grad.dtype()],
        )
        else {
            if settings.leaky_slope.is_some() {
                let (dx, dgamma, dbeta) = Self::bn_train_grads(
                    to_f32(x),
                    to_f32(gamma),
                    to_f32(beta),
                    to_f32(mean),
                    to_f32(variance),
                    to_f32(grad),
                    settings,
                );
                return (cast(dx, dtype), cast(dgamma, dtype), cast(dbeta, dtype));
            }
            let out =
                Self::batch_norm_train_backward(x, gamma, mean, variance, settings.epsilon, grad);
            return (out.x_grad, out.gamma_grad, out.beta_grad);
        };
        let c = shape[1];
        let plane = (shape.num_elements() / (shape[0] * c).max(1)).max(1);
        let count = (shape.num_elements() / c.max(1)).max(1) as f64;
        let affine = Affine::per_channel(gms, bts, ms, vs, settings);
        let inv_std: Vec<f32> = vs
            .iter()
            .map(|&v| (1.0 / (v as f64 + settings.epsilon).sqrt()) as f32)
            .collect();
        // Per channel: Σ g' and Σ g'·x̂ over its planes, g' = the gradient at the norm's output
        // (through the activation's mask, recomputed from x as the forward computed it).
        let sums: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (m, s, a) = (ms[ch], inv_std[ch], affine[ch]);
                let mut acc = (0f64, 0f64);
                for (xp, gp) in xs
                    .chunks_exact(plane)
                    .zip(gr.chunks_exact(plane))
                    .skip(ch)
                    .step_by(c)
                {
                    let (sg, sgx) = xp.iter().zip(gp).fold((0f32, 0f32), |(sg, sgx), (&v, &g)| {
                        let g = a.masked(v, g);
                        (sg + g, sgx + g * (v - m) * s)
                    });
                    acc.0 += sg as f64;
                    acc.1 += sgx as f64;
                }
                acc
            })
            .collect();
        let mut dx = vec![0f32; xs.len()];
        dx.par_chunks_mut(plane)
            .zip(xs.par_chunks(plane).zip(gr.par_chunks(plane)))
            .enumerate()
            .for_each(|(bc, (out, (xp, gp)))| {
                let ch = bc % c;
                let (m, s, a) = (ms[ch], inv_std[ch], affine[ch]);
                let k = gms[ch] * s;
                let mean_g = (sums[ch].0 / count) as f32;
                let mean_gx = (sums[ch].1 / count) as f32;
                for ((o, &v), &g) in out.iter_mut().zip(xp).zip(gp) {
                    *o = k * (a.masked(v, g) - mean_g - (v - m) * s * mean_gx);
                }
            });
        let dgamma: Vec<f32> = sums.iter().map(|s| s.1 as f32).collect();
        let dbeta: Vec<f32> = sums.iter().map(|s| s.0 as f32).collect();
        (
            FlexTensor::from_data(TensorData::new(dx, shape)),
            FlexTensor::from_data(TensorData::new(dgamma, [c])),
            FlexTensor::from_data(TensorData::new(dbeta, [c])),
        )
    }
}

/// One channel's normalisation as an affine map, `y = x·scale + shift`, and the slope of the
/// LeakyReLU after it (1 without one). The forward and the backward build it alike from the
/// same f32 statistics, so the backward's activation mask is the forward's, bit for bit.
#[derive(Debug, Clone, Copy)]
struct Affine {
    scale: f32,
    shift: f32,
    slope: f32,
}

impl Affine {
    /// One per channel from `γ`, `β` and the batch statistics.
    fn per_channel(
        gamma: &[f32],
        beta: &[f32],
        mean: &[f32],
        var: &[f32],
        settings: NormSettings,
    ) -> Vec<Self> {
        let slope = settings.leaky_slope.unwrap_or(1.0);
        gamma
            .iter()
            .zip(beta)
            .zip(mean.iter().zip(var))
            .map(|((&g, &b), (&m, &v))| {
                let scale = g / (v as f64 + settings.epsilon).sqrt() as f32;
                Self {
                    scale,
                    shift: b - m * scale,
                    slope,
                }
            })
            .collect()
    }

    #[inline]
    fn normalise(self, x: f32) -> f32 {
        x * self.scale + self.shift
    }

    /// LeakyReLU (the identity when the slope is 1).
    #[inline]
    fn activate(self, y: f32) -> f32 {
        if y >= 0.0 {
            y
        } else {
            self.slope * y
        }
    }

    /// The output gradient `g` taken back through the activation at input `x`.
    #[inline]
    fn masked(self, x: f32, g: f32) -> f32 {
        if self.normalise(x) >= 0.0 {
            g
        } else {
            self.slope * g
        }
    }
}

/// `t` as f32.
fn to_f32(t: FlexTensor) -> FlexTensor {
    Flex::float_cast(t, FloatDType::F32)
}

/// `t` as `dtype` (a float type).
fn cast(t: FlexTensor, dtype: DType) -> FlexTensor {
    Flex::float_cast(t, dtype.into())
}

/// `(mean, biased variance)` of each of the `c` channels of a contiguous `[N, C, plane]`: the
/// mean first, then the mean squared deviation (two passes, as burn's generic op).
fn channel_stats(x: &[f32], c: usize, plane: usize) -> Vec<(f64, f64)> {
    let plane = plane.max(1);
    (0..c)
        .into_par_iter()
        .map(|ch| {
            let planes = || x.chunks_exact(plane).skip(ch).step_by(c);
            let count = planes().count().max(1) as f64 * plane as f64;
            let sum: f64 = planes()
                .map(|p| p.iter().map(|&v| v as f64).sum::<f64>())
                .sum();
            let mean = sum / count;
            let m = mean as f32;
            let sq: f64 = planes()
                .map(|p| p.iter().map(|&v| ((v - m) * (v - m)) as f64).sum::<f64>())
                .sum();
            (mean, sq / count)
        })
        .collect()
}

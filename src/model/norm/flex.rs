//! [`BatchNormOps`] on Flex (f32; other dtypes use burn's generic `batch_norm_train`). Channel
//! `c` of `x [N, C, S]` (S = the spatial size) is the N planes `x[b, c, ..]`, read in place;
//! statistics are accumulated in f64 per plane.

use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Flex, TensorMetadata};
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use super::BatchNormOps;

impl BatchNormOps for Flex {
    fn bn_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let shape = x.shape();
        let (x, gamma, beta) = (
            x.to_contiguous(),
            gamma.to_contiguous(),
            beta.to_contiguous(),
        );
        let (Some(xs), Some(gs), Some(bs), DType::F32) = (
            x.as_slice::<f32>(),
            gamma.as_slice::<f32>(),
            beta.as_slice::<f32>(),
            x.dtype(),
        ) else {
            let out = Self::batch_norm_train(x, gamma, beta, epsilon);
            return (out.output, out.mean, out.variance);
        };
        let c = shape[1];
        let plane = shape.num_elements() / (shape[0] * c).max(1);
        let stats = channel_stats(xs, c, plane);
        let scale_shift: Vec<(f32, f32)> = stats
            .iter()
            .zip(gs.iter().zip(bs))
            .map(|(&(mean, var), (&g, &b))| {
                let scale = g / (var + epsilon).sqrt() as f32;
                (scale, b - mean as f32 * scale)
            })
            .collect();
        let mut y = vec![0f32; xs.len()];
        y.par_chunks_mut(plane.max(1))
            .zip(xs.par_chunks(plane.max(1)))
            .enumerate()
            .for_each(|(bc, (out, src))| {
                let (scale, shift) = scale_shift[bc % c];
                out.iter_mut()
                    .zip(src)
                    .for_each(|(o, &v)| *o = v * scale + shift);
            });
        let mean: Vec<f32> = stats.iter().map(|s| s.0 as f32).collect();
        let var: Vec<f32> = stats.iter().map(|s| s.1 as f32).collect();
        (
            FlexTensor::from_data(TensorData::new(y, shape)),
            FlexTensor::from_data(TensorData::new(mean, [c])),
            FlexTensor::from_data(TensorData::new(var, [c])),
        )
    }

    fn bn_train_grads(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let shape = x.shape();
        let (x, gamma, mean, variance, grad) = (
            x.to_contiguous(),
            gamma.to_contiguous(),
            mean.to_contiguous(),
            variance.to_contiguous(),
            grad.to_contiguous(),
        );
        let (Some(xs), Some(gms), Some(ms), Some(vs), Some(gr), [DType::F32, DType::F32]) = (
            x.as_slice::<f32>(),
            gamma.as_slice::<f32>(),
            mean.as_slice::<f32>(),
            variance.as_slice::<f32>(),
            grad.as_slice::<f32>(),
            [x.dtype(), grad.dtype()],
        ) else {
            let out = Self::batch_norm_train_backward(x, gamma, mean, variance, epsilon, grad);
            return (out.x_grad, out.gamma_grad, out.beta_grad);
        };
        let c = shape[1];
        let plane = (shape.num_elements() / (shape[0] * c).max(1)).max(1);
        let count = (shape.num_elements() / c.max(1)).max(1) as f64;
        let inv_std: Vec<f32> = vs
            .iter()
            .map(|&v| (1.0 / (v as f64 + epsilon).sqrt()) as f32)
            .collect();
        // Per channel: Σ g and Σ g·x̂, over its planes.
        let sums: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (m, s) = (ms[ch], inv_std[ch]);
                let mut acc = (0f64, 0f64);
                for (xp, gp) in xs
                    .chunks_exact(plane)
                    .zip(gr.chunks_exact(plane))
                    .skip(ch)
                    .step_by(c)
                {
                    let (sg, sgx) = xp.iter().zip(gp).fold((0f32, 0f32), |(a, b), (&v, &g)| {
                        (a + g, b + g * (v - m) * s)
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
                let (m, s) = (ms[ch], inv_std[ch]);
                let k = gms[ch] * s;
                let mean_g = (sums[ch].0 / count) as f32;
                let mean_gx = (sums[ch].1 / count) as f32;
                for ((o, &v), &g) in out.iter_mut().zip(xp).zip(gp) {
                    *o = k * (g - mean_g - (v - m) * s * mean_gx);
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

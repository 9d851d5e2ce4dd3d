//! Reconstruction loss (SPEC §3): `MSE + λ·(1 − SSIM)`, SSIM with an 11x11 Gaussian window
//! (σ = 1.5) per channel, differentiable.
//!
//! SSIM follows Wang et al. 2004 with K1 = 0.01, K2 = 0.03, data range 1 and population
//! (co)variances, averaged over the "valid" positions where the window lies inside the image:
//! the same numbers as scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
//! use_sample_covariance=False, data_range=1)`.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::window::window_filter;

/// Side of the SSIM window.
pub const SSIM_WINDOW: usize = 11;
/// Standard deviation of the SSIM window.
pub const SSIM_SIGMA: f64 = 1.5;

/// Settings of the loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossConfig {
    /// Weight λ of the `1 − SSIM` term (0.84 default; 0.5–1.0 sensible).
    pub ssim_weight: f64,
}

impl Default for LossConfig {
    fn default() -> Self {
        Self { ssim_weight: 0.84 }
    }
}

/// Normalised 1-D Gaussian weights of `size` taps.
pub fn gaussian_1d(size: usize, sigma: f64) -> Vec<f32> {
    let half = (size / 2) as f64;
    let w: Vec<f64> = (0..size)
        .map(|i| (-((i as f64 - half).powi(2)) / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = w.iter().sum();
    w.into_iter().map(|v| (v / sum) as f32).collect()
}

/// Per-pixel SSIM map `[N, C, H-10, W-10]` of two batches `[N, C, H, W]` (H, W >= 11).
pub fn ssim_map(x: Tensor<4>, y: Tensor<4>) -> Tensor<4> {
    let taps = gaussian_1d(SSIM_WINDOW, SSIM_SIGMA);
    let filter = |t: Tensor<4>| window_filter(t, &taps); // [N, C, H − 10, W − 10]
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let mx = filter(x.clone());
    let my = filter(y.clone());
    let sxx = filter(x.clone() * x.clone()) - mx.clone() * mx.clone();
    let syy = filter(y.clone() * y.clone()) - my.clone() * my.clone();
    let sxy = filter(x * y) - mx.clone() * my.clone();
    let num = (mx.clone() * my.clone() * 2.0 + c1) * (sxy * 2.0 + c2);
    let den = (mx.clone() * mx + my.clone() * my + c1) * (sxx + syy + c2);
    num / den
}

/// Mean SSIM of two batches (over batch, channels and valid positions).
pub fn ssim(x: Tensor<4>, y: Tensor<4>) -> Tensor<1> {
    ssim_map(x, y).mean()
}

/// `MSE + λ·(1 − SSIM)` between a reconstruction and its target.
pub fn reconstruction_loss(recon: Tensor<4>, target: Tensor<4>, config: &LossConfig) -> Tensor<1> {
    let diff = recon.clone() - target.clone();
    let mse = (diff.clone() * diff).mean();
    if config.ssim_weight == 0.0 {
        return mse;
    }
    let one_minus_ssim = ssim(recon, target).neg() + 1.0;
    mse + one_minus_ssim * config.ssim_weight
}

/// Binary focal loss (Lin et al. 2017; DRAEM's γ = 2) of per-pixel `logits` against a 0/1
/// `mask` of the same shape: `−(1 − p_t)^γ · log p_t`, averaged; γ = 0 is binary cross-entropy.
/// It keeps the many easy normal pixels from drowning the few anomalous ones.
pub fn focal_loss(logits: Tensor<4>, mask: Tensor<4>, gamma: f64) -> Tensor<1> {
    let p = burn::tensor::activation::sigmoid(logits.clone()); // [N, 1, H, W]
    let log_p = burn::tensor::activation::log_sigmoid(logits.clone());
    let log_not_p = burn::tensor::activation::log_sigmoid(logits.neg());
    let not_mask = mask.clone().neg() + 1.0;
    let p_t = p.clone() * mask.clone() + (p.neg() + 1.0) * not_mask.clone();
    let log_p_t = log_p * mask + log_not_p * not_mask;
    let weight = (p_t.neg() + 1.0).powf_scalar(gamma);
    (weight * log_p_t).mean().neg()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(planes: Vec<Vec<f32>>, h: usize, w: usize) -> Tensor<4> {
        let c = planes.len();
        let data: Vec<f32> = planes.into_iter().flatten().collect();
        Tensor::<4>::from_data(TensorData::new(data, [1, c, h, w]), &Device::flex())
    }

    fn scalar(t: Tensor<1>) -> f64 {
        f64::from(t.into_scalar::<f32>())
    }

    /// Expected values computed with scikit-image 0.2x:
    /// `structural_similarity(x, y, gaussian_weights=True, sigma=1.5,
    /// use_sample_covariance=False, data_range=1, channel_axis=-1)` on the same arrays.
    #[test]
    fn ssim_matches_scikit_image() {
        let (h, w) = (24, 20);
        let plane = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f32> {
            (0..h)
                .flat_map(|i| (0..w).map(move |j| (i as f64, j as f64)))
                .map(|(i, j)| f(i, j) as f32)
                .collect()
        };
        let x: Vec<Vec<f32>> = (0..3)
            .map(|c| plane(&|i, j| 0.5 + 0.4 * (0.37 * i + 0.23 * j + c as f64).sin()))
            .collect();
        let y: Vec<Vec<f32>> = (0..3)
            .map(|c| {
                plane(&|i, j| {
                    let base = 0.5 + 0.4 * (0.37 * i + 0.23 * j + c as f64).sin();
                    (0.8 * base + 0.1 + 0.05 * (0.11 * i * j + c as f64).cos()).clamp(0.0, 1.0)
                })
            })
            .collect();
        let got = scalar(ssim(tensor(x.clone(), h, w), tensor(y, h, w)));
        assert!((got - 0.9292294403949676).abs() < 1e-4, "rgb ssim {got}");
        let same = scalar(ssim(tensor(x.clone(), h, w), tensor(x, h, w)));
        assert!((same - 1.0).abs() < 1e-5, "identical ssim {same}");

        let (h, w) = (16, 16);
        let g1: Vec<f32> = (0..h)
            .flat_map(|i| (0..w).map(move |j| ((i * 7 + j * 13) % 17) as f32 / 16.0))
            .collect();
        let g2: Vec<f32> = (0..h)
            .flat_map(|i| (0..w).map(move |j| ((i * 5 + j * 3) % 11) as f32 / 10.0))
            .collect();
        let got = scalar(ssim(tensor(vec![g1], h, w), tensor(vec![g2], h, w)));
        assert!((got - 0.1894089836486372).abs() < 1e-4, "gray ssim {got}");
    }

    #[test]
    fn loss_is_zero_for_a_perfect_reconstruction_and_weights_ssim() {
        let x = tensor(
            vec![(0..16 * 16).map(|v| (v % 7) as f32 / 7.0).collect()],
            16,
            16,
        );
        let perfect = scalar(reconstruction_loss(
            x.clone(),
            x.clone(),
            &LossConfig::default(),
        ));
        assert!(perfect.abs() < 1e-5, "{perfect}");
        let off = x.clone() * 0.5;
        let mse_only = scalar(reconstruction_loss(
            off.clone(),
            x.clone(),
            &LossConfig { ssim_weight: 0.0 },
        ));
        let with_ssim = scalar(reconstruction_loss(
            off.clone(),
            x.clone(),
            &LossConfig { ssim_weight: 0.84 },
        ));
        let s = scalar(ssim(off, x));
        assert!((with_ssim - (mse_only + 0.84 * (1.0 - s))).abs() < 1e-5);
    }

    #[test]
    fn loss_is_differentiable() {
        let device = Device::flex().autodiff();
        let x = Tensor::<4>::from_data(
            TensorData::new(
                (0..2 * 16 * 16)
                    .map(|v| (v % 5) as f32 / 5.0)
                    .collect::<Vec<f32>>(),
                [1, 2, 16, 16],
            ),
            &device,
        );
        let y = (x.clone() * 0.9 + 0.05).require_grad();
        let loss = reconstruction_loss(y.clone(), x, &LossConfig::default());
        let grads = loss.backward();
        let g = y.grad(&grads).expect("gradient reaches the reconstruction");
        let sum = f64::from(g.abs().sum().into_scalar::<f32>());
        assert!(sum > 0.0 && sum.is_finite());
    }

    #[test]
    fn focal_loss_is_cross_entropy_at_gamma_zero_and_favours_right_answers() {
        let device = Device::flex();
        let logits =
            Tensor::<1>::from_floats([2.0, -1.0, 0.5, -3.0], &device).reshape([1, 1, 2, 2]);
        let mask = Tensor::<1>::from_floats([1.0, 0.0, 0.0, 1.0], &device).reshape([1, 1, 2, 2]);
        let bce: f64 = [2.0f64, 1.0, -0.5, -3.0]
            .iter()
            .map(|&z| (1.0 + (-z).exp()).ln())
            .sum::<f64>()
            / 4.0;
        let at =
            |g: f64| f64::from(focal_loss(logits.clone(), mask.clone(), g).into_scalar::<f32>());
        assert!((at(0.0) - bce).abs() < 1e-5, "{} vs {bce}", at(0.0));
        assert!(at(2.0) < at(0.0) && at(2.0) > 0.0);
        let right = Tensor::<1>::from_floats([5.0, -5.0, -5.0, 5.0], &device).reshape([1, 1, 2, 2]);
        assert!(f64::from(focal_loss(right, mask, 2.0).into_scalar::<f32>()) < 1e-4);
    }
}

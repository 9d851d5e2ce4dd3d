//! Random fields of the synthetic generator: smooth value noise and normal samples.

use std::f32::consts::PI;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Smooth 2-D value noise: random values on a lattice of `cell`-pixel spacing, interpolated with
/// a smoothstep.
pub(super) struct ValueNoise {
    pub(super) cell: f32,
    pub(super) cols: usize,
    pub(super) values: Vec<f32>,
}

impl ValueNoise {
    pub(super) fn new(size: usize, cell: f32, rng: &mut ChaCha8Rng) -> Self {
        let cols = (size as f32 / cell).ceil() as usize + 2;
        let values = (0..cols * cols)
            .map(|_| rng.random::<f32>() * 2.0 - 1.0)
            .collect();
        Self {
            cell: cell.max(1.0),
            cols,
            values,
        }
    }

    /// Noise in [-1, 1] at pixel (x, y).
    pub(super) fn at(&self, x: f32, y: f32) -> f32 {
        let (u, v) = ((x / self.cell).max(0.0), (y / self.cell).max(0.0));
        let (i, j) = (
            (u as usize).min(self.cols - 2),
            (v as usize).min(self.cols - 2),
        );
        let (fu, fv) = (smooth(u - i as f32), smooth(v - j as f32));
        let g = |a: usize, b: usize| self.values[b * self.cols + a];
        let top = g(i, j) * (1.0 - fu) + g(i + 1, j) * fu;
        let bottom = g(i, j + 1) * (1.0 - fu) + g(i + 1, j + 1) * fu;
        top * (1.0 - fv) + bottom * fv
    }
}

pub(super) fn smooth(t: f32) -> f32 {
    let t = t.clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// A standard normal sample (Box-Muller).
pub(super) fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    let u1: f32 = rng.random::<f32>().max(1e-7);
    let u2: f32 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
}

//! `conv3x3`: each 3x3 conv shape of a preset's encoder and bottleneck, timed through burn's
//! `Conv2d` and through the project's kernel (`model::conv`), forward and forward + backward.

use std::time::Instant;

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;

use super::{median, BenchLine};
use crate::error::{fail, Result};
use crate::model::conv::{conv3x3_f32, conv3x3_forward, Lowering};
use crate::model::unet::{init_seeded_with, Preset};

/// `(c_in, c_out, side_px)` of the encoder's and bottleneck's 3x3 convs of `preset` on 3-channel
/// inputs of `size` px (each level halves the side).
pub fn conv_shapes(preset: Preset, size: usize) -> Vec<(usize, usize, usize)> {
    let config = preset.config(3);
    let mut shapes = Vec::new();
    let (mut c, mut side) = (3, size);
    for &w in config.widths.iter().chain([&config.bottleneck]) {
        shapes.push((c, w, side));
        shapes.push((w, w, side));
        c = w;
        side = (side / 2).max(1);
    }
    shapes
}

/// Times one conv: the median forward and forward + backward (to the input, weight and bias
/// gradients) milliseconds over `steps` runs after one warm-up, through burn's `Conv2d`
/// (`ours` false) or `model::conv` (`ours` true).
fn time_conv(conv: &Conv2d, x: &Tensor<4>, ours: bool, steps: usize) -> (f64, f64) {
    let (mut forward, mut both) = (Vec::new(), Vec::new());
    for step in 0..steps + 1 {
        let x = x.clone().detach().require_grad();
        let t0 = Instant::now();
        let y = if ours {
            conv3x3_forward(conv, x.clone()) // [N, Cout, H, W]
        } else {
            conv.forward(x.clone())
        };
        let sum = y.sum();
        let _ = sum.clone().inner().into_scalar::<f32>();
        let t1 = Instant::now();
        let grads = sum.backward();
        let dw = conv
            .weight
            .val()
            .grad(&grads)
            .expect("the weight is tracked");
        let dx = x.grad(&grads).expect("the input is tracked");
        let _ = (dw.sum() + dx.sum()).into_scalar::<f32>();
        let t2 = Instant::now();
        if step > 0 {
            forward.push((t1 - t0).as_secs_f64() * 1e3);
            both.push((t2 - t0).as_secs_f64() * 1e3);
        }
    }
    (median(&mut forward), median(&mut both))
}

/// The median milliseconds of the bare f32 forward of `[n, c_in, c_out, side, side]` lowered
/// by `lowering`, over `steps` runs after one warm-up.
fn time_lowering(shape: [usize; 5], lowering: Lowering, steps: usize) -> f64 {
    let [n, c_in, c_out, h, w] = shape;
    let x = pseudo_random(n * c_in * h * w);
    let (weight, bias) = (pseudo_random(c_out * c_in * 9), pseudo_random(c_out));
    let mut ms = Vec::new();
    for step in 0..steps + 1 {
        let t0 = Instant::now();
        let y = conv3x3_f32(&x, &weight, &bias, shape, lowering);
        std::hint::black_box(y);
        if step > 0 {
            ms.push(t0.elapsed().as_secs_f64() * 1e3);
        }
    }
    median(&mut ms)
}

/// `len` values in [−1, 1) from a multiplicative hash.
fn pseudo_random(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(2654435761) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

/// One `conv3x3` line per shape of [`conv_shapes`] on the CPU backend with autodiff: burn's
/// `Conv2d` and the project's kernel on the same random batch of `batch` images.
pub fn conv_layers(
    preset: Preset,
    batch: usize,
    size: usize,
    steps: usize,
) -> Result<Vec<BenchLine>> {
    if batch == 0 || steps == 0 || size == 0 {
        fail!("bench: batch, size and steps must be at least 1");
    }
    let device = Device::flex().autodiff();
    let mut lines = Vec::new();
    for (c_in, c_out, side) in conv_shapes(preset, size) {
        // Seeded under the lock of `init_seeded_with`: burn's generator is global.
        let conv = init_seeded_with(&device, 0, || {
            Conv2dConfig::new([c_in, c_out], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(&device)
        });
        let values = pseudo_random(batch * c_in * side * side);
        let x = Tensor::<4>::from_data(TensorData::new(values, [batch, c_in, side, side]), &device); // [N, Cin, side, side]
        let (burn_fwd, burn_both) = time_conv(&conv, &x, false, steps);
        let (ours_fwd, ours_both) = time_conv(&conv, &x, true, steps);
        // The bare forward both ways, and the input gradient's (channels swapped).
        let shape = [batch, c_in, c_out, side, side];
        let x_grad_shape = [batch, c_out, c_in, side, side];
        let [im2col, winograd, im2col_x_grad, winograd_x_grad] = [
            (shape, Lowering::Im2col),
            (shape, Lowering::Winograd),
            (x_grad_shape, Lowering::Im2col),
            (x_grad_shape, Lowering::Winograd),
        ]
        .map(|(shape, lowering)| time_lowering(shape, lowering, steps));
        lines.push(
            BenchLine::new("conv3x3")
                .with("preset", preset.name())
                .with("batch", batch)
                .with("c_in", c_in)
                .with("c_out", c_out)
                .with("side", side)
                .with("burn_fwd_ms", format!("{burn_fwd:.2}"))
                .with("ours_fwd_ms", format!("{ours_fwd:.2}"))
                .with("burn_fwd_bwd_ms", format!("{burn_both:.2}"))
                .with("ours_fwd_bwd_ms", format!("{ours_both:.2}"))
                .with("speedup_fwd_bwd", format!("{:.2}", burn_both / ours_both))
                .with("im2col_fwd_ms", format!("{im2col:.2}"))
                .with("winograd_fwd_ms", format!("{winograd:.2}"))
                .with("im2col_x_grad_ms", format!("{im2col_x_grad:.2}"))
                .with("winograd_x_grad_ms", format!("{winograd_x_grad:.2}"))
                .with("threads", rayon::current_num_threads()),
        );
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shapes_follow_the_preset_down_to_the_bottleneck() {
        assert_eq!(
            conv_shapes(Preset::Tiny, 32),
            vec![
                (3, 4, 32),
                (4, 4, 32),
                (4, 8, 16),
                (8, 8, 16),
                (8, 16, 8),
                (16, 16, 8),
                (16, 32, 4),
                (32, 32, 4)
            ]
        );
    }

    #[test]
    fn one_line_per_shape_with_both_timings() {
        let lines = conv_layers(Preset::Tiny, 1, 8, 1).unwrap();
        assert_eq!(lines.len(), 8);
        for line in &lines {
            for key in [
                "burn_fwd_ms",
                "ours_fwd_ms",
                "burn_fwd_bwd_ms",
                "ours_fwd_bwd_ms",
                "im2col_fwd_ms",
                "winograd_fwd_ms",
                "im2col_x_grad_ms",
                "winograd_x_grad_ms",
            ] {
                let ms: f64 = line.get(key).unwrap().parse().unwrap();
                assert!(ms.is_finite() && ms >= 0.0, "{line}");
            }
        }
        assert!(conv_layers(Preset::Tiny, 0, 8, 1).is_err());
    }
}

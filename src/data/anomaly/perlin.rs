//! Perlin-noise masks (DRAEM, `perlin.py::rand_perlin_2d_np`): gradient noise on a random lattice
//! of 2^a x 2^b cells over the image, rotated, thresholded. The blobs they make have smooth,
//! irregular outlines of every size, unlike CutPaste's rectangles and scars.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::image::Size;

/// DRAEM's fade curve 6t⁵ − 15t⁴ + 10t³.
fn fade(t: f32) -> f32 {
    t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
}

/// Perlin noise over `size` (row-major, about [−1, 1]): a lattice of `cells` = (columns, rows)
/// cells with a random unit gradient at each node (periodic), evaluated at pixel coordinates
/// rotated by `angle_deg` about the centre.
pub fn perlin_noise(
    size: Size,
    cells: (usize, usize),
    angle_deg: f32,
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let (cx, cy) = (cells.0.max(1), cells.1.max(1));
    let gradients: Vec<(f32, f32)> = (0..cx * cy)
        .map(|_| {
            let a = rng.random::<f32>() * std::f32::consts::TAU;
            (a.cos(), a.sin())
        })
        .collect();
    let grad = |i: i64, j: i64| {
        gradients[(j.rem_euclid(cy as i64) as usize) * cx + i.rem_euclid(cx as i64) as usize]
    };
    let (sin, cos) = angle_deg.to_radians().sin_cos();
    let (w, h) = (size.width as f32, size.height as f32);
    let mut out = Vec::with_capacity(size.area());
    for y in 0..size.height {
        for x in 0..size.width {
            // Rotate the sampling point about the centre, then go to lattice units.
            let (dx, dy) = (x as f32 + 0.5 - w / 2.0, y as f32 + 0.5 - h / 2.0);
            let (rx, ry) = (cos * dx - sin * dy + w / 2.0, sin * dx + cos * dy + h / 2.0);
            let (px, py) = (rx * cx as f32 / w, ry * cy as f32 / h);
            let (i, j) = (px.floor() as i64, py.floor() as i64);
            let (fx, fy) = (px - i as f32, py - j as f32);
            let dot = |di: i64, dj: i64| {
                let (gx, gy) = grad(i + di, j + dj);
                gx * (fx - di as f32) + gy * (fy - dj as f32)
            };
            let (u, v) = (fade(fx), fade(fy));
            let top = dot(0, 0) + u * (dot(1, 0) - dot(0, 0));
            let bottom = dot(0, 1) + u * (dot(1, 1) - dot(0, 1));
            out.push(std::f32::consts::SQRT_2 * (top + v * (bottom - top)));
        }
    }
    out
}

/// A DRAEM anomaly mask over `size` (1 inside, 0 outside): Perlin noise on a 2^a x 2^b lattice,
/// a and b drawn from 0..=`max_log2_cells`, rotated by up to ±90°, above `threshold`.
pub fn perlin_mask(
    size: Size,
    max_log2_cells: u32,
    threshold: f32,
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let a = rng.random_range(0..=max_log2_cells);
    let b = rng.random_range(0..=max_log2_cells);
    let angle = rng.random_range(-90.0f32..=90.0);
    perlin_noise(size, (1 << a, 1 << b), angle, rng)
        .into_iter()
        .map(|v| if v > threshold { 1.0 } else { 0.0 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn noise_is_smooth_bounded_and_seeded() {
        let size = Size::new(64, 48);
        let n = perlin_noise(size, (4, 2), 30.0, &mut ChaCha8Rng::seed_from_u64(1));
        assert_eq!(n.len(), size.area());
        assert!(n.iter().all(|v| v.abs() <= 1.01), "bounded");
        assert!(
            n.iter().any(|&v| v > 0.2) && n.iter().any(|&v| v < -0.2),
            "varied"
        );
        // Smooth: neighbours differ little compared with the range.
        let max_step = n
            .chunks(size.width)
            .flat_map(|row| row.windows(2).map(|w| (w[1] - w[0]).abs()))
            .fold(0.0, f32::max);
        assert!(max_step < 0.3, "{max_step}");
        assert_eq!(
            n,
            perlin_noise(size, (4, 2), 30.0, &mut ChaCha8Rng::seed_from_u64(1))
        );
    }

    #[test]
    fn masks_are_binary_blobs_covering_a_minority() {
        let size = Size::square(64);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut covered = 0.0;
        for _ in 0..40 {
            let m = perlin_mask(size, 5, 0.5, &mut rng);
            assert!(m.iter().all(|&v| v == 0.0 || v == 1.0));
            covered += m.iter().sum::<f32>() / size.area() as f32;
        }
        let mean = covered / 40.0;
        assert!(mean > 0.01 && mean < 0.3, "mean coverage {mean}");
    }
}

//! Filters of single-channel maps.

use super::Size;

/// Separable Gaussian blur of a row-major `width` x `height` map with reflected borders
/// (`dcb|abcd|cba`). The kernel is truncated at 3σ. `sigma <= 0` returns the map unchanged.
pub fn gaussian_blur(map: &[f32], size: Size, sigma: f64) -> Vec<f32> {
    let Size { width, height } = size;
    assert_eq!(map.len(), width * height, "map has width*height values");
    if sigma <= 0.0 || map.is_empty() {
        return map.to_vec();
    }
    let radius = (3.0 * sigma).ceil() as isize;
    let kernel: Vec<f32> = {
        let k: Vec<f64> = (-radius..=radius)
            .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
            .collect();
        let sum: f64 = k.iter().sum();
        k.into_iter().map(|v| (v / sum) as f32).collect()
    };
    let reflect = |i: isize, n: usize| -> usize {
        let n = n as isize;
        let period = 2 * n;
        let mut j = i.rem_euclid(period.max(1));
        if j >= n {
            j = period - 1 - j;
        }
        j.clamp(0, n - 1) as usize
    };
    let mut tmp = vec![0.0f32; map.len()];
    for y in 0..height {
        let row = &map[y * width..(y + 1) * width];
        for x in 0..width {
            let mut acc = 0.0;
            for (k, &w) in kernel.iter().enumerate() {
                acc += w * row[reflect(x as isize + k as isize - radius, width)];
            }
            tmp[y * width + x] = acc;
        }
    }
    let mut out = vec![0.0f32; map.len()];
    for y in 0..height {
        for x in 0..width {
            let mut acc = 0.0;
            for (k, &w) in kernel.iter().enumerate() {
                acc += w * tmp[reflect(y as isize + k as isize - radius, height) * width + x];
            }
            out[y * width + x] = acc;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_keeps_constants_and_mass_and_spreads_peaks() {
        let flat = vec![2.5f32; 12 * 7];
        assert!(gaussian_blur(&flat, Size::new(12, 7), 1.5)
            .iter()
            .all(|v| (v - 2.5).abs() < 1e-5));
        let mut peak = vec![0.0f32; 21 * 21];
        peak[10 * 21 + 10] = 1.0;
        let b = gaussian_blur(&peak, Size::square(21), 2.0);
        let total: f32 = b.iter().sum();
        assert!((total - 1.0).abs() < 1e-4, "{total}");
        assert!(b[10 * 21 + 10] < 0.1 && b[10 * 21 + 11] > 0.0);
        // Symmetric.
        assert!((b[10 * 21 + 8] - b[10 * 21 + 12]).abs() < 1e-7);
        assert_eq!(gaussian_blur(&peak, Size::square(21), 0.0), peak);
    }
}

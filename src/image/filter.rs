//! Filters of single-channel maps.

use super::Size;

/// Index `i` of a line of `n` pixels, reflected into it at both ends (`dcb|abcd|cba`).
pub fn reflect(i: isize, n: usize) -> usize {
    let n = n as isize;
    let period = 2 * n;
    let mut j = i.rem_euclid(period.max(1));
    if j >= n {
        j = period - 1 - j;
    }
    j.clamp(0, n - 1) as usize
}

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
    // Rows: each row padded with its reflection, then a plain dot product per pixel.
    let r = radius as usize;
    let mut tmp = vec![0.0f32; map.len()];
    let mut padded = vec![0.0f32; width + 2 * r];
    for (row, dst) in map.chunks_exact(width).zip(tmp.chunks_exact_mut(width)) {
        for (i, p) in padded.iter_mut().enumerate() {
            *p = row[reflect(i as isize - radius, width)];
        }
        for (x, d) in dst.iter_mut().enumerate() {
            let mut acc = 0.0;
            for (&w, &v) in kernel.iter().zip(&padded[x..]) {
                acc += w * v;
            }
            *d = acc;
        }
    }
    // Columns: each output row accumulates whole source rows, in the same order per pixel.
    let mut out = vec![0.0f32; map.len()];
    for (y, dst) in out.chunks_exact_mut(width).enumerate() {
        for (k, &w) in kernel.iter().enumerate() {
            let src = reflect(y as isize + k as isize - radius, height);
            let src = &tmp[src * width..(src + 1) * width];
            for (d, &v) in dst.iter_mut().zip(src) {
                *d += w * v;
            }
        }
    }
    out
}

/// Mean filter of a row-major map over a `side` x `side` window (odd; an even side is
/// rounded up), averaging only the part of the window inside the map. `side <= 1` returns the
/// map unchanged. Separable running sums: O(1) per pixel whatever the side.
pub fn box_mean(map: &[f32], size: Size, side: usize) -> Vec<f32> {
    let Size { width, height } = size;
    assert_eq!(map.len(), width * height, "map has width*height values");
    if side <= 1 || map.is_empty() {
        return map.to_vec();
    }
    let r = side / 2;
    // One pass along a line of `n` values read with `get(i)`, written with `set(i, v)`.
    let line = |n: usize, get: &dyn Fn(usize) -> f64, set: &mut dyn FnMut(usize, f32)| {
        let mut prefix = vec![0.0f64; n + 1];
        for i in 0..n {
            prefix[i + 1] = prefix[i] + get(i);
        }
        for i in 0..n {
            let (lo, hi) = (i.saturating_sub(r), (i + r + 1).min(n));
            set(i, ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32);
        }
    };
    let mut tmp = vec![0.0f32; map.len()];
    for y in 0..height {
        let row = &map[y * width..(y + 1) * width];
        let out = &mut tmp[y * width..(y + 1) * width];
        line(width, &|x| f64::from(row[x]), &mut |x, v| out[x] = v);
    }
    let mut out = vec![0.0f32; map.len()];
    for x in 0..width {
        line(height, &|y| f64::from(tmp[y * width + x]), &mut |y, v| {
            out[y * width + x] = v
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_mean_averages_the_window_inside_the_map() {
        let map: Vec<f32> = (0..20).map(|v| v as f32).collect(); // 5 wide, 4 high
        let m = box_mean(&map, Size::new(5, 4), 3);
        // Interior pixel (2, 1): mean of rows 0..=2, columns 1..=3.
        let expect = [1, 2, 3, 6, 7, 8, 11, 12, 13].iter().sum::<i32>() as f32 / 9.0;
        assert!((m[5 + 2] - expect).abs() < 1e-5, "{m:?}");
        // Corner (0, 0): mean of the 2 x 2 inside.
        assert!((m[0] - (0.0 + 1.0 + 5.0 + 6.0) / 4.0).abs() < 1e-5);
        assert_eq!(box_mean(&map, Size::new(5, 4), 1), map);
        let flat = vec![3.0f32; 30];
        assert!(box_mean(&flat, Size::new(6, 5), 21)
            .iter()
            .all(|v| (v - 3.0).abs() < 1e-5));
    }

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

    /// The blur equals the textbook form (every tap through `reflect`, horizontal then vertical,
    /// summed in kernel order) to the bit, also when the kernel is wider than the map.
    #[test]
    fn blur_equals_the_direct_reflected_sums() {
        fn direct(map: &[f32], width: usize, height: usize, sigma: f64) -> Vec<f32> {
            let radius = (3.0 * sigma).ceil() as isize;
            let k: Vec<f64> = (-radius..=radius)
                .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
                .collect();
            let sum: f64 = k.iter().sum();
            let kernel: Vec<f32> = k.into_iter().map(|v| (v / sum) as f32).collect();
            let mut tmp = vec![0.0f32; map.len()];
            for y in 0..height {
                for x in 0..width {
                    let mut acc = 0.0;
                    for (k, &w) in kernel.iter().enumerate() {
                        acc +=
                            w * map[y * width + reflect(x as isize + k as isize - radius, width)];
                    }
                    tmp[y * width + x] = acc;
                }
            }
            let mut out = vec![0.0f32; map.len()];
            for y in 0..height {
                for x in 0..width {
                    let mut acc = 0.0;
                    for (k, &w) in kernel.iter().enumerate() {
                        acc +=
                            w * tmp[reflect(y as isize + k as isize - radius, height) * width + x];
                    }
                    out[y * width + x] = acc;
                }
            }
            out
        }
        for (width, height, sigma) in [(13, 9, 1.5), (5, 4, 4.0), (1, 6, 2.0), (30, 2, 0.7)] {
            let map: Vec<f32> = (0..width * height)
                .map(|i| ((i * 37 + 11) % 23) as f32 / 7.0)
                .collect();
            assert_eq!(
                gaussian_blur(&map, Size::new(width, height), sigma),
                direct(&map, width, height, sigma),
                "{width}x{height} sigma {sigma}"
            );
        }
    }
}

//! Generic sliding window (SPEC §5): lists the windows of an image, extracts them from a planar
//! CHW buffer, and merges per-window maps back onto a canvas of the image's size, averaging
//! overlaps and never counting padded pixels. Independent of the model and of burn.
//!
//! Along each axis the window starts are `0, stride, 2·stride, …`. With [`Padding::None`] the
//! last window is shifted inward so that it ends at the border (and a window longer than the
//! image is clipped to the image). With the other policies windows keep their size and the last
//! one may run past the border; the pixels outside the image are filled by the policy (zero,
//! reflect, replicate) when extracting and ignored when merging.
//!
//! Merging averages overlaps, optionally weighted: [`WindowGrid::taper`] gives weights that fall
//! off towards the window edges that lie inside the image, so each pixel is taken mostly from
//! the windows in which it is central (convolutional models see less context near a window edge
//! and reconstruct it worse, which otherwise draws the window grid into the merged map).

use serde::{Deserialize, Serialize};

use crate::image::Size;

/// How a window that runs past the image border is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// No padding: the last window is shifted inward; windows longer than the image are clipped.
    #[default]
    None,
    /// Pixels outside the image are 0.
    Zero,
    /// Mirror without repeating the edge pixel (`dcb|abcd|cba`).
    Reflect,
    /// Repeat the edge pixel (`aaa|abcd|ddd`).
    Replicate,
}

/// One window: its top-left corner in image coordinates and its extracted size. Under a padding
/// policy part of it can lie outside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Top row.
    pub y: usize,
    /// Left column.
    pub x: usize,
    /// Rows extracted.
    pub height: usize,
    /// Columns extracted.
    pub width: usize,
}

/// The windows covering one image.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowGrid {
    /// Image height.
    pub height: usize,
    /// Image width.
    pub width: usize,
    /// Padding policy.
    pub padding: Padding,
    /// Windows in row-major order.
    pub windows: Vec<Window>,
}

/// Starts along one axis and the extracted length.
fn axis(len: usize, window: usize, stride: usize, padding: Padding) -> (Vec<usize>, usize) {
    if padding == Padding::None && window >= len {
        return (vec![0], len);
    }
    let mut starts = Vec::new();
    let mut s = 0;
    loop {
        if padding == Padding::None && s + window >= len {
            starts.push(len - window);
            break;
        }
        starts.push(s);
        if s + window >= len {
            break;
        }
        s += stride;
    }
    (starts, window)
}

impl WindowGrid {
    /// The windows of side `window` and step `stride` over a `height` x `width` image.
    ///
    /// # Panics
    /// When `window` or `stride` is 0 (callers validate their configuration first).
    pub fn new(size: Size, window: usize, stride: usize, padding: Padding) -> Self {
        let Size { width, height } = size;
        assert!(
            window > 0 && stride > 0,
            "window and stride must be positive"
        );
        let (ys, wh) = axis(height, window, stride, padding);
        let (xs, ww) = axis(width, window, stride, padding);
        let windows = ys
            .iter()
            .flat_map(|&y| {
                xs.iter().map(move |&x| Window {
                    y,
                    x,
                    height: wh,
                    width: ww,
                })
            })
            .collect();
        Self {
            height,
            width,
            padding,
            windows,
        }
    }

    /// Source index along an axis of length `len` for position `i` (may be past the border), or
    /// `None` for a zero pixel.
    fn source(&self, i: usize, len: usize) -> Option<usize> {
        if i < len {
            return Some(i);
        }
        match self.padding {
            Padding::None | Padding::Zero => None,
            Padding::Replicate => Some(len - 1),
            Padding::Reflect => {
                if len == 1 {
                    return Some(0);
                }
                let period = 2 * (len - 1);
                let j = i % period;
                Some(if j < len { j } else { period - j })
            }
        }
    }

    /// Extracts `window` from a CHW buffer of this grid's image size (`channels` planes).
    pub fn extract(&self, image: &[f32], channels: usize, window: &Window) -> Vec<f32> {
        let plane = self.height * self.width;
        assert_eq!(image.len(), channels * plane, "buffer has the grid's size");
        let mut out = Vec::with_capacity(channels * window.height * window.width);
        for c in 0..channels {
            let src = &image[c * plane..(c + 1) * plane];
            for wy in 0..window.height {
                let row = self.source(window.y + wy, self.height);
                for wx in 0..window.width {
                    let col = self.source(window.x + wx, self.width);
                    out.push(match (row, col) {
                        (Some(r), Some(c)) => src[r * self.width + c],
                        _ => 0.0,
                    });
                }
            }
        }
        out
    }

    /// An empty canvas for merging single-channel window maps.
    pub fn canvas(&self) -> Canvas {
        Canvas {
            height: self.height,
            width: self.width,
            sum: vec![0.0; self.height * self.width],
            weight: vec![0.0; self.height * self.width],
            count: vec![0; self.height * self.width],
        }
    }

    /// Merge weights of `window` (row-major, the window's size): 1 in the middle, falling
    /// linearly to `floor` over `ramp` (a share of the window side) towards each window edge that
    /// lies inside the image; edges on the image border keep weight 1, since no other window
    /// sees those pixels with more context. `ramp = 0` gives uniform weights.
    pub fn taper(&self, window: &Window, ramp: f64, floor: f32) -> Vec<f32> {
        let axis = |start: usize, len: usize, image: usize| -> Vec<f32> {
            let r = ramp * len as f64;
            let inner_start = start > 0;
            let inner_end = start + len < image;
            (0..len)
                .map(|i| {
                    if r <= 0.0 {
                        return 1.0;
                    }
                    let mut w = 1.0f64;
                    if inner_start {
                        w = w.min((i as f64 + 0.5) / r);
                    }
                    if inner_end {
                        w = w.min(((len - i) as f64 - 0.5) / r);
                    }
                    (w as f32).clamp(floor, 1.0)
                })
                .collect()
        };
        let wy = axis(window.y, window.height, self.height);
        let wx = axis(window.x, window.width, self.width);
        wy.iter()
            .flat_map(|&a| wx.iter().map(move |&b| a * b))
            .collect()
    }
}

/// Accumulates per-window maps onto the image: the weighted sum, the weight and the count of
/// windows per pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct Canvas {
    height: usize,
    width: usize,
    sum: Vec<f64>,
    weight: Vec<f64>,
    count: Vec<u32>,
}

impl Canvas {
    /// Adds a single-channel `map` of `window`'s size with weight 1; pixels outside the image
    /// are skipped.
    pub fn add(&mut self, window: &Window, map: &[f32]) {
        self.add_weighted(window, map, None);
    }

    /// Adds `map` with per-pixel `weights` (row-major, the window's size; `None` = all 1).
    pub fn add_weighted(&mut self, window: &Window, map: &[f32], weights: Option<&[f32]>) {
        assert_eq!(
            map.len(),
            window.height * window.width,
            "map has the window's size"
        );
        if let Some(w) = weights {
            assert_eq!(w.len(), map.len(), "weights have the window's size");
        }
        let rows = window.height.min(self.height.saturating_sub(window.y));
        let cols = window.width.min(self.width.saturating_sub(window.x));
        for wy in 0..rows {
            let dst = (window.y + wy) * self.width + window.x;
            for wx in 0..cols {
                let i = wy * window.width + wx;
                let w = weights.map_or(1.0, |w| f64::from(w[i]));
                self.sum[dst + wx] += w * f64::from(map[i]);
                self.weight[dst + wx] += w;
                self.count[dst + wx] += 1;
            }
        }
    }

    /// Windows that covered each pixel (row-major).
    pub fn counts(&self) -> &[u32] {
        &self.count
    }

    /// The merged map: per pixel, the (weighted) mean over the windows covering it (0 where
    /// none did).
    pub fn finish(&self) -> Vec<f32> {
        self.sum
            .iter()
            .zip(&self.weight)
            .map(|(&s, &w)| if w > 0.0 { (s / w) as f32 } else { 0.0 })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const POLICIES: [Padding; 4] = [
        Padding::None,
        Padding::Zero,
        Padding::Reflect,
        Padding::Replicate,
    ];

    /// Random image sizes, windows and strides (stride ≤ window: larger strides leave gaps by
    /// design), including images smaller than the window.
    fn cases() -> Vec<(usize, usize, usize, usize)> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut v = vec![(1, 1, 1, 1), (5, 3, 8, 4), (8, 8, 8, 8), (9, 17, 4, 3)];
        for _ in 0..200 {
            let window = rng.random_range(1..=24);
            v.push((
                rng.random_range(1..=40),
                rng.random_range(1..=40),
                window,
                rng.random_range(1..=window),
            ));
        }
        v
    }

    fn image(channels: usize, h: usize, w: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..channels * h * w).map(|_| rng.random()).collect()
    }

    #[test]
    fn every_pixel_is_covered_and_counts_are_the_windows_over_it() {
        for (h, w, win, stride) in cases() {
            for padding in POLICIES {
                let grid = WindowGrid::new(Size::new(w, h), win, stride, padding);
                let mut canvas = grid.canvas();
                for window in &grid.windows {
                    canvas.add(window, &vec![1.0; window.height * window.width]);
                }
                for y in 0..h {
                    for x in 0..w {
                        let expected = grid
                            .windows
                            .iter()
                            .filter(|q| {
                                (q.y..q.y + q.height).contains(&y)
                                    && (q.x..q.x + q.width).contains(&x)
                            })
                            .count() as u32;
                        let got = canvas.counts()[y * w + x];
                        assert!(
                            got >= 1,
                            "{h}x{w} win {win} stride {stride} {padding:?}: ({y},{x}) uncovered"
                        );
                        assert_eq!(got, expected);
                    }
                }
                if padding == Padding::None {
                    // No window leaves the image.
                    assert!(grid
                        .windows
                        .iter()
                        .all(|q| q.y + q.height <= h && q.x + q.width <= w));
                }
            }
        }
    }

    #[test]
    fn merging_the_windows_of_an_image_gives_it_back_exactly() {
        for (i, (h, w, win, stride)) in cases().into_iter().enumerate() {
            let img = image(1, h, w, i as u64);
            for padding in POLICIES {
                let grid = WindowGrid::new(Size::new(w, h), win, stride, padding);
                let mut canvas = grid.canvas();
                for window in &grid.windows {
                    canvas.add(window, &grid.extract(&img, 1, window));
                }
                let merged = canvas.finish();
                for (a, b) in merged.iter().zip(&img) {
                    assert!(
                        (a - b).abs() <= 1e-6 * b.abs().max(1.0),
                        "{h}x{w} {padding:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn tapered_merging_also_gives_the_image_back_and_favours_window_centres() {
        for (i, (h, w, win, stride)) in cases().into_iter().enumerate() {
            let img = image(1, h, w, 1000 + i as u64);
            for padding in POLICIES {
                let grid = WindowGrid::new(Size::new(w, h), win, stride, padding);
                let mut canvas = grid.canvas();
                for q in &grid.windows {
                    let weights = grid.taper(q, 0.25, 1e-3);
                    assert!(weights.iter().all(|&v| (1e-3..=1.0).contains(&v)));
                    canvas.add_weighted(q, &grid.extract(&img, 1, q), Some(&weights));
                }
                for (a, b) in canvas.finish().iter().zip(&img) {
                    assert!((a - b).abs() <= 1e-5, "{h}x{w} {padding:?}");
                }
            }
        }
        // 1 x 16 image, windows of 8 at x = 0, 4, 8: the middle window's left edge is inside
        // the image (tapered), the first window's left edge is the image border (weight 1).
        let grid = WindowGrid::new(Size::new(16, 1), 8, 4, Padding::None);
        let first = grid.taper(&grid.windows[0], 0.25, 1e-3);
        let middle = grid.taper(&grid.windows[1], 0.25, 1e-3);
        assert_eq!(first[0], 1.0);
        assert!(first[7] < 0.5 && middle[0] < 0.5 && middle[7] < 0.5);
        assert_eq!(middle[3], 1.0);
        assert_eq!(grid.taper(&grid.windows[1], 0.0, 1e-3), vec![1.0; 8]);
        // A pixel near the edge of one window and central in another follows the central one.
        let mut canvas = grid.canvas();
        for (q, v) in grid.windows.iter().zip([0.0f32, 1.0, 0.0]) {
            canvas.add_weighted(q, &[v; 8], Some(&grid.taper(q, 0.25, 1e-3)));
        }
        let merged = canvas.finish();
        assert!(merged[6] > 0.5, "{merged:?}");
    }

    #[test]
    fn padding_never_leaks_into_the_canvas() {
        // Windows whose padded pixels carry a huge value: the merged map must not see it.
        for (h, w, win, stride) in cases() {
            for padding in POLICIES {
                let grid = WindowGrid::new(Size::new(w, h), win, stride, padding);
                let mut canvas = grid.canvas();
                for q in &grid.windows {
                    let map: Vec<f32> = (0..q.height * q.width)
                        .map(|i| {
                            let (y, x) = (q.y + i / q.width, q.x + i % q.width);
                            if y < h && x < w {
                                1.0
                            } else {
                                1e9
                            }
                        })
                        .collect();
                    canvas.add(q, &map);
                }
                assert!(canvas.finish().iter().all(|&v| v == 1.0));
            }
        }
    }

    #[test]
    fn extraction_fills_padded_pixels_by_the_policy() {
        // A one-row image 1 2 3, window 5 at x = 0: zero / reflect / replicate fill.
        let img = [1.0, 2.0, 3.0];
        let get = |padding| {
            let grid = WindowGrid::new(Size::new(3, 1), 5, 5, padding);
            assert_eq!(grid.windows.len(), 1);
            let q = grid.windows[0];
            // The first row of the (square, padded) window.
            grid.extract(&img, 1, &q)[..q.width].to_vec()
        };
        assert_eq!(get(Padding::None), vec![1.0, 2.0, 3.0]);
        assert_eq!(get(Padding::Zero), vec![1.0, 2.0, 3.0, 0.0, 0.0]);
        assert_eq!(get(Padding::Reflect), vec![1.0, 2.0, 3.0, 2.0, 1.0]);
        assert_eq!(get(Padding::Replicate), vec![1.0, 2.0, 3.0, 3.0, 3.0]);
        // Multi-channel buffers keep their planes apart.
        let two = [1.0, 2.0, 3.0, 10.0, 20.0, 30.0];
        let grid = WindowGrid::new(Size::new(3, 1), 2, 1, Padding::None);
        assert_eq!(grid.windows.len(), 2);
        assert_eq!(
            grid.extract(&two, 2, &grid.windows[1]),
            vec![2.0, 3.0, 20.0, 30.0]
        );
    }

    #[test]
    fn none_policy_shifts_the_last_window_inward() {
        let grid = WindowGrid::new(Size::new(10, 10), 4, 4, Padding::None);
        let xs: Vec<usize> = grid.windows.iter().take(3).map(|q| q.x).collect();
        assert_eq!(xs, vec![0, 4, 6]);
        // The whole image as one window when the window is at least the image.
        let grid = WindowGrid::new(Size::new(9, 6), 12, 6, Padding::None);
        assert_eq!(
            grid.windows,
            vec![Window {
                y: 0,
                x: 0,
                height: 6,
                width: 9
            }]
        );
    }
}

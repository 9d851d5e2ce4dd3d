//! Images in memory: the planar `f32` [`ChwImage`], a [`Size`] type with named sides (never a
//! loose `(w, h)` or `(h, w)` pair), resizing and cropping, and map filters ([`filter`]).
//! Decoding from files is the data layer's job (`data::image_io`).

pub mod filter;
pub mod resize;

use serde::{Deserialize, Serialize};

/// Width and height of an image or map, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Size {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

impl Size {
    /// A `width` x `height` size.
    pub fn new(width: usize, height: usize) -> Self {
        Self { width, height }
    }

    /// A square of side `side`.
    pub fn square(side: usize) -> Self {
        Self::new(side, side)
    }

    /// Pixels in one plane.
    pub fn area(self) -> usize {
        self.width * self.height
    }

    /// The longer side.
    pub fn long_side(self) -> usize {
        self.width.max(self.height)
    }

    /// This size rescaled so that its long side is `side` (aspect kept, each side at least 1).
    pub fn fit_long_side(self, side: usize) -> Size {
        let scale = side as f64 / self.long_side() as f64;
        let w = ((self.width as f64 * scale).round() as usize).max(1);
        let h = ((self.height as f64 * scale).round() as usize).max(1);
        Size::new(w, h)
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// An image as a planar `f32` buffer: `data[c * height * width + y * width + x]`, values in [0, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct ChwImage {
    /// Number of channels (1 gray, 3 RGB).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// Pixel values, channel-major.
    pub data: Vec<f32>,
}

impl ChwImage {
    /// A zero-filled image.
    pub fn zeros(channels: usize, size: Size) -> Self {
        Self {
            channels,
            height: size.height,
            width: size.width,
            data: vec![0.0; channels * size.area()],
        }
    }

    /// A single-channel map of `size` from its row-major values.
    pub fn map(size: Size, data: Vec<f32>) -> Self {
        assert_eq!(data.len(), size.area(), "map has width*height values");
        Self {
            channels: 1,
            height: size.height,
            width: size.width,
            data,
        }
    }

    /// Width and height.
    pub fn size(&self) -> Size {
        Size::new(self.width, self.height)
    }

    /// The value at channel `c`, row `y`, column `x`.
    pub fn get(&self, c: usize, y: usize, x: usize) -> f32 {
        self.data[(c * self.height + y) * self.width + x]
    }

    /// Resized copy (triangle filter, anti-aliased when shrinking; [`resize`]). Values of any
    /// range are kept (anomaly maps, z-scores): nothing is clamped.
    pub fn resized(&self, size: Size) -> ChwImage {
        if size == self.size() {
            return self.clone();
        }
        let plane = self.width * self.height;
        let mut data = Vec::with_capacity(self.channels * size.area());
        for c in 0..self.channels {
            let values = &self.data[c * plane..(c + 1) * plane];
            data.extend(resize::resize_plane(values, self.size(), size));
        }
        ChwImage {
            channels: self.channels,
            height: size.height,
            width: size.width,
            data,
        }
    }

    /// Resized so that its long side is `side` (aspect kept).
    pub fn fit_long_side(&self, side: usize) -> ChwImage {
        self.resized(self.size().fit_long_side(side))
    }

    /// The region of `size` whose top-left corner is (`x`, `y`).
    pub fn crop(&self, x: usize, y: usize, size: Size) -> ChwImage {
        let Size { width, height } = size;
        assert!(
            x + width <= self.width && y + height <= self.height,
            "crop inside the image"
        );
        let mut data = Vec::with_capacity(self.channels * width * height);
        for c in 0..self.channels {
            for row in y..y + height {
                let start = (c * self.height + row) * self.width + x;
                data.extend_from_slice(&self.data[start..start + width]);
            }
        }
        ChwImage {
            channels: self.channels,
            height,
            width,
            data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizing_keeps_values_outside_the_unit_range() {
        // A z-score map: negative background, a peak far above 1.
        let mut map = ChwImage::zeros(1, Size::square(8));
        for (i, v) in map.data.iter_mut().enumerate() {
            *v = -3.0 + 0.01 * i as f32;
        }
        map.data[3 * 8 + 3] = 40.0;
        let up = map.resized(Size::square(32));
        let (lo, hi) = up
            .data
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        assert!(lo < -2.9 && hi > 20.0, "range {lo}..{hi} was clipped");
        // Distinct inputs stay distinct (no flat clipped plateau) and within the input range.
        let below_zero = up.data.iter().filter(|&&v| v < 0.0).count();
        assert!(below_zero > 900, "{below_zero}");
        assert!(lo >= -3.0 - 1e-4 && hi <= 40.0 + 1e-3);
        // Images in [0, 1] go through the identity mapping and stay in [0, 1].
        let mut img = ChwImage::zeros(3, Size::new(6, 4));
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = (i % 7) as f32 / 6.0;
        }
        let a = img.resized(Size::new(12, 8));
        assert!(a.data.iter().all(|v| (0.0..=1.0).contains(v)));
        // A constant plane outside [0, 1] stays constant.
        let flat = ChwImage {
            channels: 1,
            height: 3,
            width: 3,
            data: vec![5.0; 9],
        };
        assert!(flat
            .resized(Size::square(7))
            .data
            .iter()
            .all(|&v| (v - 5.0).abs() < 1e-5));
    }

    #[test]
    fn long_side_fit_keeps_the_aspect_and_names_width_and_height() {
        assert_eq!(Size::new(900, 600).fit_long_side(300), Size::new(300, 200));
        assert_eq!(Size::new(600, 900).fit_long_side(300), Size::new(200, 300));
        assert_eq!(Size::new(1000, 1).fit_long_side(10), Size::new(10, 1));
        let img = ChwImage::zeros(3, Size::new(8, 4));
        assert_eq!(img.fit_long_side(4).size(), Size::new(4, 2));
        assert_eq!(img.crop(2, 1, Size::new(3, 2)).size(), Size::new(3, 2));
    }
}

//! Resizing of one `f32` plane with a triangle (bilinear) filter whose support widens with the
//! downscale factor, so every source pixel counts (no aliasing), through `fast_image_resize`'s
//! SIMD convolution. Values are not clamped: maps of z-scores resize as they are.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::Size;

/// `plane` (`from.area()` values, row-major) resized to `to`.
pub fn resize_plane(plane: &[f32], from: Size, to: Size) -> Vec<f32> {
    assert_eq!(plane.len(), from.area(), "plane has width·height values");
    let mut out = vec![0f32; to.area()];
    if to.area() == 0 || from.area() == 0 {
        return out;
    }
    // Sides fit u32: images are decoded from files with u32 sides, and working sizes are
    // bounded far below.
    let side = |v: usize| u32::try_from(v).expect("image side fits u32");
    let src = ImageRef::new(
        side(from.width),
        side(from.height),
        bytemuck::cast_slice(plane),
        PixelType::F32,
    )
    .expect("an f32 buffer of width·height values is a valid F32 image");
    let mut dst = Image::from_slice_u8(
        side(to.width),
        side(to.height),
        bytemuck::cast_slice_mut(&mut out),
        PixelType::F32,
    )
    .expect("an f32 buffer of width·height values is a valid F32 image");
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .expect("same pixel type on both sides, no crop box");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A constant stays constant; a linear ramp stays a ramp inside (a triangle filter
    /// reproduces linear functions away from the border); a 2x downscale averages pairs.
    #[test]
    fn resizing_keeps_constants_ramps_and_averages() {
        let constant = resize_plane(&[2.5; 12], Size::new(4, 3), Size::new(7, 5));
        assert!(
            constant.iter().all(|&v| (v - 2.5).abs() < 1e-6),
            "{constant:?}"
        );

        let from = Size::new(16, 1);
        let ramp: Vec<f32> = (0..16).map(|x| x as f32).collect();
        let half = resize_plane(&ramp, from, Size::new(8, 1));
        // Output pixel i covers source pixels 2i and 2i + 1 (centre 2i + 0.5) and their
        // neighbours with weights 1/8, 3/8, 3/8, 1/8.
        for (i, &v) in half.iter().enumerate().skip(1).take(6) {
            assert!((v - (2.0 * i as f32 + 0.5)).abs() < 1e-5, "{i}: {v}");
        }
        let up = resize_plane(&ramp, from, Size::new(32, 1));
        for (i, &v) in up.iter().enumerate().skip(2).take(28) {
            // Output centre (i + 0.5)/2 − 0.5 in source pixels.
            let expected = (i as f32 + 0.5) / 2.0 - 0.5;
            assert!((v - expected).abs() < 1e-5, "{i}: {v} vs {expected}");
        }
    }
}

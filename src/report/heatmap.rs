//! Heat-map overlays: the anomaly map, resized to the original image, drawn with the turbo colour
//! map over the image. Colours are on a fixed scale relative to the decision threshold, so heat
//! maps of different images compare: 0 (the mean normal error) is blue, the threshold is
//! yellow-orange (2/3 of the scale), 1.5 × threshold and above is dark red.

use std::io::Cursor;
use std::path::Path;

use image::{ImageFormat, Rgb, RgbImage};

use crate::error::{Error, Result};
use crate::image::ChwImage;
use crate::util::fs::write_atomic;

/// Opacity of the colour map over the image.
const ALPHA: f32 = 0.5;

/// Position of a zero map value on the colour map (turbo is blue there).
const ZERO_AT: f64 = 0.15;

/// The anomaly map `map` (1 channel, any size) resized to `original`'s size.
pub fn map_at_original_size(map: &ChwImage, original: &ChwImage) -> ChwImage {
    map.resized(original.size())
}

/// Overlay of `map` (already at `original`'s size) on `original` (1 or 3 channels, [0, 1]).
/// `threshold` sets the colour scale (values ≤ 0 fall back to the map's maximum).
pub fn overlay(original: &ChwImage, map: &ChwImage, threshold: f64) -> RgbImage {
    assert_eq!(
        (map.width, map.height),
        (original.width, original.height),
        "map at the image's size"
    );
    let top = if threshold > 0.0 {
        1.5 * threshold
    } else {
        f64::from(map.data.iter().copied().fold(f32::MIN, f32::max)).max(1e-6)
    };
    let plane = original.width * original.height;
    RgbImage::from_fn(original.width as u32, original.height as u32, |x, y| {
        let i = y as usize * original.width + x as usize;
        let t = (ZERO_AT + (1.0 - ZERO_AT) * f64::from(map.data[i]) / top).clamp(0.0, 1.0);
        let c = colorous::TURBO.eval_continuous(t);
        let base = |ch: usize| {
            let ch = if original.channels == 1 { 0 } else { ch };
            original.data[ch * plane + i]
        };
        let mix = |b: f32, v: u8| {
            let v = f32::from(v) / 255.0;
            (((1.0 - ALPHA) * b + ALPHA * v) * 255.0)
                .round()
                .clamp(0.0, 255.0) as u8
        };
        Rgb([mix(base(0), c.r), mix(base(1), c.g), mix(base(2), c.b)])
    })
}

/// Writes the overlay as a PNG at `path` (atomically, creating folders).
pub fn write_overlay(
    path: &Path,
    original: &ChwImage,
    map: &ChwImage,
    threshold: f64,
) -> Result<()> {
    let full = map_at_original_size(map, original);
    let img = overlay(original, &full, threshold);
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|e| Error::file(path, format!("cannot encode heat map: {e}")))?;
    write_atomic(path, &bytes)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_keeps_the_size_and_colours_by_the_threshold() {
        let original = ChwImage::zeros(1, crate::image::Size::new(6, 4));
        let mut map = ChwImage::zeros(1, crate::image::Size::new(6, 4));
        map.data[0] = 100.0; // far above the threshold: red end of turbo
        let img = overlay(&original, &map, 2.0);
        assert_eq!(img.dimensions(), (6, 4));
        let hot = img.get_pixel(0, 0);
        let zero = img.get_pixel(5, 3);
        assert!(hot[0] > hot[2] && hot[0] > hot[1], "{hot:?}");
        assert!(zero[2] > zero[0] && zero[2] > zero[1], "{zero:?}");
    }
}

//! Image decoding and resizing into `f32` CHW buffers in [0, 1], and mask loading.
//!
//! Decoding goes through the `image` crate; the format is taken from the file's content, not its
//! extension. 8- and 16-bit gray or colour images are accepted (alpha is dropped).

use std::path::Path;

use image::{DynamicImage, ImageReader};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::image::{ChwImage, Size};

/// How many channels images are decoded to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum ChannelMode {
    /// Gray if every training image is gray, RGB otherwise.
    #[default]
    Auto,
    /// Always one channel (colour images are converted to luminance).
    Gray,
    /// Always three channels (gray images are replicated).
    Rgb,
}

impl ChannelMode {
    /// The channel count for a category whose images have the given colour channel counts.
    pub fn resolve(self, image_channels: impl IntoIterator<Item = u8>) -> usize {
        match self {
            ChannelMode::Gray => 1,
            ChannelMode::Rgb => 3,
            ChannelMode::Auto => {
                if image_channels.into_iter().all(|c| c == 1) {
                    1
                } else {
                    3
                }
            }
        }
    }

    /// The one channel policy of check, train, eval and predict: whether an image with
    /// `image_channels` colour channels may go into a model of `model_channels`. `auto` converts
    /// nothing (a gray image for a colour model, or the reverse, is a different camera set-up
    /// until the user says otherwise); `gray` and `rgb` convert every image.
    pub fn admits(self, image_channels: u8, model_channels: usize) -> Result<(), String> {
        if self != ChannelMode::Auto || usize::from(image_channels) == model_channels {
            return Ok(());
        }
        Err(format!(
            "image has {image_channels} channel(s), the model expects {model_channels} (channel policy `auto` converts nothing: train with --channels rgb or --channels gray to convert every image)"
        ))
    }

    /// Why `auto` refuses a set of images mixing gray and colour (`None` when it does not, or
    /// for `gray`/`rgb`, which convert): `gray` and `colour` are image counts.
    pub fn mixed(self, gray: usize, colour: usize) -> Option<String> {
        (self == ChannelMode::Auto && gray > 0 && colour > 0).then(|| {
            format!(
                "mixed gray and colour images ({gray} gray, {colour} colour): channel policy `auto` converts nothing; pass --channels rgb (gray replicated) or --channels gray (colour to luminance)"
            )
        })
    }
}

/// What an image header says: size, colour channels (alpha not counted) and bits per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Colour channels: 1 gray, 3 RGB (alpha not counted).
    pub channels: u8,
    /// Bits per channel (8, 16 or 32).
    pub bit_depth: u8,
}

impl ImageInfo {
    /// Reads size and pixel format of a decoded image.
    pub fn of(path: &Path, image: &DynamicImage) -> Result<Self> {
        let color = image.color();
        let channels = match color.channel_count() {
            1 | 2 => 1,
            3 | 4 => 3,
            _ => {
                return Err(Error::UnsupportedFormat {
                    path: path.to_path_buf(),
                    format: format!("{color:?}"),
                })
            }
        };
        let bit_depth = (color.bits_per_pixel() / u16::from(color.channel_count())) as u8;
        Ok(Self {
            width: image.width(),
            height: image.height(),
            channels,
            bit_depth,
        })
    }
}

/// Decodes an image file, naming the file in any error.
pub fn decode(path: &Path) -> Result<DynamicImage> {
    let reader = ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    reader.decode().map_err(|e| Error::Decode {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Reads only an image's header: size and pixel format, without decoding the pixels.
pub fn probe(path: &Path) -> Result<ImageInfo> {
    use image::ImageDecoder;
    let reader = ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    let decoder = reader.into_decoder().map_err(|e| Error::Decode {
        path: path.to_path_buf(),
        source: e,
    })?;
    let (width, height) = decoder.dimensions();
    let color = decoder.color_type();
    let channels = match color.channel_count() {
        1 | 2 => 1,
        _ => 3,
    };
    Ok(ImageInfo {
        width,
        height,
        channels,
        bit_depth: (color.bits_per_pixel() / u16::from(color.channel_count())) as u8,
    })
}

/// Converts a decoded image to a CHW buffer with `channels` channels (1 or 3), resized to
/// `size` with a triangle (bilinear, anti-aliased) filter when given.
pub fn to_chw(image: &DynamicImage, channels: usize, size: Option<Size>) -> ChwImage {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let plane = width * height;
    let data = match (channels, image) {
        (1, _) => image
            .to_luma32f()
            .into_raw()
            .into_iter()
            .map(|v| v.clamp(0.0, 1.0))
            .collect(),
        // 8-bit RGB (most PNGs and JPEGs): straight into planes, one pass.
        (_, DynamicImage::ImageRgb8(rgb)) => rgb_planes(
            rgb.pixels().map(|px| px.0.map(|v| f32::from(v) / 255.0)),
            plane,
        ),
        _ => rgb_planes(
            image
                .to_rgb32f()
                .pixels()
                .map(|px| px.0.map(|v| v.clamp(0.0, 1.0))),
            plane,
        ),
    };
    let chw = ChwImage {
        channels: if channels == 1 { 1 } else { 3 },
        height,
        width,
        data,
    };
    match size {
        Some(size) => chw.resized(size),
        None => chw,
    }
}

/// The three planes (`3 × plane` values) of RGB pixels given in row-major order.
fn rgb_planes(pixels: impl Iterator<Item = [f32; 3]>, plane: usize) -> Vec<f32> {
    let mut data = vec![0.0f32; 3 * plane];
    for (i, px) in pixels.enumerate() {
        for (c, v) in px.into_iter().enumerate() {
            data[c * plane + i] = v;
        }
    }
    data
}

/// Decodes `path` into a CHW buffer with `channels` channels, optionally resized.
pub fn load_chw(path: &Path, channels: usize, size: Option<Size>) -> Result<ChwImage> {
    Ok(to_chw(&decode(path)?, channels, size))
}

/// A binary ground-truth mask: `true` where the defect is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Row-major foreground flags.
    pub data: Vec<bool>,
}

impl Mask {
    /// Number of foreground pixels.
    pub fn foreground(&self) -> usize {
        self.data.iter().filter(|&&v| v).count()
    }
}

/// Converts a decoded mask image to a binary mask: foreground is a value above half the mask's
/// own maximum, so 0/255, 0/254 and 0/1 masks all read as drawn, and a soft (anti-aliased or
/// resized) mask keeps its core instead of growing to every pixel > 0. Colour masks use the
/// largest channel. [`mask_levels`] tells `data check` which masks are not binary.
pub fn to_mask(image: &DynamicImage) -> Mask {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let values = mask_values(image);
    let max = values.iter().copied().max().unwrap_or(0);
    let data = values
        .iter()
        .map(|&v| max > 0 && u32::from(v) * 2 > u32::from(max))
        .collect();
    Mask {
        width: w,
        height: h,
        data,
    }
}

/// Grey levels of a mask: its maximum and the number of pixels strictly between 0 and it (0 for
/// a binary mask).
pub fn mask_levels(image: &DynamicImage) -> (u16, usize) {
    let values = mask_values(image);
    let max = values.iter().copied().max().unwrap_or(0);
    let between = values.iter().filter(|&&v| v > 0 && v < max).count();
    (max, between)
}

/// A mask's per-pixel value (the largest channel of a colour mask), at its own bit depth.
fn mask_values(image: &DynamicImage) -> Vec<u16> {
    match image {
        DynamicImage::ImageLuma8(m) => m.as_raw().iter().map(|&v| u16::from(v)).collect(),
        DynamicImage::ImageLuma16(m) => m.as_raw().clone(),
        other => other
            .to_rgb16()
            .pixels()
            .map(|p| p.0.iter().copied().max().unwrap_or(0))
            .collect(),
    }
}

/// Loads a mask and checks that its size equals `image_size` of `image_path`.
pub fn load_mask(path: &Path, image_path: &Path, image_size: Size) -> Result<Mask> {
    let decoded = decode(path)?;
    check_mask_size(
        path,
        image_path,
        (decoded.width(), decoded.height()),
        (image_size.width as u32, image_size.height as u32),
    )?;
    Ok(to_mask(&decoded))
}

/// Fails with [`Error::MaskSizeMismatch`] when the two sizes differ.
pub fn check_mask_size(
    mask: &Path,
    image: &Path,
    mask_size: (u32, u32),
    image_size: (u32, u32),
) -> Result<()> {
    if mask_size == image_size {
        return Ok(());
    }
    Err(Error::MaskSizeMismatch {
        mask: mask.to_path_buf(),
        image: image.to_path_buf(),
        mask_w: mask_size.0,
        mask_h: mask_size.1,
        image_w: image_size.0,
        image_h: image_size.1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The planes of the `image` crate's own conversion to f32 (written out here, independent
    /// of `rgb_planes`).
    fn reference_planes(image: &DynamicImage) -> Vec<f32> {
        let rgb = image.to_rgb32f();
        let plane = (rgb.width() * rgb.height()) as usize;
        let mut data = vec![0.0; 3 * plane];
        for (i, px) in rgb.pixels().enumerate() {
            for c in 0..3 {
                data[c * plane + i] = px.0[c];
            }
        }
        data
    }

    /// 8-bit RGB takes the direct path and 16-bit the generic one; both equal the `image`
    /// crate's own conversion to f32, and gray converts as before.
    #[test]
    fn to_chw_equals_the_image_crates_conversion() {
        let rgb = image::RgbImage::from_fn(5, 3, |x, y| {
            image::Rgb([
                (x * 50) as u8,
                (y * 100 + 7) as u8,
                (x * y * 17 + 255 - x) as u8,
            ])
        });
        let decoded = DynamicImage::ImageRgb8(rgb);
        let chw = to_chw(&decoded, 3, None);
        assert_eq!((chw.channels, chw.width, chw.height), (3, 5, 3));
        assert_eq!(chw.data, reference_planes(&decoded));
        let wide = DynamicImage::ImageRgb16(decoded.to_rgb16());
        assert_eq!(to_chw(&wide, 3, None).data, reference_planes(&wide));
        let gray = to_chw(&decoded, 1, None);
        assert_eq!(gray.data, decoded.to_luma32f().into_raw());
        let small = to_chw(&decoded, 3, Some(Size::new(2, 2)));
        assert_eq!((small.width, small.height), (2, 2));
    }
}

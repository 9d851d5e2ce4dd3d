//! The report's heat-map gallery: which test images to show (misclassified first: false
//! negatives, then false positives; then the highest and the lowest scored) and their pictures —
//! the image and its heat-map overlay, each with the ground-truth defect outlined — as small
//! JPEGs embedded in the page.

use std::io::Cursor;
use std::path::Path;

use base64::Engine as _;
use image::imageops::FilterType;
use image::{DynamicImage, Rgb, RgbImage};

use super::eval_dir::ScoreRow;
use crate::data::image_io::{decode, to_mask};
use crate::error::{Error, Result};

/// Long side of a gallery picture, pixels.
pub const THUMB_PX: u32 = 240;

/// Outline colour of the ground-truth defect.
const CONTOUR: Rgb<u8> = Rgb([0, 255, 0]);

/// Why an image is in the gallery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Anomalous, labelled normal.
    FalseNegative,
    /// Normal, labelled anomalous.
    FalsePositive,
    /// Among the highest scored.
    Highest,
    /// Among the lowest scored.
    Lowest,
}

impl Pick {
    /// Short label shown on the tile.
    pub fn label(self) -> &'static str {
        match self {
            Pick::FalseNegative => "false negative",
            Pick::FalsePositive => "false positive",
            Pick::Highest => "highest score",
            Pick::Lowest => "lowest score",
        }
    }

    /// CSS class of the tile's tag (the report colours misclassified images red).
    pub fn css_class(self) -> &'static str {
        match self {
            Pick::FalseNegative => "fn",
            Pick::FalsePositive => "fp",
            Pick::Highest => "hi",
            Pick::Lowest => "lo",
        }
    }
}

/// How many images of each kind the gallery shows at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GalleryLimits {
    /// Misclassified anomalous images (the most confidently missed first).
    pub false_negatives: usize,
    /// Misclassified normal images (the highest scored first).
    pub false_positives: usize,
    /// Highest scored among the rest.
    pub highest: usize,
    /// Lowest scored among the rest.
    pub lowest: usize,
}

impl Default for GalleryLimits {
    fn default() -> Self {
        Self {
            false_negatives: 6,
            false_positives: 6,
            highest: 4,
            lowest: 4,
        }
    }
}

/// The rows to show, as (row index, why), in display order; no row twice.
pub fn select(rows: &[ScoreRow], limits: GalleryLimits) -> Vec<(usize, Pick)> {
    let mut by_score: Vec<usize> = (0..rows.len()).collect();
    by_score.sort_by(|&a, &b| rows[a].score.total_cmp(&rows[b].score));
    let mut picked = Vec::new();
    let mut taken = vec![false; rows.len()];
    let mut take = |order: &mut dyn Iterator<Item = usize>, limit: usize, pick: Pick| {
        for i in order.take(limit) {
            taken[i] = true;
            picked.push((i, pick));
        }
    };
    // Missed anomalies, lowest score (most confidently missed) first.
    let fnegs: Vec<usize> = by_score
        .iter()
        .copied()
        .filter(|&i| rows[i].label != 0 && rows[i].predicted == 0)
        .collect();
    take(
        &mut fnegs.into_iter(),
        limits.false_negatives,
        Pick::FalseNegative,
    );
    let fposs: Vec<usize> = by_score
        .iter()
        .rev()
        .copied()
        .filter(|&i| rows[i].label == 0 && rows[i].predicted != 0)
        .collect();
    take(
        &mut fposs.into_iter(),
        limits.false_positives,
        Pick::FalsePositive,
    );
    let rest: Vec<usize> = by_score.iter().copied().filter(|&i| !taken[i]).collect();
    let highest: Vec<usize> = rest.iter().rev().take(limits.highest).copied().collect();
    let lowest: Vec<usize> = rest
        .iter()
        .filter(|i| !highest.contains(i))
        .take(limits.lowest)
        .copied()
        .collect();
    picked.extend(highest.into_iter().map(|i| (i, Pick::Highest)));
    picked.extend(lowest.into_iter().map(|i| (i, Pick::Lowest)));
    picked
}

/// The pictures of one gallery tile, as `data:` URIs.
#[derive(Debug, Clone)]
pub struct TilePictures {
    /// The image with the ground truth outlined.
    pub image: String,
    /// The heat-map overlay with the ground truth outlined, when the evaluation wrote one.
    pub overlay: Option<String>,
}

/// Decodes `row`'s image (and `overlay`, and its mask), shrinks them to [`THUMB_PX`], outlines
/// the mask on both and encodes them as JPEG `data:` URIs.
pub fn tile_pictures(row: &ScoreRow, overlay: Option<&Path>) -> Result<TilePictures> {
    let image = thumbnail(&decode(&row.path)?);
    let (w, h) = image.dimensions();
    let outline = match &row.mask {
        Some(mask) => Some(contour(&decode(mask)?.resize_exact(
            w,
            h,
            FilterType::Nearest,
        ))),
        None => None,
    };
    let finish = |mut picture: RgbImage| -> Result<String> {
        if let Some(outline) = &outline {
            for (i, &on) in outline.iter().enumerate() {
                if on {
                    picture.put_pixel(i as u32 % w, i as u32 / w, CONTOUR);
                }
            }
        }
        jpeg_data_uri(&picture, &row.path)
    };
    let overlay = match overlay {
        Some(path) => Some(finish(
            decode(path)?
                .resize_exact(w, h, FilterType::Triangle)
                .to_rgb8(),
        )?),
        None => None,
    };
    Ok(TilePictures {
        image: finish(image)?,
        overlay,
    })
}

/// `image` as RGB with its long side at most [`THUMB_PX`].
fn thumbnail(image: &DynamicImage) -> RgbImage {
    if image.width().max(image.height()) <= THUMB_PX {
        return image.to_rgb8();
    }
    image
        .resize(THUMB_PX, THUMB_PX, FilterType::Triangle)
        .to_rgb8()
}

/// Outline of a mask (foreground above half its maximum): foreground pixels with a background
/// 4-neighbour or on the border, thickened by one pixel to the right and down.
fn contour(mask: &DynamicImage) -> Vec<bool> {
    let m = to_mask(mask);
    let (w, h) = (m.width, m.height);
    let fg = |x: isize, y: isize| {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < h
            && m.data[y as usize * w + x as usize]
    };
    let mut edge = vec![false; w * h];
    for y in 0..h as isize {
        for x in 0..w as isize {
            if fg(x, y) && !(fg(x - 1, y) && fg(x + 1, y) && fg(x, y - 1) && fg(x, y + 1)) {
                for (dx, dy) in [(0, 0), (1, 0), (0, 1)] {
                    let (a, b) = ((x + dx) as usize, (y + dy) as usize);
                    if a < w && b < h {
                        edge[b * w + a] = true;
                    }
                }
            }
        }
    }
    edge
}

/// A JPEG (quality 85) `data:` URI of `picture`; `source` names the image in errors.
fn jpeg_data_uri(picture: &RgbImage, source: &Path) -> Result<String> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut Cursor::new(&mut bytes), 85)
        .encode_image(picture)
        .map_err(|e| Error::file(source, format!("cannot encode its gallery picture: {e}")))?;
    Ok(format!(
        "data:image/jpeg;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn row(label: u8, score: f64, predicted: u8) -> ScoreRow {
        ScoreRow {
            path: PathBuf::from(format!("{score}.png")),
            defect: if label == 0 { "good" } else { "cut" }.into(),
            label,
            score,
            predicted,
            mask: None,
        }
    }

    #[test]
    fn misclassified_images_come_first_then_the_highest_and_lowest_of_the_rest() {
        let rows = [
            row(0, 0.1, 0),
            row(0, 0.2, 0),
            row(0, 0.9, 1),  // false positive
            row(1, 0.15, 0), // false negative, most confident
            row(1, 0.3, 0),  // false negative
            row(1, 0.8, 1),
            row(1, 0.95, 1),
            row(0, 0.85, 1), // false positive, lower
        ];
        let limits = GalleryLimits {
            false_negatives: 5,
            false_positives: 5,
            highest: 1,
            lowest: 1,
        };
        assert_eq!(
            select(&rows, limits),
            [
                (3, Pick::FalseNegative),
                (4, Pick::FalseNegative),
                (2, Pick::FalsePositive),
                (7, Pick::FalsePositive),
                (6, Pick::Highest),
                (0, Pick::Lowest),
            ]
        );
        // Limits cap each kind; nothing is shown twice even when the rest is short.
        let limits = GalleryLimits {
            false_negatives: 1,
            false_positives: 0,
            highest: 10,
            lowest: 10,
        };
        let picked = select(&rows, limits);
        assert_eq!(picked[0], (3, Pick::FalseNegative));
        assert_eq!(picked.len(), rows.len());
        let mut seen: Vec<usize> = picked.iter().map(|p| p.0).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), rows.len());
    }

    #[test]
    fn the_outline_is_the_border_of_the_mask() {
        let mut mask = image::GrayImage::new(6, 6);
        for y in 1..5 {
            for x in 1..5 {
                mask.put_pixel(x, y, image::Luma([255]));
            }
        }
        let edge = contour(&DynamicImage::ImageLuma8(mask));
        // The interior (2..4 square) is not outlined except where thickening reaches.
        assert!(edge[6 + 1] && edge[6 * 4 + 4]);
        assert!(!edge[0] && !edge[6 * 3 + 3]);
    }

    #[test]
    fn tiles_are_embedded_jpegs_with_the_defect_outlined() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("a.png");
        let mask = dir.path().join("a_mask.png");
        image::RgbImage::from_pixel(480, 320, Rgb([40, 40, 40]))
            .save(&img)
            .unwrap();
        let mut m = image::GrayImage::new(480, 320);
        for y in 100..200 {
            for x in 100..300 {
                m.put_pixel(x, y, image::Luma([255]));
            }
        }
        m.save(&mask).unwrap();
        let r = ScoreRow {
            path: img.clone(),
            mask: Some(mask),
            ..row(1, 1.0, 1)
        };
        let t = tile_pictures(&r, Some(&img)).unwrap();
        let b64 = t.image.strip_prefix("data:image/jpeg;base64,").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        let thumb = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(thumb.dimensions(), (240, 160));
        // The outline is green on the dark image (JPEG keeps it roughly).
        let p = thumb.get_pixel(50, 75);
        assert!(p[1] > 150 && p[0] < 120, "{p:?}");
        assert!(t.overlay.is_some());
        let missing = ScoreRow {
            path: dir.path().join("gone.png"),
            ..row(0, 0.0, 0)
        };
        let err = tile_pictures(&missing, None).unwrap_err().to_string();
        assert!(err.contains("gone.png"), "{err}");
    }
}

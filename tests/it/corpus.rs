//! A bad-input corpus generated here (never downloaded): empty, foreign, truncated, bit-flipped
//! and oversized images, odd formats and shapes. Every file must be scored or refused with a
//! message naming it — no panic, no hang — by `predict --skip-unreadable` and by `data check`.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageFormat, RgbImage};

use crate::common::{fixture, predict, Cmd};

/// A valid RGB image encoded as `format`.
fn encoded(format: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(48, 40, |x, y| {
        image::Rgb([(x * 5) as u8, (y * 6) as u8, 90])
    });
    let mut bytes = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(img)
        .write_to(&mut bytes, format)
        .unwrap();
    bytes.into_inner()
}

/// Writes the corpus into `dir`; returns the files (a folder named like an image included).
fn write_corpus(dir: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(dir).unwrap();
    let png = encoded(ImageFormat::Png);
    let jpg = encoded(ImageFormat::Jpeg);
    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("empty.png".into(), Vec::new()),
        ("text.png".into(), b"not an image at all".to_vec()),
        ("png-as.jpg".into(), png.clone()),
        ("signature-only.png".into(), png[..8].to_vec()),
        ("random-after-signature.png".into(), {
            let mut b = png[..8].to_vec();
            b.extend((0..400u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
            b
        }),
    ];
    for cut in [16, 33, 60, png.len() / 2, png.len() - 20] {
        files.push((format!("png-cut-{cut}.png"), png[..cut].to_vec()));
    }
    for cut in [2, 100, jpg.len() / 3, jpg.len() - 2] {
        files.push((format!("jpg-cut-{cut}.jpg"), jpg[..cut].to_vec()));
    }
    for (i, pos) in [20, 45, png.len() / 3, png.len() / 2, png.len() - 10]
        .into_iter()
        .enumerate()
    {
        let mut b = png.clone();
        b[pos] ^= 0x5A;
        files.push((format!("png-flip-{i}.png"), b));
    }
    // A header claiming 100 000 x 100 000 pixels (a decompression bomb): IHDR rewritten.
    let mut bomb = png.clone();
    bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    files.push(("bomb.png".into(), bomb));
    for (name, bytes) in &files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    // Valid but odd: 1x1, a 1-px-high strip, 16-bit gray, gray + alpha, RGBA.
    RgbImage::new(1, 1).save(dir.join("one-pixel.png")).unwrap();
    RgbImage::new(300, 1).save(dir.join("strip.png")).unwrap();
    DynamicImage::ImageLuma16(image::ImageBuffer::from_pixel(
        32,
        32,
        image::Luma([40000u16]),
    ))
    .save(dir.join("gray16.png"))
    .unwrap();
    DynamicImage::ImageLumaA8(image::ImageBuffer::from_pixel(
        32,
        32,
        image::LumaA([9, 200]),
    ))
    .save(dir.join("gray-alpha.png"))
    .unwrap();
    DynamicImage::ImageRgba8(image::ImageBuffer::from_pixel(
        32,
        32,
        image::Rgba([9, 9, 9, 0]),
    ))
    .save(dir.join("rgba.png"))
    .unwrap();
    std::fs::create_dir_all(dir.join("folder.png")).unwrap();
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    all.sort();
    all
}

#[test]
fn every_file_of_the_bad_input_corpus_is_scored_or_named_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    let files = write_corpus(&corpus);
    let images: Vec<&PathBuf> = files.iter().filter(|p| p.is_file()).collect();
    println!("bad-input corpus: {} files", images.len());
    assert!(images.len() >= 25);

    let model = fixture().join("ens/member-1");
    let cmd = predict(&model).args(images.iter().map(|p| p.as_os_str()));
    let output = cmd.arg("--skip-unreadable").run();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(2), "{stdout}{stderr}");
    let (mut scored, mut skipped) = (0, 0);
    for image in &images {
        let name = image.to_str().unwrap();
        let in_out = stdout.lines().any(|l| l.starts_with(name));
        let in_err = stderr.contains(name);
        assert!(
            in_out != in_err,
            "{name}: scored {in_out}, named as skipped {in_err}"
        );
        scored += usize::from(in_out);
        skipped += usize::from(in_err);
        if in_out {
            println!("scored: {}", image.file_name().unwrap().to_string_lossy());
        }
    }
    println!("predict --skip-unreadable: {scored} scored, {skipped} named and skipped");
    assert!(
        skipped >= 15 && scored >= 3,
        "{scored} scored, {skipped} skipped:\n{stdout}"
    );
    assert!(stderr.contains(&format!("{skipped} of {} file(s) skipped", images.len())));
    // The bomb is refused by its header, before any allocation.
    assert!(stderr.contains("bomb.png"), "{stderr}");

    // Without the flag: exit 1 naming the first bad file, still no panic.
    let all = predict(&model)
        .args(images.iter().map(|p| p.as_os_str()))
        .fails_with("corpus");
    assert!(!all.contains("panicked"), "{all}");

    // data check over the corpus as a folder data set: every unreadable file is an error
    // naming it.
    let out = Cmd::new(["data", "check", "--normal"]).arg(&corpus).run();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(!all.contains("panicked"), "{all}");
    for name in [
        "empty.png",
        "text.png",
        "bomb.png",
        "png-cut-16.png",
        "jpg-cut-2.jpg",
    ] {
        assert!(all.contains(name), "{name} not named:\n{all}");
    }
}

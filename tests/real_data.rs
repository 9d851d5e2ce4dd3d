//! Checks on the real MVTec AD `bottle` category. They are ignored by a plain `cargo test` (the
//! data is not in the repository: licence and size) and run by `.ci/run` with `--ignored`, which
//! fails loudly when the data is absent. `RECONAD_MVTEC_ROOT` overrides where the data set is.

use std::path::PathBuf;

use reconad::data::check::{check_dataset, CheckOptions};
use reconad::data::image_io::ChannelMode;
use reconad::data::mvtec::open_category;
use reconad::data::split::Split;

fn bottle() -> PathBuf {
    let root = std::env::var_os("RECONAD_MVTEC_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/data/mvtec_ad"
            ))
        });
    let dir = root.join("bottle");
    assert!(
        dir.join("train/good").is_dir(),
        "REAL DATA MISSING: {} is not an MVTec AD category; put the bottle category there or set RECONAD_MVTEC_ROOT",
        dir.display()
    );
    dir
}

#[test]
#[ignore = "needs the real MVTec AD bottle category; run by .ci/run"]
fn bottle_check_reports_the_known_counts() {
    let ds = open_category(&bottle()).unwrap();
    let report = check_dataset(
        &ds,
        &CheckOptions {
            val_fraction: 0.1,
            seed: 42,
            channels: ChannelMode::Auto,
        },
    );
    println!("{}", report.to_text());
    assert!(report.findings.is_empty(), "{}", report.to_text());
    let count = |part: &str, defect: &str| {
        report
            .groups
            .iter()
            .find(|g| g.part.to_string() == part && g.defect == defect)
            .map(|g| (g.images, g.masks))
    };
    assert_eq!(count("train", "good"), Some((209, 0)));
    assert_eq!(count("test", "good"), Some((20, 0)));
    assert_eq!(count("test", "broken_large"), Some((20, 20)));
    assert_eq!(count("test", "broken_small"), Some((22, 22)));
    assert_eq!(count("test", "contamination"), Some((21, 21)));
    assert_eq!((report.defect_images, report.masks), (63, 63));
    assert_eq!(report.sizes.get("900x900"), Some(&(209 + 20 + 63)));
    assert_eq!(report.sizes.len(), 1);
    assert_eq!(report.model_channels, 3);
    let split = report.split.unwrap();
    assert_eq!((split.train, split.val), (188, 21));
    // 10 % and 15 % splits, by image, no overlap.
    let s15 = Split::new(&ds, 0.15, 42).unwrap();
    assert_eq!((s15.train.len(), s15.val.len()), (178, 31));
}

//! `reconad data check`: decodes every image and mask of a data set once and reports counts,
//! sizes, channel counts, the train/val split and every problem found, each naming its file.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use super::image_io::{self, ChannelMode, ImageInfo};
use super::split::Split;
use super::{Dataset, Finding, Item, Part, Severity};
use crate::error::Error;

/// Settings of a check.
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    /// Validation share used to report the train/val split sizes.
    pub val_fraction: f64,
    /// Seed of that split.
    pub seed: u64,
    /// Channel policy used to report the model's channel count.
    pub channels: ChannelMode,
}

/// Image and mask counts of one (part, defect) group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupCount {
    /// `train` or `test`.
    pub part: Part,
    /// Defect type (`good` for normal images).
    pub defect: String,
    /// Number of images.
    pub images: usize,
    /// Number of images that have a mask.
    pub masks: usize,
}

/// The train/val split sizes a run would use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitSizes {
    /// Seed of the split.
    pub seed: u64,
    /// Validation share.
    pub val_fraction: f64,
    /// Images trained on.
    pub train: usize,
    /// Images held out for validation.
    pub val: usize,
}

/// What a check found in one data set.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// Data set (category) name.
    pub name: String,
    /// Its root folder.
    pub root: PathBuf,
    /// Counts per part and defect type, train first.
    pub groups: Vec<GroupCount>,
    /// Number of test images with a defect.
    pub defect_images: usize,
    /// Number of masks matched to a defect image.
    pub masks: usize,
    /// Image sizes `WxH` and how many images have each.
    pub sizes: BTreeMap<String, usize>,
    /// Colour channel counts of the images (1 gray, 3 RGB) and how many images have each.
    pub image_channels: BTreeMap<u8, usize>,
    /// Bits per channel and how many images have each.
    pub bit_depths: BTreeMap<u8, usize>,
    /// Channels the model would use for this category.
    pub model_channels: usize,
    /// The train/val split a run with these settings would use (absent if it cannot be made).
    pub split: Option<SplitSizes>,
    /// Files skipped because they are not images.
    pub ignored: Vec<PathBuf>,
    /// Every problem found, errors first.
    pub findings: Vec<Finding>,
}

impl CheckReport {
    /// Number of error findings.
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    /// Whether the data set can be used as it is (no errors; warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.errors() == 0
    }

    /// A human-readable summary.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "data set {} ({})", self.name, self.root.display());
        let _ = writeln!(
            s,
            "  {:<6} {:<24} {:>7} {:>6}",
            "part", "defect", "images", "masks"
        );
        for g in &self.groups {
            let masks = if g.part == Part::Test && g.defect != "good" {
                g.masks.to_string()
            } else {
                "-".into()
            };
            let _ = writeln!(
                s,
                "  {:<6} {:<24} {:>7} {:>6}",
                g.part, g.defect, g.images, masks
            );
        }
        let _ = writeln!(
            s,
            "  test defect images: {}, masks: {}",
            self.defect_images, self.masks
        );
        let sizes: Vec<String> = self
            .sizes
            .iter()
            .map(|(k, n)| format!("{k} ({n})"))
            .collect();
        let _ = writeln!(s, "  image sizes: {}", sizes.join(", "));
        let chans: Vec<String> = self
            .image_channels
            .iter()
            .map(|(c, n)| format!("{c} ({n})"))
            .collect();
        let depths: Vec<String> = self
            .bit_depths
            .iter()
            .map(|(d, n)| format!("{d}-bit ({n})"))
            .collect();
        let _ = writeln!(
            s,
            "  image channels: {}; bit depth: {}; model channels: {}",
            chans.join(", "),
            depths.join(", "),
            self.model_channels
        );
        match &self.split {
            Some(sp) => {
                let _ = writeln!(
                    s,
                    "  train/val split (seed {}, val {:.0}%): {} train, {} val",
                    sp.seed,
                    sp.val_fraction * 100.0,
                    sp.train,
                    sp.val
                );
            }
            None => {
                let _ = writeln!(s, "  train/val split: not possible (see problems)");
            }
        }
        if !self.ignored.is_empty() {
            let names: Vec<String> = self
                .ignored
                .iter()
                .take(5)
                .map(|p| p.display().to_string())
                .collect();
            let more = self.ignored.len().saturating_sub(5);
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "  ignored {} non-image file(s): {}{tail}",
                self.ignored.len(),
                names.join(", ")
            );
        }
        if self.findings.is_empty() {
            let _ = writeln!(s, "  problems: none");
        } else {
            let warnings = self.findings.len() - self.errors();
            let _ = writeln!(
                s,
                "  problems: {} error(s), {} warning(s)",
                self.errors(),
                warnings
            );
            for f in &self.findings {
                let _ = writeln!(s, "    {f}");
            }
        }
        s
    }
}

/// What decoding one item found.
struct Decoded {
    info: Option<ImageInfo>,
    findings: Vec<Finding>,
}

/// Decodes an item's image and mask, checking the mask's size against the image.
fn check_item(item: &Item) -> Decoded {
    let mut findings = Vec::new();
    let info = match image_io::decode(&item.path).and_then(|img| ImageInfo::of(&item.path, &img)) {
        Ok(info) => Some(info),
        Err(e) => {
            findings.push(Finding::error(
                &item.path,
                strip_path(&e.to_string(), &item.path),
            ));
            None
        }
    };
    if let Some(mask_path) = &item.mask {
        match image_io::decode(mask_path) {
            Ok(mask) => {
                if let Some(info) = info {
                    if let Err(e) = image_io::check_mask_size(
                        mask_path,
                        &item.path,
                        (mask.width(), mask.height()),
                        (info.width, info.height),
                    ) {
                        findings.push(Finding::error(
                            mask_path,
                            strip_path(&e.to_string(), mask_path),
                        ));
                    }
                }
                let (max, between) = image_io::mask_levels(&mask);
                if max == 0 {
                    findings.push(Finding::warning(
                        mask_path,
                        "mask is empty (no pixel > 0) although its image is an anomaly",
                    ));
                } else if between > 0 {
                    let share = 100.0 * between as f64 / (mask.width() * mask.height()) as f64;
                    findings.push(Finding::warning(
                        mask_path,
                        format!(
                            "mask is not binary: {between} pixel(s) ({share:.1} %) lie strictly between 0 and its maximum {max}; pixels above {} count as defect",
                            max / 2
                        ),
                    ));
                }
            }
            Err(e) => findings.push(Finding::error(
                mask_path,
                strip_path(&e.to_string(), mask_path),
            )),
        }
    }
    Decoded { info, findings }
}

/// Error messages start with the path; findings carry the path separately.
fn strip_path(message: &str, path: &std::path::Path) -> String {
    let prefix = format!("{}: ", path.display());
    message.strip_prefix(&prefix).unwrap_or(message).to_string()
}

/// Checks a discovered data set: decodes every image and mask (in parallel) and gathers counts,
/// sizes, channel counts and problems.
pub fn check_dataset(dataset: &Dataset, options: &CheckOptions) -> CheckReport {
    let items: Vec<&Item> = dataset.items().collect();
    let decoded: Vec<Decoded> = items.par_iter().map(|item| check_item(item)).collect();

    let mut findings = dataset.findings.clone();
    let mut sizes = BTreeMap::new();
    let mut image_channels = BTreeMap::new();
    let mut bit_depths = BTreeMap::new();
    let mut train_channels = Vec::new();
    for (item, d) in items.iter().zip(&decoded) {
        findings.extend(d.findings.iter().cloned());
        if let Some(info) = d.info {
            *sizes
                .entry(format!("{}x{}", info.width, info.height))
                .or_insert(0) += 1;
            *image_channels.entry(info.channels).or_insert(0) += 1;
            *bit_depths.entry(info.bit_depth).or_insert(0) += 1;
            if item.part == Part::Train {
                train_channels.push(info.channels);
            }
        }
    }
    if sizes.len() > 1 {
        let listed: Vec<String> = sizes.iter().map(|(k, n)| format!("{k} ({n})")).collect();
        findings.push(Finding::warning(
            &dataset.root,
            format!(
                "mixed image sizes: {}; images are resized to the working resolution",
                listed.join(", ")
            ),
        ));
    }
    let gray = image_channels.get(&1).copied().unwrap_or(0);
    let colour = image_channels.values().sum::<usize>() - gray;
    if let Some(why) = options.channels.mixed(gray, colour) {
        findings.push(Finding::error(&dataset.root, why));
    } else if gray > 0 && colour > 0 {
        findings.push(Finding::warning(
            &dataset.root,
            format!(
                "mixed gray and colour images ({gray} gray, {colour} colour): all converted to {} channel(s)",
                options.channels.resolve(train_channels.iter().copied())
            ),
        ));
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.path.cmp(&b.path))
    });

    let mut groups: Vec<GroupCount> = Vec::new();
    for item in &items {
        match groups
            .iter_mut()
            .find(|g| g.part == item.part && g.defect == item.defect)
        {
            Some(g) => {
                g.images += 1;
                g.masks += usize::from(item.mask.is_some());
            }
            None => groups.push(GroupCount {
                part: item.part,
                defect: item.defect.clone(),
                images: 1,
                masks: usize::from(item.mask.is_some()),
            }),
        }
    }
    let defect_images = dataset.defects().count();
    let masks = dataset.defects().filter(|i| i.mask.is_some()).count();
    let split = match Split::new(dataset, options.val_fraction, options.seed) {
        Ok(sp) => Some(SplitSizes {
            seed: options.seed,
            val_fraction: options.val_fraction,
            train: sp.train.len(),
            val: sp.val.len(),
        }),
        Err(Error::File { path, problem }) => {
            findings.push(Finding::error(&path, problem));
            None
        }
        Err(e) => {
            findings.push(Finding::error(&dataset.root, e.to_string()));
            None
        }
    };
    CheckReport {
        name: dataset.name.clone(),
        root: dataset.root.clone(),
        groups,
        defect_images,
        masks,
        sizes,
        image_channels,
        bit_depths,
        model_channels: options.channels.resolve(train_channels),
        split,
        ignored: dataset.ignored.clone(),
        findings,
    }
}

//! File names of per-image outputs: one heat map per input image in one folder, without two
//! inputs ever sharing an output name.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::data::stem;

/// Where `eval --heatmaps` puts the heat map of `image` (of defect type `defect`) below `dir`:
/// `dir/<defect>/<stem>.png`.
pub fn heatmap_path(dir: &Path, defect: &str, image: &Path) -> PathBuf {
    dir.join(defect).join(format!("{}.png", stem(image)))
}

/// Heat-map file names for `files`: `<stem>.png`, `<parent>_<stem>.png` where stems repeat, and
/// a numeric suffix (`-2`, `-3`, …) if that still repeats.
pub fn heatmap_names(files: &[PathBuf]) -> Vec<String> {
    let mut stems = HashMap::<String, usize>::new();
    for f in files {
        *stems.entry(stem(f)).or_default() += 1;
    }
    let mut used = HashSet::new();
    files
        .iter()
        .map(|f| {
            let base = if stems[&stem(f)] > 1 {
                let parent = f
                    .parent()
                    .and_then(|p| p.file_name())
                    .map_or("".into(), |n| n.to_string_lossy().into_owned());
                format!("{parent}_{}", stem(f))
            } else {
                stem(f)
            };
            let mut name = format!("{base}.png");
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}-{n}.png");
                n += 1;
            }
            name
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_map_names_are_stems_made_unique_by_folder_then_by_number() {
        let files: Vec<PathBuf> = [
            "a/good/000.png",
            "a/crack/000.png",
            "a/crack/001.jpg",
            "b/crack/000.png",
            "c/x.png",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(
            heatmap_names(&files),
            [
                "good_000.png",
                "crack_000.png",
                "001.png",
                "crack_000-2.png",
                "x.png"
            ]
        );
        // The same stem in different formats still gets distinct names.
        let files = [PathBuf::from("d/y.png"), PathBuf::from("d/y.jpg")];
        assert_eq!(heatmap_names(&files), ["d_y.png", "d_y-2.png"]);
    }
}

//! Reading an evaluation folder back (what `reconad eval` writes): the headline numbers of
//! `metrics.json`, the rows of `scores.csv`, and where each image's heat map is. The report and
//! the benchmark summary are built from these files only, so they work on any evaluation folder,
//! old or new.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::metrics::F1Max;

/// The parts of `metrics.json` the summary and the report show.
#[derive(Debug, Clone, Deserialize)]
pub struct EvalRecord {
    /// Data set name.
    pub dataset: String,
    /// Model directory (a run or an ensemble folder).
    pub model: PathBuf,
    /// Image AUROC.
    pub image_auroc: Option<f64>,
    /// Pixel AUROC.
    #[serde(default)]
    pub pixel_auroc: Option<f64>,
    /// AUPRO up to FPR 0.3.
    #[serde(default)]
    pub aupro: Option<f64>,
    /// Best F1 over all thresholds (an oracle that uses test labels).
    #[serde(default)]
    pub f1_max: Option<F1Max>,
    /// Threshold of the predicted labels.
    pub threshold: f64,
    /// Where the threshold came from.
    #[serde(default)]
    pub threshold_source: String,
    /// F1, precision and recall at the threshold.
    pub at_threshold: F1Max,
    /// The scoring used, as written (shown as is).
    #[serde(default)]
    pub scoring: serde_json::Value,
    /// Wall time of the evaluation, seconds.
    #[serde(default)]
    pub seconds: f64,
    /// Test images scored per second.
    #[serde(default)]
    pub images_per_second: f64,
}

/// One row of `scores.csv`.
#[derive(Debug, Clone, Deserialize)]
pub struct ScoreRow {
    /// Image file.
    pub path: PathBuf,
    /// Defect type (`good` for normal images).
    pub defect: String,
    /// Ground truth: 0 normal, 1 anomaly.
    pub label: u8,
    /// Image score.
    pub score: f64,
    /// Predicted label at the threshold.
    pub predicted: u8,
    /// Ground-truth mask (absent in files written before the column existed).
    #[serde(default, deserialize_with = "empty_is_none")]
    pub mask: Option<PathBuf>,
}

fn empty_is_none<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<PathBuf>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    Ok(s.filter(|s| !s.is_empty()).map(PathBuf::from))
}

/// An evaluation folder, read.
#[derive(Debug, Clone)]
pub struct EvalDir {
    /// The folder.
    pub dir: PathBuf,
    /// `metrics.json`.
    pub metrics: EvalRecord,
    /// `scores.csv`, in file order.
    pub rows: Vec<ScoreRow>,
}

impl EvalDir {
    /// Reads `dir/metrics.json` and `dir/scores.csv`; errors name the file and the problem.
    pub fn read(dir: &Path) -> Result<Self> {
        let metrics_path = dir.join("metrics.json");
        let text = std::fs::read_to_string(&metrics_path).map_err(|e| {
            Error::file(
                &metrics_path,
                format!(
                    "cannot read ({e}); is {} an evaluation folder (reconad eval --out)?",
                    dir.display()
                ),
            )
        })?;
        let metrics: EvalRecord = serde_json::from_str(&text).map_err(|e| {
            Error::file(
                &metrics_path,
                format!("not an evaluation's metrics.json: {e}"),
            )
        })?;
        let scores_path = dir.join("scores.csv");
        let mut reader = csv::Reader::from_path(&scores_path)
            .map_err(|e| Error::file(&scores_path, format!("cannot read: {e}")))?;
        let rows = reader
            .deserialize()
            .collect::<std::result::Result<Vec<ScoreRow>, _>>()
            .map_err(|e| {
                Error::file(&scores_path, format!("not an evaluation's scores.csv: {e}"))
            })?;
        if rows.is_empty() {
            return Err(Error::file(&scores_path, "holds no scored image"));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            metrics,
            rows,
        })
    }

    /// The heat-map overlay `eval --heatmaps` wrote for `row`, if it is there.
    pub fn heatmap(&self, row: &ScoreRow) -> Option<PathBuf> {
        let path = super::names::heatmap_path(&self.dir.join("heatmaps"), &row.defect, &row.path);
        path.is_file().then_some(path)
    }

    /// Scores and 0/1 labels, in row order.
    pub fn scores_and_labels(&self) -> (Vec<f64>, Vec<u8>) {
        self.rows.iter().map(|r| (r.score, r.label)).unzip()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_scores_with_and_without_the_mask_column() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("metrics.json"),
            r#"{"dataset":"d","model":"m","image_auroc":0.5,"threshold":1.0,
                "at_threshold":{"f1":0.5,"threshold":1.0,"precision":0.5,"recall":0.5}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("scores.csv"),
            "path,defect,label,score,predicted,mask\na/good/0.png,good,0,0.1,0,\na/cut/1.png,cut,1,2.0,1,gt/cut/1_mask.png\n",
        )
        .unwrap();
        let e = EvalDir::read(dir.path()).unwrap();
        assert_eq!(e.rows.len(), 2);
        assert_eq!(e.rows[0].mask, None);
        assert_eq!(e.rows[1].mask, Some(PathBuf::from("gt/cut/1_mask.png")));
        assert_eq!(e.scores_and_labels(), (vec![0.1, 2.0], vec![0, 1]));
        std::fs::write(
            dir.path().join("scores.csv"),
            "path,defect,label,score,predicted\na/good/0.png,good,0,0.1,0\n",
        )
        .unwrap();
        assert_eq!(EvalDir::read(dir.path()).unwrap().rows[0].mask, None);
        std::fs::remove_file(dir.path().join("metrics.json")).unwrap();
        let err = EvalDir::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("metrics.json"), "{err}");
    }
}

//! The benchmark's summary table: one row per category (image AUROC, pixel AUROC, AUPRO, F1 at
//! the calibrated threshold, F1-max, train and score time, images/s) and their mean, written as
//! `summary.csv` (for machines) and `summary.md` (for people).

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::eval_dir::EvalRecord;
use crate::error::{Error, Result};
use crate::util::fs::write_atomic;

/// One category of the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    /// Category (data set) name.
    pub category: String,
    /// Test image AUROC.
    pub image_auroc: Option<f64>,
    /// Test pixel AUROC.
    pub pixel_auroc: Option<f64>,
    /// Test AUPRO up to FPR 0.3.
    pub aupro: Option<f64>,
    /// F1 at the threshold calibrated on validation data (no test labels).
    pub f1_at_threshold: f64,
    /// Best F1 over all thresholds (an oracle: uses test labels).
    pub f1_max: Option<f64>,
    /// Training wall time over all its sessions, seconds (when known).
    pub train_seconds: Option<f64>,
    /// Evaluation wall time (decode, scoring, metrics, heat maps), seconds.
    pub score_seconds: f64,
    /// Test images evaluated per second.
    pub images_per_second: f64,
}

impl SummaryRow {
    /// The row of a category from its evaluation and its training time.
    pub fn new(category: &str, metrics: &EvalRecord, train_seconds: Option<f64>) -> Self {
        Self {
            category: category.to_string(),
            image_auroc: metrics.image_auroc,
            pixel_auroc: metrics.pixel_auroc,
            aupro: metrics.aupro,
            f1_at_threshold: metrics.at_threshold.f1,
            f1_max: metrics.f1_max.map(|f| f.f1),
            train_seconds,
            score_seconds: metrics.seconds,
            images_per_second: metrics.images_per_second,
        }
    }
}

/// The mean of each column over the rows that have it (`None` when none has).
pub fn mean_row(rows: &[SummaryRow]) -> SummaryRow {
    fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
        let v: Vec<f64> = values.flatten().collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }
    let n = rows.len().max(1) as f64;
    SummaryRow {
        category: "mean".into(),
        image_auroc: mean(rows.iter().map(|r| r.image_auroc)),
        pixel_auroc: mean(rows.iter().map(|r| r.pixel_auroc)),
        aupro: mean(rows.iter().map(|r| r.aupro)),
        f1_at_threshold: rows.iter().map(|r| r.f1_at_threshold).sum::<f64>() / n,
        f1_max: mean(rows.iter().map(|r| r.f1_max)),
        train_seconds: mean(rows.iter().map(|r| r.train_seconds)),
        score_seconds: rows.iter().map(|r| r.score_seconds).sum::<f64>() / n,
        images_per_second: rows.iter().map(|r| r.images_per_second).sum::<f64>() / n,
    }
}

/// Column headers, in the order of [`cells`].
pub const COLUMNS: [&str; 9] = [
    "category",
    "image AUROC",
    "pixel AUROC",
    "AUPRO",
    "F1 @ threshold",
    "F1-max",
    "train s",
    "score s",
    "images/s",
];

/// A row's cells as text (4 decimals for metrics, `-` where there is none).
pub fn cells(r: &SummaryRow) -> [String; 9] {
    let f = |v: Option<f64>| v.map_or("-".into(), |a| format!("{a:.4}"));
    [
        r.category.clone(),
        f(r.image_auroc),
        f(r.pixel_auroc),
        f(r.aupro),
        format!("{:.4}", r.f1_at_threshold),
        f(r.f1_max),
        r.train_seconds.map_or("-".into(), |t| format!("{t:.1}")),
        format!("{:.1}", r.score_seconds),
        format!("{:.2}", r.images_per_second),
    ]
}

/// The summary as a Markdown table, the mean last.
pub fn markdown(rows: &[SummaryRow]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| {} |", COLUMNS.join(" | "));
    let _ = writeln!(
        s,
        "|{}",
        COLUMNS
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for r in rows {
        let _ = writeln!(s, "| {} |", cells(r).join(" | "));
    }
    let mean = cells(&mean_row(rows)).map(|v| format!("**{v}**"));
    let _ = writeln!(s, "| {} |", mean.join(" | "));
    s
}

/// Writes `dir/summary.csv` (rows then the mean) and `dir/summary.md` (a heading, `preamble`
/// lines, the table), atomically.
pub fn write_summary(dir: &Path, rows: &[SummaryRow], preamble: &str) -> Result<()> {
    let csv_path = dir.join("summary.csv");
    let csv_error = |e: csv::Error| Error::file(&csv_path, e.to_string());
    let mut w = csv::Writer::from_writer(Vec::new());
    let mean = mean_row(rows);
    for r in rows.iter().chain(std::iter::once(&mean)) {
        w.serialize(r).map_err(csv_error)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::file(&csv_path, e.to_string()))?;
    write_atomic(&csv_path, &bytes)?;
    let md = format!("# reconad benchmark\n\n{preamble}\n\n{}", markdown(rows));
    write_atomic(&dir.join("summary.md"), md.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, image: Option<f64>, f1: f64, train: f64) -> SummaryRow {
        SummaryRow {
            category: name.into(),
            image_auroc: image,
            pixel_auroc: None,
            aupro: None,
            f1_at_threshold: f1,
            f1_max: Some(f1),
            train_seconds: Some(train),
            score_seconds: 1.0,
            images_per_second: 2.0,
        }
    }

    #[test]
    fn the_mean_row_averages_each_column_over_the_rows_that_have_it() {
        let rows = [row("a", Some(0.9), 0.5, 10.0), row("b", None, 1.0, 30.0)];
        let m = mean_row(&rows);
        assert_eq!(m.image_auroc, Some(0.9));
        assert_eq!(m.pixel_auroc, None);
        assert!((m.f1_at_threshold - 0.75).abs() < 1e-12);
        assert!((m.train_seconds.unwrap() - 20.0).abs() < 1e-12);
        let md = markdown(&rows);
        assert!(md.contains("| a | 0.9000 | - | - | 0.5000 |"), "{md}");
        assert!(md.contains("| **mean** | **0.9000** |"), "{md}");
        let dir = tempfile::tempdir().unwrap();
        write_summary(dir.path(), &rows, "on a test").unwrap();
        let csv = std::fs::read_to_string(dir.path().join("summary.csv")).unwrap();
        assert_eq!(csv.lines().count(), 4, "{csv}");
        assert!(csv.starts_with("category,image_auroc,pixel_auroc,aupro,f1_at_threshold"));
        assert!(
            csv.lines().last().unwrap().starts_with("mean,0.9,,"),
            "{csv}"
        );
    }
}

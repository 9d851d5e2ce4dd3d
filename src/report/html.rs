//! The HTML report: one self-contained file (no network: plots are inline SVG, pictures are
//! embedded JPEGs) with the per-category table and its mean, then per category its ROC curve, the
//! histograms of normal and anomalous scores with the threshold, a heat-map gallery
//! (misclassified images first, see [`super::gallery`]) and the scoring profile, training
//! settings and environment of its model.

use std::fmt::Write as _;
use std::path::Path;

use super::eval_dir::EvalDir;
use super::gallery::{select, tile_pictures, GalleryLimits};
use super::plots::{roc_svg, score_histogram_svg};
use super::summary::{cells, mean_row, SummaryRow, COLUMNS};
use crate::error::Result;
use crate::util::fs::write_atomic;

/// One category of the report: its evaluation and what is known of its model.
#[derive(Debug, Clone)]
pub struct ReportEntry {
    /// The evaluation folder, read.
    pub eval: EvalDir,
    /// Training wall time, seconds, when known.
    pub train_seconds: Option<f64>,
    /// Model details shown folded: (heading, JSON or text).
    pub details: Vec<(String, String)>,
}

/// Report settings.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Page title.
    pub title: String,
    /// Gallery size per category.
    pub gallery: GalleryLimits,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            title: "reconad report".into(),
            gallery: GalleryLimits::default(),
        }
    }
}

/// What a rendered report holds (the checks of the rendered page compare with these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct ReportStats {
    /// Categories (sections).
    pub categories: usize,
    /// Plots (inline SVG).
    pub plots: usize,
    /// Gallery pictures (embedded images).
    pub gallery_images: usize,
    /// Gallery tiles whose pictures could not be made (their image or mask was unreadable).
    pub missing_pictures: usize,
}

/// `text` with the five HTML special characters escaped.
pub fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&#39;"),
            c => s.push(c),
        }
    }
    s
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1280px;color:#1d1d1f;padding:0 16px}
h1{font-size:26px;margin-bottom:4px}h2{margin-top:40px;border-bottom:2px solid #ddd;padding-bottom:4px}
table.summary{border-collapse:collapse;margin:12px 0}
table.summary th,table.summary td{padding:5px 10px;border-bottom:1px solid #ddd;text-align:right}
table.summary th:first-child,table.summary td:first-child{text-align:left}
table.summary tr.mean td{font-weight:bold;border-top:2px solid #999}
.plots{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0}
.gallery{display:flex;flex-wrap:wrap;gap:14px}
.tile{border:1px solid #ccc;border-radius:6px;padding:6px;background:#fafafa}
.tile .pics{display:flex;gap:4px}
.tile img{display:block;width:200px;height:auto}
.tile figcaption{font-size:12px;max-width:404px;margin-top:4px;word-break:break-all}
.tag{display:inline-block;padding:1px 6px;border-radius:4px;color:#fff;font-weight:bold}
.tag.fn,.tag.fp{background:#d62728}.tag.hi{background:#555}.tag.lo{background:#1f77b4}
pre{background:#f4f4f4;padding:8px;overflow:auto;max-height:420px;font-size:12px}
.note{color:#666;font-size:13px}
";

/// Renders the report of `entries` as one HTML page.
pub fn render(entries: &[ReportEntry], options: &ReportOptions) -> Result<(String, ReportStats)> {
    let mut stats = ReportStats {
        categories: entries.len(),
        ..ReportStats::default()
    };
    let mut body = String::new();
    let _ = writeln!(body, "<h1>{}</h1>", escape(&options.title));
    let _ = writeln!(
        body,
        "<p class=\"note\">Made by reconad {} from {} evaluation folder(s). Test metrics; the \
         threshold and every scoring choice were calibrated on validation data only. F1-max uses \
         the test labels (an oracle, shown for comparison).</p>",
        env!("CARGO_PKG_VERSION"),
        entries.len()
    );
    body += &summary_table(entries);
    for (n, entry) in entries.iter().enumerate() {
        body += &category_section(n, entry, options, &mut stats)?;
    }
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(&options.title)
    );
    Ok((page, stats))
}

/// Renders and writes the report to `path` (atomically).
pub fn write(path: &Path, entries: &[ReportEntry], options: &ReportOptions) -> Result<ReportStats> {
    let (page, stats) = render(entries, options)?;
    write_atomic(path, page.as_bytes())?;
    Ok(stats)
}

fn summary_table(entries: &[ReportEntry]) -> String {
    let rows: Vec<SummaryRow> = entries
        .iter()
        .map(|e| SummaryRow::new(&e.eval.metrics.dataset, &e.eval.metrics, e.train_seconds))
        .collect();
    let mut s = String::from("<table class=\"summary\" id=\"summary\">\n<tr>");
    for c in COLUMNS {
        let _ = write!(s, "<th>{}</th>", escape(c));
    }
    s += "</tr>\n";
    for (i, r) in rows.iter().enumerate() {
        let c = cells(r);
        let _ = write!(
            s,
            "<tr><td><a href=\"#category-{i}\">{}</a></td>",
            escape(&c[0])
        );
        for v in &c[1..] {
            let _ = write!(s, "<td>{}</td>", escape(v));
        }
        s += "</tr>\n";
    }
    s += "<tr class=\"mean\">";
    for v in cells(&mean_row(&rows)) {
        let _ = write!(s, "<td>{}</td>", escape(&v));
    }
    s += "</tr>\n</table>\n";
    s
}

fn category_section(
    n: usize,
    entry: &ReportEntry,
    options: &ReportOptions,
    stats: &mut ReportStats,
) -> Result<String> {
    let e = &entry.eval;
    let m = &e.metrics;
    let (scores, labels) = e.scores_and_labels();
    let mut s = format!(
        "<section class=\"category\" id=\"category-{n}\">\n<h2>{}</h2>\n",
        escape(&m.dataset)
    );
    let normal = labels.iter().filter(|&&l| l == 0).count();
    let _ = writeln!(
        s,
        "<p>{} test images ({normal} normal, {} anomalous). Model <code>{}</code>; evaluation <code>{}</code>. \
         Threshold {:.4} ({}): F1 {:.4}, precision {:.4}, recall {:.4}.</p>",
        labels.len(),
        labels.len() - normal,
        escape(&m.model.display().to_string()),
        escape(&e.dir.display().to_string()),
        m.threshold,
        escape(&m.threshold_source),
        m.at_threshold.f1,
        m.at_threshold.precision,
        m.at_threshold.recall
    );
    s += "<div class=\"plots\">\n";
    if let Some(svg) = roc_svg(&scores, &labels, m.image_auroc)? {
        let _ = writeln!(s, "<figure class=\"plot roc\">{svg}</figure>");
        stats.plots += 1;
    }
    let svg = score_histogram_svg(&scores, &labels, m.threshold)?;
    let _ = writeln!(s, "<figure class=\"plot histogram\">{svg}</figure>");
    stats.plots += 1;
    s += "</div>\n";
    s += &gallery(e, options.gallery, stats);
    for (heading, text) in &entry.details {
        let _ = writeln!(
            s,
            "<details><summary>{}</summary><pre>{}</pre></details>",
            escape(heading),
            escape(text)
        );
    }
    let scoring = serde_json::to_string_pretty(&m.scoring).unwrap_or_default();
    let _ = writeln!(
        s,
        "<details><summary>Scoring profile (metrics.json)</summary><pre>{}</pre></details>",
        escape(&scoring)
    );
    s += "</section>\n";
    Ok(s)
}

fn gallery(e: &EvalDir, limits: GalleryLimits, stats: &mut ReportStats) -> String {
    let picked = select(&e.rows, limits);
    let mut s = String::from("<h3>Heat maps</h3>\n");
    let heatmaps = e.dir.join("heatmaps").is_dir();
    if !heatmaps {
        s += "<p class=\"note\">This evaluation wrote no heat maps (run <code>reconad eval --heatmaps</code>); the images alone are shown.</p>\n";
    }
    s += "<p class=\"note\">Green outline: the ground-truth defect. Heat map colours are on a fixed scale: blue is the normal level, yellow-orange the threshold, dark red 1.5 × the threshold.</p>\n<div class=\"gallery\">\n";
    for (i, pick) in picked {
        let row = &e.rows[i];
        let caption = format!(
            "<span class=\"tag {}\">{}</span> {} · {} · score {:.4}",
            pick.css_class(),
            pick.label(),
            escape(&row.defect),
            escape(&row.path.display().to_string()),
            row.score
        );
        match tile_pictures(row, e.heatmap(row).as_deref()) {
            Ok(p) => {
                let _ = write!(
                    s,
                    "<figure class=\"tile\"><div class=\"pics\"><img class=\"picture\" src=\"{}\" alt=\"image\">",
                    p.image
                );
                stats.gallery_images += 1;
                if let Some(o) = p.overlay {
                    let _ = write!(s, "<img class=\"picture\" src=\"{o}\" alt=\"heat map\">");
                    stats.gallery_images += 1;
                }
                let _ = writeln!(s, "</div><figcaption>{caption}</figcaption></figure>");
            }
            Err(err) => {
                stats.missing_pictures += 1;
                let _ = writeln!(
                    s,
                    "<figure class=\"tile\"><figcaption>{caption}<br>picture unavailable: {}</figcaption></figure>",
                    escape(&err.to_string())
                );
            }
        }
    }
    s += "</div>\n";
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_the_special_characters() {
        assert_eq!(escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
    }
}

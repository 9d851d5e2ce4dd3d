//! The report's plots, as SVG text (plotters' SVG backend; text is left to the browser's fonts):
//! a ROC curve per category, and the histograms of normal and anomalous image scores with the
//! decision threshold drawn.

use plotters::prelude::*;

use crate::error::{fail, Result};
use crate::metrics::roc_curve;

/// Plot size in SVG pixels.
const WIDTH_PX: u32 = 420;
const HEIGHT_PX: u32 = 320;

/// Blue for normal images, red for anomalous ones (matplotlib's tab10).
const NORMAL: RGBColor = RGBColor(31, 119, 180);
const ANOMALOUS: RGBColor = RGBColor(214, 39, 40);

fn plot_error(what: &str) -> impl Fn(DrawingAreaErrorKind<std::io::Error>) -> crate::Error + '_ {
    move |e| crate::Error::Unusable(format!("cannot draw the {what}: {e}"))
}

/// The ROC curve of `scores` against `labels` (1 anomalous) with its AUROC in the legend, or
/// `None` when one class is absent.
pub fn roc_svg(scores: &[f64], labels: &[u8], auroc: Option<f64>) -> Result<Option<String>> {
    let Some(curve) = roc_curve(scores, labels) else {
        return Ok(None);
    };
    let err = plot_error("ROC curve");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("ROC curve (test images)", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..1f64, 0f64..1.02f64)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc("false-positive rate")
            .y_desc("true-positive rate")
            .x_labels(6)
            .y_labels(6)
            .light_line_style(WHITE)
            .draw()
            .map_err(&err)?;
        chart
            .draw_series(DashedLineSeries::new(
                [(0.0, 0.0), (1.0, 1.0)],
                5,
                5,
                BLACK.mix(0.4).stroke_width(1),
            ))
            .map_err(&err)?;
        let label = match auroc {
            Some(a) => format!("AUROC {a:.4}"),
            None => "ROC".into(),
        };
        chart
            .draw_series(LineSeries::new(curve, NORMAL.stroke_width(2)))
            .map_err(&err)?
            .label(label)
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], NORMAL.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(Some(svg))
}

/// Counts of `values` in `bins` equal-width bins over [lo, hi].
fn histogram(values: impl Iterator<Item = f64>, lo: f64, hi: f64, bins: usize) -> Vec<usize> {
    let mut counts = vec![0; bins];
    let width = (hi - lo) / bins as f64;
    for v in values {
        let b = (((v - lo) / width).floor().max(0.0) as usize).min(bins - 1);
        counts[b] += 1;
    }
    counts
}

/// Histograms of the normal and the anomalous images' scores (overlaid, translucent) with the
/// threshold as a vertical line.
pub fn score_histogram_svg(scores: &[f64], labels: &[u8], threshold: f64) -> Result<String> {
    if scores.is_empty() || scores.iter().any(|s| !s.is_finite()) {
        fail!("a score histogram needs finite scores");
    }
    const BINS: usize = 30;
    let min = scores.iter().copied().fold(threshold, f64::min);
    let max = scores.iter().copied().fold(threshold, f64::max);
    let pad = ((max - min) * 0.02).max(1e-9);
    let (lo, hi) = (min - pad, max + pad);
    let of = |class: u8| {
        histogram(
            scores
                .iter()
                .zip(labels)
                .filter(move |(_, &l)| (l != 0) == (class != 0))
                .map(|(&s, _)| s),
            lo,
            hi,
            BINS,
        )
    };
    let (normal, anomalous) = (of(0), of(1));
    let top = normal
        .iter()
        .chain(&anomalous)
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let width = (hi - lo) / BINS as f64;
    let err = plot_error("score histogram");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Image scores (test images)", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .build_cartesian_2d(lo..hi, 0f64..top * 1.1)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc("image score")
            .y_desc("images")
            .x_labels(6)
            .y_labels(6)
            .light_line_style(WHITE)
            .draw()
            .map_err(&err)?;
        for (counts, colour, name) in [
            (&normal, NORMAL, "normal"),
            (&anomalous, ANOMALOUS, "anomalous"),
        ] {
            let n: usize = counts.iter().sum();
            chart
                .draw_series(
                    counts
                        .iter()
                        .enumerate()
                        .filter(|(_, &c)| c > 0)
                        .map(|(i, &c)| {
                            let x0 = lo + i as f64 * width;
                            Rectangle::new(
                                [(x0, 0.0), (x0 + width, c as f64)],
                                colour.mix(0.45).filled(),
                            )
                        }),
                )
                .map_err(&err)?
                .label(format!("{name} ({n})"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.mix(0.45).filled())
                });
        }
        chart
            .draw_series(LineSeries::new(
                [(threshold, 0.0), (threshold, top * 1.1)],
                BLACK.stroke_width(2),
            ))
            .map_err(&err)?
            .label(format!("threshold {threshold:.4}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_svg_with_their_series_and_labels() {
        let scores = [0.1, 0.2, 0.3, 0.9, 1.1, 0.25];
        let labels = [0, 0, 0, 1, 1, 1];
        let roc = roc_svg(&scores, &labels, Some(0.8889)).unwrap().unwrap();
        assert!(roc.starts_with("<svg"), "{}", &roc[..40]);
        assert!(roc.contains("AUROC 0.8889") && roc.contains("false-positive rate"));
        assert_eq!(roc_svg(&scores, &[0; 6], None).unwrap(), None);
        let hist = score_histogram_svg(&scores, &labels, 0.5).unwrap();
        assert!(hist.contains("normal (3)") && hist.contains("anomalous (3)"));
        assert!(hist.contains("threshold 0.5000"));
        assert!(score_histogram_svg(&[f64::NAN], &[0], 0.5).is_err());
    }

    #[test]
    fn histogram_counts_every_value_once_including_the_ends() {
        let c = histogram([0.0, 0.5, 1.0, 0.99].into_iter(), 0.0, 1.0, 4);
        assert_eq!(c, [1, 0, 1, 2]);
    }
}

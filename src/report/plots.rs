//! The report's plots, as SVG text (plotters' SVG backend; text is left to the browser's fonts):
//! a ROC curve per category, and the histograms of normal and anomalous image scores with the
//! decision threshold drawn.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::{fail, Result};
use crate::metrics::roc_curve;

/// Plot size in SVG pixels.
const WIDTH_PX: u32 = 420;
const HEIGHT_PX: u32 = 320;

/// Blue for normal images, red for anomalous ones (matplotlib's tab10).
const NORMAL: RGBColor = RGBColor(31, 119, 180);
const ANOMALOUS: RGBColor = RGBColor(214, 39, 40);

/// A drawing error of plotters.
type DrawError = DrawingAreaErrorKind<std::io::Error>;

/// A chart with f64 axes on the SVG backend.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The frame of a plot: its caption, axis ranges and descriptions, and where the legend goes.
struct Frame<'a> {
    caption: &'a str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
    x_desc: &'a str,
    y_desc: &'a str,
    legend: SeriesLabelPosition,
}

/// Draws the frame (white background, caption, mesh without light lines, axis text), lets
/// `draw` add the series, then the legend; returns the SVG text.
fn svg_plot(
    frame: Frame,
    draw: impl for<'a, 'b> FnOnce(&mut Chart<'a, 'b>) -> std::result::Result<(), DrawError>,
) -> Result<String> {
    let err = |e: DrawError| {
        crate::Error::Unusable(format!("cannot draw the plot {:?}: {e}", frame.caption))
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH_PX, HEIGHT_PX)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(frame.caption, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .build_cartesian_2d(frame.x.clone(), frame.y.clone())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(frame.x_desc)
            .y_desc(frame.y_desc)
            .x_labels(6)
            .y_labels(6)
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        draw(&mut chart).map_err(err)?;
        chart
            .configure_series_labels()
            .position(frame.legend)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The ROC curve of `scores` against `labels` (1 anomalous) with its AUROC in the legend, or
/// `None` when one class is absent.
pub fn roc_svg(scores: &[f64], labels: &[u8], auroc: Option<f64>) -> Result<Option<String>> {
    let Some(curve) = roc_curve(scores, labels) else {
        return Ok(None);
    };
    let label = match auroc {
        Some(a) => format!("AUROC {a:.4}"),
        None => "ROC".into(),
    };
    let frame = Frame {
        caption: "ROC curve (test images)",
        x: 0.0..1.0,
        y: 0.0..1.02,
        x_desc: "false-positive rate",
        y_desc: "true-positive rate",
        legend: SeriesLabelPosition::LowerRight,
    };
    svg_plot(frame, |chart| {
        chart.draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (1.0, 1.0)],
            5,
            5,
            BLACK.mix(0.4).stroke_width(1),
        ))?;
        chart
            .draw_series(LineSeries::new(curve, NORMAL.stroke_width(2)))?
            .label(label)
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], NORMAL.stroke_width(2)));
        Ok(())
    })
    .map(Some)
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
    let frame = Frame {
        caption: "Image scores (test images)",
        x: lo..hi,
        y: 0.0..top * 1.1,
        x_desc: "image score",
        y_desc: "images",
        legend: SeriesLabelPosition::UpperRight,
    };
    svg_plot(frame, |chart| {
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
                )?
                .label(format!("{name} ({n})"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 14, y + 5)], colour.mix(0.45).filled())
                });
        }
        chart
            .draw_series(LineSeries::new(
                [(threshold, 0.0), (threshold, top * 1.1)],
                BLACK.stroke_width(2),
            ))?
            .label(format!("threshold {threshold:.4}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));
        Ok(())
    })
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

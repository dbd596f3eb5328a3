//! PNG charts (plotters' bitmap backend). Text is drawn with the bundled
//! DejaVu Sans (`assets/fonts/`), registered at first use, so charts render
//! the same on a machine without any fonts installed.

use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Bin;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Chart size in pixels.
const SIZE: (u32, u32) = (960, 600);

/// A chart could not be drawn or saved.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {message}")]
pub struct ChartError {
    path: String,
    message: String,
}

fn font() {
    REGISTER.call_once(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the bundled font is a valid TrueType file"));
    });
}

fn fail(path: &Path) -> impl Fn(&dyn std::fmt::Display) -> ChartError + '_ {
    move |e| ChartError {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

const BLUE_: RGBColor = RGBColor(52, 101, 164);
const ORANGE_: RGBColor = RGBColor(230, 126, 34);

/// A chart builder with the title, margins and axis label areas every
/// chart shares.
fn frame<'a, 'b, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, ("sans-serif", 24))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(80);
    builder
}

/// The series legend, in the upper right corner, every chart alike.
fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    CT: CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 15))
        .draw()
}

/// A histogram: one bar per bin.
pub fn histogram(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    bins: &[Bin],
) -> Result<(), ChartError> {
    overlaid(path, title, x_desc, y_desc, &[("", bins, BLUE_)])
}

/// Two histograms over the same bins, drawn translucent over each other
/// with a legend.
pub fn two_histograms(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    a: (&str, &[Bin]),
    b: (&str, &[Bin]),
) -> Result<(), ChartError> {
    overlaid(
        path,
        title,
        x_desc,
        y_desc,
        &[(a.0, a.1, BLUE_), (b.0, b.1, ORANGE_)],
    )
}

fn overlaid(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(&str, &[Bin], RGBColor)],
) -> Result<(), ChartError> {
    font();
    let err = fail(path);
    let all = || series.iter().flat_map(|s| s.1.iter());
    let lo = all().map(|b| b.lo).fold(f64::INFINITY, f64::min);
    let hi = all().map(|b| b.hi).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo {
        (lo, hi)
    } else {
        (0.0, 1.0)
    };
    let top = all().map(|b| b.count).max().unwrap_or(0).max(1);
    let top = top + top / 10 + 1;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = frame(&root, title)
        .build_cartesian_2d(lo..hi, 0u64..top)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .x_label_formatter(&|v| short_number(*v))
        .draw()
        .map_err(|e| err(&e))?;
    let labelled = series.iter().any(|s| !s.0.is_empty());
    for &(label, bins, color) in series {
        let alpha = if series.len() > 1 { 0.55 } else { 0.8 };
        let drawn =
            chart
                .draw_series(bins.iter().filter(|b| b.count > 0).map(|b| {
                    Rectangle::new([(b.lo, 0), (b.hi, b.count)], color.mix(alpha).filled())
                }))
                .map_err(|e| err(&e))?;
        if !label.is_empty() {
            drawn.label(label).legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.mix(alpha).filled())
            });
        }
    }
    if labelled {
        legend(&mut chart).map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// Grouped bars: one group per name in `groups`, one bar per series in
/// each group (series colors in a legend), values from 0 to `y_max`; a
/// missing value (`None`) leaves its slot empty. Values are written above
/// the bars while there is room for them. The y axis goes on above `y_max`,
/// unlabelled, to make room for the legend over the tallest bars.
pub fn grouped_bars(
    path: &Path,
    title: &str,
    y_desc: &str,
    groups: &[String],
    series: &[(&str, Vec<Option<f64>>)],
    y_max: f64,
) -> Result<(), ChartError> {
    font();
    let err = fail(path);
    let n = groups.len().max(1);
    let m = series.len().max(1);
    // The plot is about 470 px high; the legend takes 22 px a series.
    let legend_px = (m * 22 + 26) as f64;
    let top = y_max * 470.0 / (470.0 - legend_px);
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = frame(&root, title)
        // A segmented 0..n-1 axis has one slot per group (0..n would add an empty one).
        .build_cartesian_2d((0..n.max(2) - 1).into_segmented(), 0f64..top)
        .map_err(|e| err(&e))?;
    let names: Vec<String> = groups
        .iter()
        .map(|name| ellipsize(name, 100 / n + 8))
        .collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .y_desc(y_desc)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .x_labels(n)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                names.get(*i).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .y_label_formatter(&|v| {
            if *v > y_max * (1.0 + 1e-9) {
                String::new()
            } else if y_max <= 1.0 {
                format!("{v:.1}")
            } else {
                short_number(*v)
            }
        })
        .draw()
        .map_err(|e| err(&e))?;
    // Each group's slot: a 12 px gap on both sides, then m bars side by side.
    let slot = chart.plotting_area().dim_in_pixel().0 as f64 / n as f64;
    let bar = ((slot - 24.0) / m as f64).max(1.0);
    let labels = bar >= 34.0;
    for (j, (name, values)) in series.iter().enumerate() {
        let color = Palette99::pick(j).to_rgba();
        let (left, right) = (
            (12.0 + j as f64 * bar).round() as u32,
            (slot - 12.0 - (j + 1) as f64 * bar).max(0.0).round() as u32,
        );
        chart
            .draw_series(values.iter().enumerate().filter_map(|(i, v)| {
                let mut r = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), (*v)?),
                    ],
                    color.filled(),
                );
                r.set_margin(0, 0, left, right);
                Some(r)
            }))
            .map_err(|e| err(&e))?
            .label(*name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
        if labels {
            // Above the bar's center: its slot's left edge plus the offset.
            let center = (12.0 + (j as f64 + 0.5) * bar).round() as i32;
            for (i, v) in values.iter().enumerate() {
                let Some(v) = *v else { continue };
                let (x, y) = chart.backend_coord(&(SegmentValue::Exact(i), v));
                let style = TextStyle::from(("sans-serif", 13).into_font())
                    .pos(Pos::new(HPos::Center, VPos::Bottom));
                root.draw(&Text::new(format!("{v:.2}"), (x + center, y - 4), style))
                    .map_err(|e| err(&e))?;
            }
        }
    }
    legend(&mut chart).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// A value with its interval: `(value, lo, hi)`.
pub type Interval = (f64, f64, f64);

/// Points with vertical interval bars, one slot per name in the order
/// given, joined by a line (checkpoints draw a learning curve); each point
/// is `(value, lo, hi)` or missing. The y axis spans the intervals with a
/// margin, within [0, 1], so small differences stay visible.
pub fn intervals(
    path: &Path,
    title: &str,
    y_desc: &str,
    points: &[(String, Option<Interval>)],
) -> Result<(), ChartError> {
    font();
    let err = fail(path);
    let n = points.len().max(1);
    let present = || points.iter().filter_map(|(_, p)| *p);
    let lo = present().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = present().map(|p| p.2).fold(f64::NEG_INFINITY, f64::max);
    let (y0, y1) = if lo.is_finite() && hi.is_finite() {
        let pad = ((hi - lo) * 0.15).max(0.02);
        (
            ((lo - pad) * 20.0).floor().max(0.0) / 20.0,
            ((hi + pad) * 20.0).ceil().min(20.0) / 20.0,
        )
    } else {
        (0.0, 1.0)
    };
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = frame(&root, title)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), y0..y1)
        .map_err(|e| err(&e))?;
    let names: Vec<String> = points
        .iter()
        .map(|(name, _)| ellipsize(name, 100 / n + 8))
        .collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .y_desc(y_desc)
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .x_labels(n + 1)
        .x_label_formatter(&|v| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|v| format!("{v:.2}"))
        .draw()
        .map_err(|e| err(&e))?;
    let shown: Vec<(f64, Interval)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, (_, p))| p.map(|p| (i as f64, p)))
        .collect();
    chart
        .draw_series(LineSeries::new(
            shown.iter().map(|(x, p)| (*x, p.0)),
            BLUE_.mix(0.5).stroke_width(2),
        ))
        .map_err(|e| err(&e))?;
    // The interval: a vertical bar with caps 0.08 slot wide.
    let bars = shown.iter().flat_map(|(x, p)| {
        [
            vec![(*x, p.1), (*x, p.2)],
            vec![(x - 0.04, p.1), (x + 0.04, p.1)],
            vec![(x - 0.04, p.2), (x + 0.04, p.2)],
        ]
    });
    chart
        .draw_series(bars.map(|line| PathElement::new(line, BLUE_.stroke_width(2))))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(
            shown
                .iter()
                .map(|(x, p)| Circle::new((*x, p.0), 6, ORANGE_.filled())),
        )
        .map_err(|e| err(&e))?;
    for (x, p) in &shown {
        let (px, py) = chart.backend_coord(&(*x, p.0));
        let style =
            TextStyle::from(("sans-serif", 15).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(
            format!("{:.3} [{:.3}, {:.3}]", p.0, p.1, p.2),
            (px + 14, py),
            style,
        ))
        .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

/// `1200`, `1.2k`, `0.25`: short axis labels.
fn short_number(v: f64) -> String {
    if v.abs() >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let tail: String = s
            .chars()
            .rev()
            .take(max.saturating_sub(1))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}

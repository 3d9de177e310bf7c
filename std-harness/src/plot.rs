//! Figures: per-epoch mean curves with shaded ±1 standard-deviation bands on a logarithmic
//! epoch axis, as PNG and SVG (the style of the paper's Figs. 1–3); and measured points on
//! log-log axes ([`draw_loglog`], for `rapid bench scaling`).
//!
//! PNG text is drawn with the vendored DejaVu Sans font (`assets/`), registered once, so no
//! system font library is needed. SVG text is left to the viewer's sans-serif font.

use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The bytes are a valid TrueType font, checked by the tests.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One curve: `mean[i]` and `std[i]` belong to `x = i + 1` (epoch or index).
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Colour as RGB.
    pub color: (u8, u8, u8),
    /// Per-epoch mean.
    pub mean: Vec<f64>,
    /// Per-epoch standard deviation (band of ±1 std).
    pub std: Vec<f64>,
}

/// A figure panel.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Title above the plot.
    pub title: String,
    /// X-axis label.
    pub x_label: String,
    /// Logarithmic x axis (epochs) or linear (indices).
    pub log_x: bool,
    /// Y-axis label.
    pub y_label: String,
    /// The curves.
    pub series: Vec<Series>,
    /// Fixed y range (e.g. `[0, 0.5]` for a Hamming distance); bands are clipped to it.
    /// `None`: fitted to the data.
    pub y_range: Option<(f64, f64)>,
}

/// Matplotlib's tab10 colours for the four methods, in the paper's assignment.
pub const RAPID: (u8, u8, u8) = (31, 119, 180);
/// CD-10 (orange).
pub const CD: (u8, u8, u8) = (255, 127, 14);
/// PCD-10 (green).
pub const PCD: (u8, u8, u8) = (44, 160, 44);
/// Exact gradient (red).
pub const EXACT: (u8, u8, u8) = (214, 39, 40);
/// A fifth colour (tab10 purple), for a variant of RAPID.
pub const PURPLE: (u8, u8, u8) = (148, 103, 189);

/// Measured points joined by a line, for [`draw_loglog`].
#[derive(Clone, Debug)]
pub struct Line {
    /// Legend label.
    pub label: String,
    /// Colour as RGB.
    pub color: (u8, u8, u8),
    /// The points `(x, y)`; those not finite and positive are skipped.
    pub points: Vec<(f64, f64)>,
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let n = panel.series.iter().map(|s| s.mean.len()).max().unwrap_or(1).max(2);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in &panel.series {
        for (m, d) in s.mean.iter().zip(&s.std) {
            if m.is_finite() {
                lo = lo.min(m - d);
                hi = hi.max(m + d);
            }
        }
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let mut pad = ((hi - lo) * 0.05).max(1e-3);
    if let Some((a, b)) = panel.y_range {
        (lo, hi, pad) = (a, b, 0.0);
    }
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    if panel.log_x {
        let chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d((1f64..n as f64).log_scale(), (lo - pad)..(hi + pad))
            .map_err(err)?;
        finish_chart(chart, panel)
    } else {
        let chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(0.5f64..n as f64 + 0.5, (lo - pad)..(hi + pad))
            .map_err(err)?;
        finish_chart(chart, panel)
    }
}

fn finish_chart<'a, DB: DrawingBackend + 'a, X>(
    mut chart: ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    panel: &Panel,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(err)?;
    for s in &panel.series {
        let c = RGBColor(s.color.0, s.color.1, s.color.2);
        let pts: Vec<(f64, f64, f64)> = s
            .mean
            .iter()
            .zip(&s.std)
            .enumerate()
            .filter(|(_, (m, _))| m.is_finite())
            .map(|(e, (&m, &d))| ((e + 1) as f64, m, d))
            .collect();
        let clip = |y: f64| match panel.y_range {
            Some((a, b)) => y.clamp(a, b),
            None => y,
        };
        let mut band: Vec<(f64, f64)> = pts.iter().map(|&(x, m, d)| (x, clip(m + d))).collect();
        band.extend(pts.iter().rev().map(|&(x, m, d)| (x, clip(m - d))));
        chart.draw_series(std::iter::once(Polygon::new(band, c.mix(0.2).filled()))).map_err(err)?;
        chart
            .draw_series(LineSeries::new(pts.iter().map(|&(x, m, _)| (x, m)), c.stroke_width(2)))
            .map_err(err)?
            .label(&s.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
    }
    // A fixed range has room above the curves (a Hamming distance rarely nears 0.5).
    let position = if panel.y_range.is_some() {
        SeriesLabelPosition::UpperRight
    } else {
        SeriesLabelPosition::MiddleRight
    };
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Draws the panels side by side into `<stem>.png` and `<stem>.svg`.
///
/// # Errors
/// A drawing or file error, as text.
pub fn draw(stem: &Path, panels: &[Panel]) -> Result<(), String> {
    register_font();
    let size = (560 * panels.len().max(1) as u32, 440);
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        for (area, p) in root.split_evenly((1, panels.len().max(1))).iter().zip(panels) {
            draw_panel(area, p)?;
        }
        root.present().map_err(|e| format!("{}: {e}", png.display()))?;
    }
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        for (area, p) in root.split_evenly((1, panels.len().max(1))).iter().zip(panels) {
            draw_panel(area, p)?;
        }
        root.present().map_err(|e| format!("{}: {e}", svg.display()))?;
    }
    Ok(())
}

/// The range of the finite positive values, widened by `factor` on both sides (log axes).
fn log_range(values: impl Iterator<Item = f64>, factor: f64) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for x in values.filter(|x| x.is_finite() && *x > 0.0) {
        lo = lo.min(x);
        hi = hi.max(x);
    }
    if !lo.is_finite() {
        (lo, hi) = (1.0, 10.0);
    }
    if hi <= lo * 1.0001 {
        (lo, hi) = (lo / 2.0, hi * 2.0);
    }
    lo / factor..hi * factor
}

fn draw_loglog_on<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let ok = |&(x, y): &(f64, f64)| x.is_finite() && x > 0.0 && y.is_finite() && y > 0.0;
    let xs = log_range(lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)), 1.15);
    let ys = log_range(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)), 1.6);
    // One x tick at each measured x.
    let mut ticks: Vec<f64> =
        lines.iter().flat_map(|l| l.points.iter().filter(|p| ok(p)).map(|p| p.0)).collect();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(xs.log_scale().with_key_points(ticks), ys.log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(err)?;
    for l in lines {
        let c = RGBColor(l.color.0, l.color.1, l.color.2);
        let pts: Vec<(f64, f64)> = l.points.iter().copied().filter(ok).collect();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(&l.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled()))).map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Draws `lines` on log-log axes, a marker at each point, into `<stem>.png` and
/// `<stem>.svg`, in the style of [`draw`].
///
/// # Errors
/// A drawing or file error, as text.
pub fn draw_loglog(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
) -> Result<(), String> {
    register_font();
    let size = (720, 520);
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw_loglog_on(&root, title, x_label, y_label, lines)?;
        root.present().map_err(|e| format!("{}: {e}", png.display()))?;
    }
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw_loglog_on(&root, title, x_label, y_label, lines)?;
        root.present().map_err(|e| format!("{}: {e}", svg.display()))?;
    }
    Ok(())
}

/// Draws `lines` with a linear x axis and a logarithmic y axis (points with `y ≤ 0` are
/// skipped), a marker at each point, into `<stem>.png` and `<stem>.svg`, in the style of
/// [`draw`]: for measurements against time that span orders of magnitude.
///
/// # Errors
/// A drawing or file error, as text.
pub fn draw_xy(
    stem: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
) -> Result<(), String> {
    register_font();
    let size = (720, 480);
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw_xy_on(&root, title, x_label, y_label, lines)?;
        root.present().map_err(|e| format!("{}: {e}", png.display()))?;
    }
    {
        let root = SVGBackend::new(&svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw_xy_on(&root, title, x_label, y_label, lines)?;
        root.present().map_err(|e| format!("{}: {e}", svg.display()))?;
    }
    Ok(())
}

fn draw_xy_on<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let ok = |&(x, y): &(f64, f64)| x.is_finite() && y.is_finite() && y > 0.0;
    let range = |vals: Vec<f64>| {
        let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !lo.is_finite() {
            return 0.0..1.0;
        }
        let pad = ((hi - lo) * 0.06).max(1e-3);
        lo - pad..hi + pad
    };
    let pts = || lines.iter().flat_map(|l| l.points.iter().copied().filter(ok));
    let xs = range(pts().map(|p| p.0).collect());
    let ys = log_range(pts().map(|p| p.1), 1.3);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(xs, ys.log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 17))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(err)?;
    for l in lines {
        let c = RGBColor(l.color.0, l.color.1, l.color.2);
        let p: Vec<(f64, f64)> = l.points.iter().copied().filter(ok).collect();
        chart
            .draw_series(LineSeries::new(p.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(&l.label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
        chart.draw_series(p.iter().map(|&q| Circle::new(q, 4, c.filled()))).map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_png_and_svg_with_bands() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("fig");
        let mk = |label: &str, color, off: f64| Series {
            label: label.into(),
            color,
            mean: (1..=50).map(|e| off + 1.0 / e as f64).collect(),
            std: vec![0.05; 50],
        };
        let panel = Panel {
            y_range: None,
            title: "Test".into(),
            x_label: "Epoch".into(),
            log_x: true,
            y_label: "Hamming distance".into(),
            series: vec![mk("RAPID", RAPID, 0.0), mk("CD-10", CD, 0.2)],
        };
        let linear = Panel { log_x: false, x_label: "Index".into(), ..panel.clone() };
        draw(&stem, &[panel, linear]).unwrap();
        let png = std::fs::read(stem.with_extension("png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("RAPID") && svg.contains("Epoch"));
        assert!(svg.contains("polygon") || svg.contains("path"));
    }

    #[test]
    fn draws_loglog_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("scaling");
        let line = |label: &str, color, p: f64| Line {
            label: label.into(),
            color,
            points: [250.0, 500.0, 1000.0].iter().map(|&n: &f64| (n, 1e-6 * n.powf(p))).collect(),
        };
        draw_loglog(
            &stem,
            "Time per step",
            "N = V + H",
            "seconds",
            &[line("linear", RAPID, 1.0), line("quadratic", CD, 2.0)],
        )
        .unwrap();
        let png = std::fs::read(stem.with_extension("png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
        assert!(svg.contains("quadratic") && svg.contains("N = V + H"));
        // One point, or none that can go on log axes, still draws.
        let odd =
            Line { label: "odd".into(), color: PURPLE, points: vec![(0.0, -1.0), (5.0, 2.0)] };
        draw_loglog(&stem, "t", "x", "y", &[odd]).unwrap();
    }
}

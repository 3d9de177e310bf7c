//! Figures: per-epoch mean curves with shaded ±1 standard-deviation bands on a logarithmic
//! epoch axis, as PNG and SVG (the style of the paper's Figs. 1–3, [`draw`]); measured points on
//! log-log axes ([`draw_loglog`], for `rapid bench scaling`) or on a linear-x, log-y plot
//! ([`draw_xy`], for Fig. 4b).
//!
//! # Line styles
//!
//! Each method keeps one colour *and* one line style in every figure, so curves that coincide
//! stay visible: the gaps of a dashed or dotted line let the curve beneath show through, and
//! the markers of different methods sit at different places along the curves.
//!
//! | colour constant | used for | colour | line | marker |
//! | --- | --- | --- | --- | --- |
//! | [`RAPID`] | RAPID (`pid`, `pid-gibbs:1`) | blue | solid | circle |
//! | [`CD`] | CD-10 | orange | dashed | triangle |
//! | [`PCD`] | PCD-10 | green | dotted | square |
//! | [`EXACT`] | exact gradient | red | dash-dot | cross |
//! | [`PURPLE`] | a second RAPID variant (`pid-gibbs:10`) | purple | long dashes | diamond |
//!
//! The style follows the colour ([`style_of`]); any other colour is drawn solid with circles.
//! Fig. 4a, which has one method, draws its training curve as [`RAPID`] and its test curve as
//! [`CD`]. A curve of many points ([`Series`] with more than [`MARK_ALL_UP_TO`] points)
//! carries eight markers spread evenly along the x axis, offset by style so that no two
//! methods put a marker at the same place; a shorter curve, and every [`Line`], has a marker
//! at each point.
//!
//! # Legends and bands
//!
//! The legend goes in a strip below the plot area(s), one entry per label over all the panels
//! of a figure, so it never covers data. The ±1 standard-deviation band of a [`Series`] is
//! clamped to the metric's range ([`Panel::bounds`], see [`clamped_band`]); the y axis always
//! takes in every mean and every clamped band.
//!
//! PNG text is drawn with the vendored DejaVu Sans font (`assets/`), registered once, so no
//! system font library is needed. SVG text is left to the viewer's sans-serif font.

use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The bytes are a valid TrueType font, checked by the tests.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One curve: `mean[i]` and `std[i]` belong to `x = i + 1` (epoch or index). Non-finite
/// means are gaps (no point); a non-finite standard deviation counts as 0.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Colour as RGB; it also picks the line style ([`style_of`]).
    pub color: (u8, u8, u8),
    /// Per-epoch mean.
    pub mean: Vec<f64>,
    /// Per-epoch standard deviation (band of ±1 std).
    pub std: Vec<f64>,
}

/// No limits: for [`Panel::bounds`] of a metric that can take any value.
pub const UNBOUNDED: (f64, f64) = (f64::NEG_INFINITY, f64::INFINITY);

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
    /// The y range the axis shows at least (e.g. `[0, 0.5]` for a Hamming distance, 0.5 being
    /// a guess); it widens to take in any mean or band outside. `None`: fitted to the data.
    pub y_range: Option<(f64, f64)>,
    /// The values the metric can take (e.g. `[0, 1]` for a Hamming distance or an
    /// accessibility, `[0, ∞)` for singular values, [`UNBOUNDED`] for a log-likelihood); the
    /// ±1 std bands are clamped to it ([`clamped_band`]).
    pub bounds: (f64, f64),
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

/// Measured points joined by a line, for [`draw_loglog`] and [`draw_xy`].
#[derive(Clone, Debug)]
pub struct Line {
    /// Legend label.
    pub label: String,
    /// Colour as RGB; it also picks the line style ([`style_of`]).
    pub color: (u8, u8, u8),
    /// The points `(x, y)`; those that cannot go on the axes are skipped.
    pub points: Vec<(f64, f64)>,
}

/// The line of a curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dash {
    /// Unbroken.
    Solid,
    /// Medium dashes.
    Dashed,
    /// Dots.
    Dotted,
    /// Dash, dot, dash, dot.
    DashDot,
    /// Long dashes.
    LongDash,
}

impl Dash {
    /// On and off lengths in pixels, repeated along the line (empty: solid).
    fn pattern(self) -> &'static [f64] {
        match self {
            Dash::Solid => &[],
            Dash::Dashed => &[9.0, 5.0],
            Dash::Dotted => &[2.0, 4.0],
            Dash::DashDot => &[10.0, 4.0, 2.0, 4.0],
            Dash::LongDash => &[18.0, 6.0],
        }
    }
}

/// The marker of a curve, drawn as an outline so markers on top of each other stay visible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    /// A circle.
    Circle,
    /// A triangle, point up.
    Triangle,
    /// A square.
    Square,
    /// An ×.
    Cross,
    /// A diamond.
    Diamond,
}

/// How a curve is drawn besides its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    /// The line.
    pub dash: Dash,
    /// The marker.
    pub marker: Marker,
    /// Which of the [`STYLES`] places for the markers along the x axis it takes, so that
    /// methods put theirs in different places.
    slot: usize,
}

/// Places for markers along the x axis, one per style.
const STYLES: usize = 5;

/// A [`Series`] of at most this many points has a marker at each; a longer one has eight.
pub const MARK_ALL_UP_TO: usize = 20;

/// Markers along a long curve.
const MARKERS: usize = 8;

/// The line style that goes with a colour (the table in the [module docs](self)).
pub fn style_of(color: (u8, u8, u8)) -> Style {
    let (dash, marker, slot) = match color {
        CD => (Dash::Dashed, Marker::Triangle, 1),
        PCD => (Dash::Dotted, Marker::Square, 2),
        EXACT => (Dash::DashDot, Marker::Cross, 3),
        PURPLE => (Dash::LongDash, Marker::Diamond, 4),
        _ => (Dash::Solid, Marker::Circle, 0),
    };
    Style { dash, marker, slot }
}

/// The ±1 standard-deviation band `[mean − std, mean + std]` clamped to `bounds`, the values the
/// metric can take (a non-finite `std` counts as 0).
pub fn clamped_band(mean: f64, std: f64, bounds: (f64, f64)) -> (f64, f64) {
    let d = if std.is_finite() { std.abs() } else { 0.0 };
    ((mean - d).max(bounds.0), (mean + d).min(bounds.1))
}

/// Splits a polyline (pixel coordinates) into the pieces that are drawn under a dash
/// `pattern` of alternating on and off lengths; the pattern runs on across vertices.
fn dash_pieces(points: &[(f64, f64)], pattern: &[f64]) -> Vec<Vec<(f64, f64)>> {
    if pattern.is_empty() || pattern.iter().any(|&l| l.is_nan() || l <= 0.0) {
        return if points.len() > 1 { vec![points.to_vec()] } else { Vec::new() };
    }
    let mut pieces = Vec::new();
    let Some(&first) = points.first() else { return pieces };
    let mut k = 0; // Index into the pattern: even = on, odd = off.
    let mut left = pattern[0];
    let mut piece = vec![first];
    for w in points.windows(2) {
        let (a, b) = (w[0], w[1]);
        let d = (b.0 - a.0).hypot(b.1 - a.1);
        let mut pos = 0.0;
        while d - pos > left {
            pos += left;
            let p = (a.0 + (b.0 - a.0) * pos / d, a.1 + (b.1 - a.1) * pos / d);
            if k % 2 == 0 {
                piece.push(p);
                pieces.push(std::mem::take(&mut piece));
            } else {
                piece = vec![p];
            }
            k = (k + 1) % pattern.len();
            left = pattern[k];
        }
        left -= d - pos;
        if k % 2 == 0 {
            piece.push(b);
        }
    }
    if k % 2 == 0 && piece.len() > 1 {
        pieces.push(piece);
    }
    pieces
}

/// Strokes a polyline given in the pixel coordinates of `area` with the dash of `style`.
fn stroke<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[(f64, f64)],
    color: (u8, u8, u8),
    width: u32,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let c = RGBColor(color.0, color.1, color.2).stroke_width(width);
    for piece in dash_pieces(points, style_of(color).dash.pattern()) {
        let px: Vec<(i32, i32)> =
            piece.iter().map(|&(x, y)| (x.round() as i32, y.round() as i32)).collect();
        area.draw(&PathElement::new(px, c)).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Draws the marker of `color`'s style at `(x, y)`, pixel coordinates of `area`: an outline
/// on the plot (markers on top of each other stay visible), on a white disc in the legend.
fn mark<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    color: (u8, u8, u8),
    backdrop: bool,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let c = RGBColor(color.0, color.1, color.2).stroke_width(2);
    let r = 5;
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    if backdrop {
        area.draw(&Circle::new((x, y), r + 2, WHITE.filled())).map_err(err)?;
    }
    let path = |pts: Vec<(i32, i32)>| area.draw(&PathElement::new(pts, c)).map_err(err);
    match style_of(color).marker {
        Marker::Circle => area.draw(&Circle::new((x, y), r - 1, c)).map_err(err),
        Marker::Triangle => path(vec![
            (x, y - r - 1),
            (x + r + 1, y + r - 1),
            (x - r - 1, y + r - 1),
            (x, y - r - 1),
        ]),
        Marker::Square => {
            let s = r - 1;
            path(vec![
                (x - s, y - s),
                (x + s, y - s),
                (x + s, y + s),
                (x - s, y + s),
                (x - s, y - s),
            ])
        }
        Marker::Cross => {
            path(vec![(x - r, y - r), (x + r, y + r)])?;
            path(vec![(x - r, y + r), (x + r, y - r)])
        }
        Marker::Diamond => {
            let s = r + 1;
            path(vec![(x, y - s), (x + s, y), (x, y + s), (x - s, y), (x, y - s)])
        }
    }
}

/// The indices of `xs` (ascending) that get a marker: all of a short curve; of a long one, at
/// most one in each of [`MARKERS`] equal stretches of `axis` (on the scale `t` maps to). Each
/// stretch is cut into one part per style, and a style marks the point of its own part that is
/// nearest to the part's middle; so two styles never mark the same point (where the points are
/// sparse, at the start of a log axis, a part may have none and that marker is left out).
fn marker_indices(xs: &[f64], axis: (f64, f64), t: impl Fn(f64) -> f64, slot: usize) -> Vec<usize> {
    if xs.len() <= MARK_ALL_UP_TO {
        return (0..xs.len()).collect();
    }
    let (a, b) = (t(axis.0), t(axis.1));
    let step = (b - a) / MARKERS as f64;
    let mut best: Vec<Option<(usize, f64)>> = vec![None; MARKERS];
    for (i, &x) in xs.iter().enumerate() {
        let u = (t(x) - a) / step;
        if !u.is_finite() {
            continue;
        }
        let j = (u.floor().max(0.0) as usize).min(MARKERS - 1);
        let part = ((u - j as f64) * STYLES as f64).floor().max(0.0) as usize;
        if part.min(STYLES - 1) != slot {
            continue;
        }
        let gap = (u - j as f64 - (slot as f64 + 0.5) / STYLES as f64).abs();
        if best[j].is_none_or(|(_, g)| gap < g) {
            best[j] = Some((i, gap));
        }
    }
    best.into_iter().flatten().map(|(i, _)| i).collect()
}

/// The y axis of a panel: every mean and clamped band, the panel's `y_range`, and a margin.
fn y_axis(panel: &Panel) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for s in &panel.series {
        for (i, &m) in s.mean.iter().enumerate() {
            if m.is_finite() {
                let (a, b) = clamped_band(m, s.std.get(i).copied().unwrap_or(0.0), panel.bounds);
                lo = lo.min(a).min(m);
                hi = hi.max(b).max(m);
            }
        }
    }
    if let Some((a, b)) = panel.y_range {
        lo = lo.min(a);
        hi = hi.max(b);
    }
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.04).max(1e-3);
    (lo - pad, hi + pad)
}

/// The legend entries of a figure: each label once, in order of first appearance.
fn legend_entries<'a>(
    items: impl Iterator<Item = (&'a str, (u8, u8, u8))>,
) -> Vec<(String, (u8, u8, u8))> {
    let mut out: Vec<(String, (u8, u8, u8))> = Vec::new();
    for (label, color) in items {
        if !out.iter().any(|(l, _)| l == label) {
            out.push((label.to_string(), color));
        }
    }
    out
}

const LEGEND_FONT: f64 = 15.0;
const LEGEND_SAMPLE: i32 = 40;
const LEGEND_ROW: i32 = 24;

/// The legend laid out in rows that fit `width`: per row, each entry's index and left edge.
fn legend_rows(entries: &[(String, (u8, u8, u8))], width: u32) -> Vec<Vec<(usize, i32)>> {
    register_font();
    let font = FontDesc::new(FontFamily::SansSerif, LEGEND_FONT, FontStyle::Normal);
    let wide = |label: &str| -> i32 {
        let text = font.box_size(label).map_or(label.chars().count() as i32 * 9, |s| s.0 as i32);
        LEGEND_SAMPLE + 8 + text
    };
    let gap = 30;
    let avail = width as i32 - 40;
    let mut rows: Vec<Vec<(usize, i32)>> = Vec::new();
    let mut used = 0;
    for (i, (label, _)) in entries.iter().enumerate() {
        let w = wide(label);
        match rows.last_mut() {
            Some(row) if used + gap + w <= avail => {
                row.push((i, used + gap));
                used += gap + w;
            }
            _ => {
                rows.push(vec![(i, 0)]);
                used = w;
            }
        }
    }
    // Centre each row.
    for row in &mut rows {
        let (last, x) = *row.last().expect("rows are not empty");
        let row_w = x + wide(&entries[last].0);
        let shift = (width as i32 - row_w) / 2;
        for e in row.iter_mut() {
            e.1 += shift;
        }
    }
    rows
}

/// The height of the legend strip for `rows` rows.
fn legend_height(rows: usize) -> u32 {
    if rows == 0 {
        0
    } else {
        (rows as i32 * LEGEND_ROW + 14) as u32
    }
}

/// Draws the legend strip into `area`.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, (u8, u8, u8))],
    rows: &[Vec<(usize, i32)>],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let font = ("sans-serif", LEGEND_FONT)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (r, row) in rows.iter().enumerate() {
        let y = 7 + r as i32 * LEGEND_ROW + LEGEND_ROW / 2;
        for &(i, x) in row {
            let (label, color) = &entries[i];
            let sample = [(x as f64, y as f64), ((x + LEGEND_SAMPLE) as f64, y as f64)];
            stroke(area, &sample, *color, 3)?;
            mark(area, (x + LEGEND_SAMPLE / 2, y), *color, true)?;
            area.draw(&Text::new(label.clone(), (x + LEGEND_SAMPLE + 8, y), font.clone()))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// A figure that [`render`] writes as PNG and SVG.
trait Figure {
    /// Width and height in pixels.
    fn size(&self) -> (u32, u32);
    /// Draws onto the whole (white) area.
    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static;
}

/// Writes `fig` to `<stem>.png` and `<stem>.svg`.
fn render(stem: &Path, fig: &impl Figure) -> Result<(), String> {
    register_font();
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    {
        let root = BitMapBackend::new(&png, fig.size()).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        fig.draw_on(&root)?;
        root.present().map_err(|e| format!("{}: {e}", png.display()))?;
    }
    {
        let root = SVGBackend::new(&svg, fig.size()).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        fig.draw_on(&root)?;
        root.present().map_err(|e| format!("{}: {e}", svg.display()))?;
    }
    Ok(())
}

/// Panels side by side over a shared legend.
struct Panels<'a> {
    panels: &'a [Panel],
    entries: Vec<(String, (u8, u8, u8))>,
    rows: Vec<Vec<(usize, i32)>>,
}

const PANEL_W: u32 = 560;
const PANEL_H: u32 = 440;

impl<'a> Panels<'a> {
    fn new(panels: &'a [Panel]) -> Self {
        let entries = legend_entries(
            panels.iter().flat_map(|p| p.series.iter().map(|s| (s.label.as_str(), s.color))),
        );
        let rows = legend_rows(&entries, PANEL_W * panels.len().max(1) as u32);
        Panels { panels, entries, rows }
    }
}

impl Figure for Panels<'_> {
    fn size(&self) -> (u32, u32) {
        (PANEL_W * self.panels.len().max(1) as u32, PANEL_H + legend_height(self.rows.len()))
    }

    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let (plots, legend) = root.split_vertically(PANEL_H);
        for (area, p) in plots.split_evenly((1, self.panels.len().max(1))).iter().zip(self.panels) {
            draw_panel(area, p)?;
        }
        draw_legend(&legend, &self.entries, &self.rows)
    }
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let n = panel.series.iter().map(|s| s.mean.len()).max().unwrap_or(1).max(2);
    let (lo, hi) = y_axis(panel);
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    if panel.log_x {
        let chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d((1f64..n as f64).log_scale(), lo..hi)
            .map_err(err)?;
        finish_chart(chart, panel, (1.0, n as f64), f64::ln)
    } else {
        let chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(65)
            .build_cartesian_2d(0.5f64..n as f64 + 0.5, lo..hi)
            .map_err(err)?;
        finish_chart(chart, panel, (0.5, n as f64 + 0.5), |x| x)
    }
}

fn finish_chart<'a, DB: DrawingBackend + 'a, X>(
    mut chart: ChartContext<'a, DB, Cartesian2d<X, plotters::coord::types::RangedCoordf64>>,
    panel: &Panel,
    x_axis: (f64, f64),
    x_scale: fn(f64) -> f64,
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
    // (x, mean, band) of each series' finite points.
    type Point = (f64, f64, (f64, f64));
    let curves: Vec<Vec<Point>> = panel
        .series
        .iter()
        .map(|s| {
            s.mean
                .iter()
                .enumerate()
                .filter(|(_, m)| m.is_finite())
                .map(|(i, &m)| {
                    let d = s.std.get(i).copied().unwrap_or(0.0);
                    ((i + 1) as f64, m, clamped_band(m, d, panel.bounds))
                })
                .collect()
        })
        .collect();
    // All bands first, so that no band washes over another method's line.
    for (s, pts) in panel.series.iter().zip(&curves) {
        let c = RGBColor(s.color.0, s.color.1, s.color.2);
        let mut band: Vec<(f64, f64)> = pts.iter().map(|&(x, _, (_, b))| (x, b)).collect();
        band.extend(pts.iter().rev().map(|&(x, _, (a, _))| (x, a)));
        chart
            .draw_series(std::iter::once(Polygon::new(band, c.mix(0.18).filled())))
            .map_err(err)?;
    }
    let area = chart.plotting_area().strip_coord_spec();
    let base = area.get_base_pixel();
    let px = |x: f64, y: f64| {
        let (u, v) = chart.backend_coord(&(x, y));
        (u - base.0, v - base.1)
    };
    for (s, pts) in panel.series.iter().zip(&curves) {
        let line: Vec<(f64, f64)> = pts
            .iter()
            .map(|&(x, m, _)| {
                let (u, v) = px(x, m);
                (f64::from(u), f64::from(v))
            })
            .collect();
        stroke(&area, &line, s.color, 2)?;
    }
    for (s, pts) in panel.series.iter().zip(&curves) {
        let xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
        for i in marker_indices(&xs, x_axis, x_scale, style_of(s.color).slot) {
            mark(&area, px(pts[i].0, pts[i].1), s.color, false)?;
        }
    }
    Ok(())
}

/// Draws the panels side by side into `<stem>.png` and `<stem>.svg`, with one legend for all
/// of them below. Each series has its ±1 std band (clamped to the panel's
/// [`bounds`](Panel::bounds)), its line in the style of its colour and its markers (see the
/// [module docs](self)).
///
/// # Errors
/// A drawing or file error, as text.
pub fn draw(stem: &Path, panels: &[Panel]) -> Result<(), String> {
    render(stem, &Panels::new(panels))
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

/// Which axes a [`Lines`] figure has.
#[derive(Clone, Copy)]
enum Axes {
    LogLog,
    LinLog,
}

/// Measured points on one plot over a legend.
struct Lines<'a> {
    title: &'a str,
    x_label: &'a str,
    y_label: &'a str,
    lines: &'a [Line],
    axes: Axes,
    size: (u32, u32),
    entries: Vec<(String, (u8, u8, u8))>,
    rows: Vec<Vec<(usize, i32)>>,
}

impl<'a> Lines<'a> {
    fn new(
        title: &'a str,
        x_label: &'a str,
        y_label: &'a str,
        lines: &'a [Line],
        axes: Axes,
        size: (u32, u32),
    ) -> Self {
        let entries = legend_entries(lines.iter().map(|l| (l.label.as_str(), l.color)));
        let rows = legend_rows(&entries, size.0);
        Lines { title, x_label, y_label, lines, axes, size, entries, rows }
    }

    fn ok(&self, &(x, y): &(f64, f64)) -> bool {
        let x_ok = match self.axes {
            Axes::LogLog => x > 0.0,
            Axes::LinLog => true,
        };
        x.is_finite() && x_ok && y.is_finite() && y > 0.0
    }
}

impl Figure for Lines<'_> {
    fn size(&self) -> (u32, u32) {
        (self.size.0, self.size.1 + legend_height(self.rows.len()))
    }

    fn draw_on<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let (plot, legend) = root.split_vertically(self.size.1);
        let pts =
            || self.lines.iter().flat_map(|l| l.points.iter().copied().filter(|p| self.ok(p)));
        let builder = || {
            let mut b = ChartBuilder::on(&plot);
            b.caption(self.title, ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(45)
                .y_label_area_size(75);
            b
        };
        match self.axes {
            Axes::LogLog => {
                let xs = log_range(pts().map(|p| p.0), 1.15);
                let ys = log_range(pts().map(|p| p.1), 1.6);
                // One x tick at each measured x.
                let mut ticks: Vec<f64> = pts().map(|p| p.0).collect();
                ticks.sort_by(f64::total_cmp);
                ticks.dedup();
                let mut chart = builder()
                    .build_cartesian_2d(xs.log_scale().with_key_points(ticks), ys.log_scale())
                    .map_err(err)?;
                chart
                    .configure_mesh()
                    .x_desc(self.x_label)
                    .y_desc(self.y_label)
                    .label_style(("sans-serif", 15))
                    .axis_desc_style(("sans-serif", 17))
                    .x_label_formatter(&|x| format!("{x:.0}"))
                    .y_label_formatter(&|y| format!("{y:.0e}"))
                    .light_line_style(RGBColor(238, 238, 238))
                    .draw()
                    .map_err(err)?;
                self.draw_lines(&chart)?;
            }
            Axes::LinLog => {
                let xv: Vec<f64> = pts().map(|p| p.0).collect();
                let lo = xv.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = xv.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let xs = if lo.is_finite() {
                    let pad = ((hi - lo) * 0.06).max(1e-3);
                    lo - pad..hi + pad
                } else {
                    0.0..1.0
                };
                let ys = log_range(pts().map(|p| p.1), 1.3);
                let mut chart = builder().build_cartesian_2d(xs, ys.log_scale()).map_err(err)?;
                chart
                    .configure_mesh()
                    .x_desc(self.x_label)
                    .y_desc(self.y_label)
                    .label_style(("sans-serif", 15))
                    .axis_desc_style(("sans-serif", 17))
                    .x_label_formatter(&|x| format!("{x:.0}"))
                    .y_label_formatter(&|y| format!("{y:.0}"))
                    .light_line_style(RGBColor(238, 238, 238))
                    .draw()
                    .map_err(err)?;
                self.draw_lines(&chart)?;
            }
        }
        draw_legend(&legend, &self.entries, &self.rows)
    }
}

impl Lines<'_> {
    fn draw_lines<'b, DB: DrawingBackend + 'b, X, Y>(
        &self,
        chart: &ChartContext<'b, DB, Cartesian2d<X, Y>>,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
        X: Ranged<ValueType = f64>,
        Y: Ranged<ValueType = f64>,
    {
        let area = chart.plotting_area().strip_coord_spec();
        let base = area.get_base_pixel();
        let px = |p: &(f64, f64)| {
            let (u, v) = chart.backend_coord(p);
            (u - base.0, v - base.1)
        };
        for l in self.lines {
            let line: Vec<(f64, f64)> = l
                .points
                .iter()
                .filter(|p| self.ok(p))
                .map(|p| {
                    let (u, v) = px(p);
                    (f64::from(u), f64::from(v))
                })
                .collect();
            stroke(&area, &line, l.color, 2)?;
        }
        for l in self.lines {
            for p in l.points.iter().filter(|p| self.ok(p)) {
                mark(&area, px(p), l.color, false)?;
            }
        }
        Ok(())
    }
}

/// Draws `lines` on log-log axes, a marker at each point, into `<stem>.png` and
/// `<stem>.svg`, in the style of [`draw`] (the legend below the plot). Points that are not
/// finite and positive are skipped.
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
    render(stem, &Lines::new(title, x_label, y_label, lines, Axes::LogLog, (720, 520)))
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
    render(stem, &Lines::new(title, x_label, y_label, lines, Axes::LinLog, (720, 480)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(label: &str, color: (u8, u8, u8), off: f64, std: f64) -> Series {
        Series {
            label: label.into(),
            color,
            mean: (1..=50).map(|e| off + 1.0 / e as f64).collect(),
            std: vec![std; 50],
        }
    }

    #[test]
    fn draws_png_and_svg_with_bands_and_a_legend_below() {
        let dir = tempfile::tempdir().unwrap();
        let stem = dir.path().join("fig");
        let panel = Panel {
            y_range: None,
            bounds: UNBOUNDED,
            title: "Test".into(),
            x_label: "Epoch".into(),
            log_x: true,
            y_label: "Hamming distance".into(),
            series: vec![series("RAPID", RAPID, 0.0, 0.05), series("CD-10", CD, 0.2, 0.05)],
        };
        let linear = Panel {
            log_x: false,
            x_label: "Index".into(),
            series: vec![series("Exact", EXACT, 0.1, 0.0), series("RAPID", RAPID, 0.0, 0.1)],
            ..panel.clone()
        };
        draw(&stem, &[panel, linear]).unwrap();
        let png = std::fs::read(stem.with_extension("png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        let svg = std::fs::read_to_string(stem.with_extension("svg")).unwrap();
        assert!(svg.contains("<svg") && svg.contains("Epoch"));
        assert!(svg.contains("polygon") || svg.contains("path"));
        // One legend entry per label over both panels, below the 440-pixel plots.
        assert_eq!(svg.matches(">\nRAPID\n<").count(), 1, "{svg}");
        assert_eq!(svg.matches(">\nExact\n<").count(), 1);
        assert!(svg.contains("height=\"478\""), "one legend row adds 38 pixels");
    }

    #[test]
    fn bands_are_clamped_to_the_metric_range() {
        // A Hamming distance of 0.02 ± 0.1 does not go below 0.
        assert_eq!(clamped_band(0.02, 0.1, (0.0, 1.0)), (0.0, 0.12000000000000001));
        assert_eq!(clamped_band(0.95, 0.1, (0.0, 1.0)).1, 1.0);
        assert_eq!(clamped_band(0.5, 0.1, (0.0, 0.5)), (0.4, 0.5));
        // A log-likelihood is not clamped; a missing std is no band.
        assert_eq!(clamped_band(-3.0, 2.0, UNBOUNDED), (-5.0, -1.0));
        assert_eq!(clamped_band(0.3, f64::NAN, (0.0, 1.0)), (0.3, 0.3));
        // The axis takes in the clamped bands only: it starts at 0 less a small margin.
        let p = Panel {
            title: String::new(),
            x_label: String::new(),
            log_x: true,
            y_label: String::new(),
            series: vec![series("RAPID", RAPID, -0.01, 0.3)],
            y_range: Some((0.0, 0.5)),
            bounds: (0.0, 1.0),
        };
        let (lo, hi) = y_axis(&p);
        assert!(lo > -0.05 && lo < 0.0, "{lo}");
        assert!(hi > 1.0 && hi < 1.05, "0.99 + 0.3 is clamped at 1: {hi}");
        // Unbounded, the band counts in full.
        let (lo, hi) = y_axis(&Panel { bounds: UNBOUNDED, ..p });
        assert!(lo < -0.3 && hi > 1.29, "{lo} {hi}");
    }

    #[test]
    fn dashes_run_on_across_vertices() {
        let line = [(0.0, 0.0), (10.0, 0.0)];
        assert_eq!(dash_pieces(&line, &[]), vec![line.to_vec()]);
        assert_eq!(
            dash_pieces(&line, &[2.0, 2.0]),
            vec![
                vec![(0.0, 0.0), (2.0, 0.0)],
                vec![(4.0, 0.0), (6.0, 0.0)],
                vec![(8.0, 0.0), (10.0, 0.0)]
            ]
        );
        let bent = [(0.0, 0.0), (1.0, 0.0), (1.0, 5.0)];
        assert_eq!(
            dash_pieces(&bent, &[2.0, 2.0]),
            vec![vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0)], vec![(1.0, 3.0), (1.0, 5.0)]]
        );
        assert!(dash_pieces(&[(1.0, 1.0)], &[2.0, 2.0]).is_empty());
    }

    #[test]
    fn every_method_has_its_own_style_and_marker_places() {
        let all = [RAPID, CD, PCD, EXACT, PURPLE].map(style_of);
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert!(a.dash != b.dash && a.marker != b.marker && a.slot != b.slot);
            }
        }
        assert_eq!(style_of((1, 2, 3)), style_of(RAPID));
        // Long curves: eight markers per method, never at the same point for two methods.
        let xs: Vec<f64> = (1..=300).map(f64::from).collect();
        let at = |c| marker_indices(&xs, (1.0, 300.0), f64::ln, style_of(c).slot);
        let all: Vec<Vec<usize>> = [RAPID, CD, PCD, EXACT, PURPLE].into_iter().map(at).collect();
        for (i, a) in all.iter().enumerate() {
            assert!(a.len() >= 6, "{a:?}");
            for b in &all[i + 1..] {
                assert!(a.iter().all(|i| !b.contains(i)), "{a:?} {b:?}");
            }
        }
        // Short curves: a marker at every point.
        assert_eq!(marker_indices(&xs[..16], (0.5, 16.5), |x| x, 3), (0..16).collect::<Vec<_>>());
    }

    #[test]
    fn the_legend_wraps_into_centred_rows() {
        let entries: Vec<(String, (u8, u8, u8))> =
            ["RAPID", "CD-10", "PCD-10", "Exact"].iter().map(|l| (l.to_string(), RAPID)).collect();
        let wide = legend_rows(&entries, 1120);
        assert_eq!(wide.len(), 1);
        assert!(wide[0][0].1 > 100, "centred: {wide:?}");
        let narrow = legend_rows(&entries, 260);
        assert!(narrow.len() >= 2, "{narrow:?}");
        assert_eq!(narrow.iter().map(Vec::len).sum::<usize>(), 4);
        assert!(legend_rows(&[], 500).is_empty());
        assert_eq!(legend_height(0), 0);
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
        draw_loglog(&stem, "t", "x", "y", std::slice::from_ref(&odd)).unwrap();
        draw_xy(&stem, "t", "x", "y", &[odd]).unwrap();
    }
}

//! Plots as SVG (plotters' SVG backend): line charts, and the estimated
//! class profiles that `PLOT: TYPE = PLOT3; SERIES = ...;` asks for, as
//! Mplus users look at them.

use std::ops::Range;

use plotters::prelude::*;

use crate::results::Fit;
use mlmix_spec::{Model, PlotSpec, Role, Scale};

/// How a line of a chart is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// A coloured line with a marker at each point.
    LineAndMarkers,
    /// Markers alone (a scatter).
    Markers,
    /// A thin grey line (a reference, such as the diagonal).
    Reference,
}

/// One line of a chart: its name in the legend, its points and its style.
pub struct Line {
    /// Legend entry.
    pub name: String,
    /// Points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// How it is drawn.
    pub style: Style,
}

impl Line {
    /// A line drawn with markers.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Line {
            name: name.into(),
            points,
            style: Style::LineAndMarkers,
        }
    }
}

/// A line chart with markers, axes and a legend, as an SVG document.
pub fn line_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    lines: &[Line],
) -> Result<String, String> {
    chart(title, (x_label, y_label), lines, false)
}

/// A scatter of `points` (markers only) over a reference line (`line`,
/// such as the diagonal), square, on [0, 1] x [0, 1] when every value is
/// in it.
pub fn scatter_chart(
    title: &str,
    x_label: &str,
    y_label: &str,
    points: &Line,
    line: &Line,
) -> Result<String, String> {
    let lines = [
        Line {
            name: line.name.clone(),
            points: line.points.clone(),
            style: Style::Reference,
        },
        Line {
            name: points.name.clone(),
            points: points.points.clone(),
            style: Style::Markers,
        },
    ];
    chart(title, (x_label, y_label), &lines, true)
}

/// The axes' ranges: the data's, padded by 5%; `square`: one range for
/// both, [0, 1] when every value is in it.
fn ranges(lines: &[Line], square: bool) -> Option<(Range<f64>, Range<f64>)> {
    let xs = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
    let ys = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    if square {
        let (lo, hi) = span(xs.chain(ys))?;
        let (lo, hi) = if lo >= 0.0 && hi <= 1.0 {
            (0.0, 1.0)
        } else {
            (lo, hi)
        };
        return Some((lo..hi, lo..hi));
    }
    let (x0, x1) = span(xs)?;
    let (y0, y1) = span(ys)?;
    let pad = |a: f64, b: f64| if b > a { (b - a) * 0.05 } else { 0.5 };
    let (xp, yp) = (pad(x0, x1), pad(y0, y1));
    Some(((x0 - xp)..(x1 + xp), (y0 - yp)..(y1 + yp)))
}

/// Draws `lines` in their styles, with axes and a legend, as SVG.
fn chart(
    title: &str,
    (x_label, y_label): (&str, &str),
    lines: &[Line],
    square: bool,
) -> Result<String, String> {
    let (xr, yr) = ranges(lines, square).ok_or("nothing to plot")?;
    let size = if square { (560, 520) } else { (720, 480) };
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(xr, yr)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .draw()
            .map_err(|e| err(&e))?;
        let mut coloured = 0;
        for l in lines {
            let color = match l.style {
                Style::Reference => BLACK.mix(0.4),
                _ => {
                    coloured += 1;
                    Palette99::pick(coloured - 1).to_rgba()
                }
            };
            let pts = l.points.iter().copied();
            if l.style != Style::Markers {
                let width = if l.style == Style::Reference { 1 } else { 2 };
                chart
                    .draw_series(LineSeries::new(pts.clone(), color.stroke_width(width)))
                    .map_err(|e| err(&e))?
                    .label(l.name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(width))
                    });
            }
            if l.style != Style::Reference {
                let series = chart
                    .draw_series(pts.map(|p| Circle::new(p, 3, color.filled())))
                    .map_err(|e| err(&e))?;
                if l.style == Style::Markers {
                    series
                        .label(l.name.clone())
                        .legend(move |(x, y)| Circle::new((x + 9, y), 3, color.filled()));
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

fn span(v: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    v.filter(|x| x.is_finite()).fold(None, |acc, x| match acc {
        None => Some((x, x)),
        Some((a, b)) => Some((a.min(x), b.max(x))),
    })
}

/// The estimated class profiles of PLOT3: per class of the series'
/// class variable, each series variable's estimated mean (continuous) or
/// probability of its highest category (categorical: P(u = 1) for a binary
/// item), at its position. Err when there is nothing to draw (says why).
pub fn profiles(model: &Model, fit: &Fit, spec: &PlotSpec) -> Result<Vec<Line>, String> {
    let var = |name: &str| {
        model
            .variables
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(name))
    };
    let cv_of = |name: &str| match var(name).map(|v| &v.role) {
        Some(Role::Dependent(d)) => d.class_var,
        _ => None,
    };
    let Some(cv) = spec.series.iter().find_map(|(n, _)| cv_of(n)) else {
        return Err("no SERIES variable has class-specific parameters".into());
    };
    let cvar = &model.class_vars[cv];
    let mut lines = Vec::new();
    for k in 0..cvar.classes {
        let class = format!("{}#{}", cvar.name.to_ascii_uppercase(), k + 1);
        let mut points = Vec::new();
        for (name, x) in &spec.series {
            let up = name.to_ascii_uppercase();
            let categorical = matches!(var(name).map(|v| &v.role), Some(Role::Dependent(d)) if matches!(d.scale, Scale::Categorical { .. }));
            let y = if categorical {
                fit.probabilities
                    .iter()
                    .filter(|p| p.variable == up && (p.class == class || p.class.is_empty()))
                    .max_by_key(|p| p.category)
                    .map(|p| p.probability)
            } else {
                fit.parameters
                    .iter()
                    .find(|p| {
                        p.name == up
                            && (p.section == "Means" || p.section == "Intercepts")
                            && p.class.as_deref().is_none_or(|c| c == class)
                    })
                    .map(|p| p.estimate)
            };
            if let Some(y) = y {
                points.push((*x, y));
            }
        }
        let share = fit
            .class_proportions
            .iter()
            .find(|c| c.variable.eq_ignore_ascii_case(&cvar.name) && c.class == k + 1)
            .map(|c| c.proportion);
        let name = match share {
            Some(p) => format!("class {} ({:.1}%)", k + 1, 100.0 * p),
            None => format!("class {}", k + 1),
        };
        lines.push(Line::new(name, points));
    }
    if lines.iter().all(|l| l.points.is_empty()) {
        return Err("the SERIES variables have no means or category probabilities to draw".into());
    }
    Ok(lines)
}

/// PLOT3's SVG document for a fit.
pub fn profiles_svg(model: &Model, fit: &Fit, spec: &PlotSpec) -> Result<String, String> {
    let lines = profiles(model, fit, spec)?;
    let categorical = spec.series.iter().all(|(n, _)| {
        model.variables.iter().any(|v| {
            v.name.eq_ignore_ascii_case(n)
                && matches!(&v.role, Role::Dependent(d) if matches!(d.scale, Scale::Categorical { .. }))
        })
    });
    let y = if categorical {
        "probability (highest category)"
    } else {
        "estimated mean"
    };
    let title = if model.title.is_empty() {
        "Estimated class profiles".to_string()
    } else {
        format!("Estimated class profiles: {}", model.title)
    };
    line_chart(&title, "series", y, &lines)
}

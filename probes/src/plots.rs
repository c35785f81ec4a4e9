//! Per-layer curves with 95% interval bands, drawn with plotters as PNG and SVG (text in the Ubuntu font that
//! egui ships, so no system fonts are needed).

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{ProbeError, Result};

/// One curve: a value per layer with its interval.
pub struct Curve {
    /// Legend entry.
    pub name: String,
    /// `(layer, mean, low, high)`.
    pub points: Vec<(f64, f64, f64, f64)>,
}

/// A figure: curves over layers (or another x, named by `x_label`).
pub struct LayerPlot {
    /// Title.
    pub title: String,
    /// Label of the x axis.
    pub x_label: String,
    /// Label of the y axis.
    pub y_label: String,
    /// The curves.
    pub curves: Vec<Curve>,
}

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

fn register_font() {
    static FONT: Once = Once::new();
    FONT.call_once(|| {
        // The font is a valid TTF compiled into epaint_default_fonts; if it were not, text would be skipped.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT);
    });
}

fn draw_error(e: impl std::fmt::Display) -> ProbeError {
    ProbeError::InvalidInput(format!("drawing a plot failed: {e}"))
}

impl LayerPlot {
    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE).map_err(draw_error)?;
        let all = self.curves.iter().flat_map(|c| &c.points);
        let x_max = all.clone().map(|p| p.0).fold(1.0, f64::max);
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.2), hi.max(p.3)));
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let margin = ((hi - lo) * 0.05).max(0.01);
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_max, (lo - margin)..(hi + margin))
            .map_err(draw_error)?;
        chart.configure_mesh().x_desc(&self.x_label).y_desc(&self.y_label).draw().map_err(draw_error)?;
        for (curve, color) in self.curves.iter().zip(COLORS.iter().cycle()) {
            let band: Vec<(f64, f64)> =
                curve.points.iter().map(|p| (p.0, p.3)).chain(curve.points.iter().rev().map(|p| (p.0, p.2))).collect();
            chart.draw_series(std::iter::once(Polygon::new(band, color.mix(0.2)))).map_err(draw_error)?;
            chart
                .draw_series(LineSeries::new(curve.points.iter().map(|p| (p.0, p.1)), color.stroke_width(2)))
                .map_err(draw_error)?
                .label(&curve.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(draw_error)?;
        root.present().map_err(draw_error)
    }

    /// Writes `{stem}.png` and `{stem}.svg` and returns their paths (each written to a temporary file, then
    /// renamed).
    pub fn write(&self, stem: &Path) -> Result<[PathBuf; 2]> {
        register_font();
        let png = stem.with_extension("png");
        let svg = stem.with_extension("svg");
        // The bitmap backend picks its encoder from the file name, so temporary names keep the extension.
        let (png_tmp, svg_tmp) = (stem.with_extension("tmp.png"), stem.with_extension("tmp.svg"));
        self.draw(BitMapBackend::new(&png_tmp, (900, 540)).into_drawing_area())?;
        self.draw(SVGBackend::new(&svg_tmp, (900, 540)).into_drawing_area())?;
        for (from, to) in [(&png_tmp, &png), (&svg_tmp, &svg)] {
            std::fs::rename(from, to).map_err(models::files::at(to))?;
        }
        Ok([png, svg])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_and_an_svg_with_the_legend() {
        let dir = tempfile::tempdir().unwrap();
        let plot = LayerPlot {
            title: "accuracy".into(),
            x_label: "layer".into(),
            y_label: "test accuracy".into(),
            curves: vec![Curve {
                name: "trained model".into(),
                points: (0..5).map(|l| (l as f64, 0.5 + 0.1 * l as f64, 0.45, 0.95)).collect(),
            }],
        };
        let [png, svg] = plot.write(&dir.path().join("accuracy")).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.contains("trained model") && text.contains("<polygon"), "{}", &text[..200.min(text.len())]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary files are left");
    }
}

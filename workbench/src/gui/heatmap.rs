//! A heatmap widget: a grid of cells coloured by value, with labels in the cells when they fit and a tooltip
//! naming the cell under the pointer. Used for the logit lens, attention patterns and neuron activations.

use egui::{Color32, Rect, Sense, Ui, Vec2};

/// What a heatmap shows.
pub struct Heatmap<'a> {
    /// Rows, then columns.
    pub rows: usize,
    /// Columns.
    pub columns: usize,
    /// The value of a cell, in [0, 1] for sequential maps or [-1, 1] for diverging ones.
    pub value: &'a dyn Fn(usize, usize) -> f32,
    /// Text shown in a cell's tooltip.
    pub label: &'a dyn Fn(usize, usize) -> String,
    /// Short text drawn in a cell when it is wide enough.
    pub cell_text: Option<&'a dyn Fn(usize, usize) -> String>,
    /// Whether values are signed (blue below zero, red above).
    pub diverging: bool,
    /// Cell size in points.
    pub cell: Vec2,
}

/// The colour of `value`: white to orange for [0, 1], blue through white to red for [-1, 1].
pub fn colour(value: f32, diverging: bool) -> Color32 {
    let v = if value.is_finite() { value.clamp(-1.0, 1.0) } else { 0.0 };
    let mix = |to: (f32, f32, f32), t: f32| {
        let channel = |c: f32| (255.0 + (c - 255.0) * t).round() as u8;
        Color32::from_rgb(channel(to.0), channel(to.1), channel(to.2))
    };
    if diverging && v < 0.0 {
        mix((40.0, 90.0, 220.0), -v)
    } else if diverging {
        mix((220.0, 40.0, 40.0), v)
    } else {
        mix((230.0, 90.0, 0.0), v.max(0.0))
    }
}

impl Heatmap<'_> {
    /// Draws the heatmap; returns the cell under the pointer, if any.
    pub fn show(&self, ui: &mut Ui) -> Option<(usize, usize)> {
        let size = Vec2::new(self.cell.x * self.columns as f32, self.cell.y * self.rows as f32);
        let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
        let painter = ui.painter_at(rect);
        let font = egui::FontId::monospace((self.cell.y * 0.55).clamp(6.0, 12.0));
        let cell_text = self.cell_text.filter(|_| self.cell.x >= 28.0 && self.cell.y >= 12.0);
        for row in 0..self.rows {
            for column in 0..self.columns {
                let min = rect.min + Vec2::new(column as f32 * self.cell.x, row as f32 * self.cell.y);
                let cell = Rect::from_min_size(min, self.cell);
                painter.rect_filled(cell, 0.0, colour((self.value)(row, column), self.diverging));
                if let Some(cell_text) = cell_text {
                    let mut text = cell_text(row, column);
                    text.truncate(text.char_indices().nth(6).map_or(text.len(), |(i, _)| i));
                    painter.text(cell.center(), egui::Align2::CENTER_CENTER, text, font.clone(), Color32::BLACK);
                }
            }
        }
        let hovered = response.hover_pos().and_then(|pos| {
            let offset = pos - rect.min;
            let (column, row) = ((offset.x / self.cell.x) as usize, (offset.y / self.cell.y) as usize);
            (row < self.rows && column < self.columns).then_some((row, column))
        });
        if let Some((row, column)) = hovered {
            response.on_hover_text((self.label)(row, column));
        }
        hovered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_run_from_white_to_the_end_colours() {
        assert_eq!(colour(0.0, false), Color32::WHITE);
        assert_eq!(colour(1.0, false), Color32::from_rgb(230, 90, 0));
        assert_eq!(colour(-1.0, true), Color32::from_rgb(40, 90, 220));
        assert_eq!(colour(f32::NAN, true), Color32::WHITE);
        // Half-way is the mean of white and the end colour.
        assert_eq!(colour(0.5, true), Color32::from_rgb(238, 148, 148));
    }
}

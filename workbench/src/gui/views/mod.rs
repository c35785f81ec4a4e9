//! One module per view of the desktop app.

pub mod applied_set;
pub mod benchmarks;
pub mod experiments;
pub mod features;
pub mod inspector;
pub mod model;
pub mod neurons;
pub mod probes;
pub mod repair;

/// A text field with a label before it, tied together so tests and screen readers find the field by the label.
pub fn labelled_field(ui: &mut egui::Ui, label: &str, text: &mut String, width: f32) -> egui::Response {
    ui.horizontal(|ui| {
        let label = ui.label(label);
        ui.add(egui::TextEdit::singleline(text).desired_width(width)).labelled_by(label.id)
    })
    .inner
}

/// A number field with a label before it.
pub fn labelled_number<N: egui::emath::Numeric>(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut N,
    range: std::ops::RangeInclusive<N>,
) -> egui::Response {
    ui.horizontal(|ui| {
        let label = ui.label(label);
        ui.add(egui::DragValue::new(value).range(range)).labelled_by(label.id)
    })
    .inner
}

/// A button that is greyed out while a job runs.
pub fn run_button(ui: &mut egui::Ui, busy: bool, text: &str) -> bool {
    ui.add_enabled(!busy, egui::Button::new(text)).clicked()
}

/// A token's text made visible: newlines as ⏎, leading spaces as ·.
pub fn visible_token(text: &str) -> String {
    text.replace('\n', "⏎").replace('\t', "⇥").replace(' ', "·")
}

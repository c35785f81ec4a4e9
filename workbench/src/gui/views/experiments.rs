//! The Experiments view: open a RON spec and run it (progress in the status bar), browse past runs with their
//! report and plots, and export the model with the applied repairs as a Hugging Face folder and/or GGUF.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{labelled_field, run_button};
use crate::gui::job::Job;
use crate::gui::shared::{Shared, View};

/// What the view's jobs return.
pub enum Found {
    /// A spec ran into this folder.
    Run(PathBuf),
    /// The model was exported; the text says where.
    Exported(String),
}

/// Settings and state of the Experiments view.
#[derive(Serialize, Deserialize)]
#[serde(default)]
pub struct ExperimentsView {
    /// The spec to run.
    pub spec: String,
    /// Where runs go.
    pub runs: String,
    /// The run being browsed.
    pub selected: Option<PathBuf>,
    /// Export: Hugging Face folder (empty: none).
    pub hf_dir: String,
    /// Export: GGUF file (empty: none).
    pub gguf_file: String,
    /// Export: GGUF tensor type.
    pub gguf_type: String,
    /// What the last export wrote.
    #[serde(skip)]
    pub exported: Option<String>,
    #[serde(skip)]
    browsed: Option<Browsed>,
    /// The running job.
    #[serde(skip)]
    job: Option<Job<Found>>,
}

impl Default for ExperimentsView {
    fn default() -> Self {
        ExperimentsView {
            spec: "experiments/specs/default.ron".into(),
            runs: "runs".into(),
            selected: None,
            hf_dir: String::new(),
            gguf_file: String::new(),
            gguf_type: "q8_0".into(),
            exported: None,
            browsed: None,
            job: None,
        }
    }
}

/// A past run read from disk.
struct Browsed {
    dir: PathBuf,
    report: String,
    plots: Vec<PathBuf>,
}

/// Run folders under `runs`, newest first (their names start with a time stamp).
pub fn past_runs(runs: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .map(|entries| {
            entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.join("spec.ron").exists()).collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs.reverse();
    dirs
}

fn read_run(dir: &Path) -> Browsed {
    let report = std::fs::read_to_string(dir.join("report.md"))
        .unwrap_or_else(|_| "(no report yet: the run has not finished)".into());
    let mut plots: Vec<PathBuf> = walk(dir).into_iter().filter(|p| p.extension().is_some_and(|e| e == "png")).collect();
    plots.sort();
    Browsed { dir: dir.to_path_buf(), report, plots }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(|e| e.ok())
        .flat_map(|e| if e.path().is_dir() { walk(&e.path()) } else { vec![e.path()] })
        .collect()
}

impl ExperimentsView {
    /// Takes what the view's job returned: a finished run is browsed.
    pub fn poll(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        for found in shared.poll(ctx, View::Experiments, &mut self.job) {
            match found {
                Found::Run(dir) => {
                    self.selected = Some(dir);
                    self.browsed = None;
                }
                Found::Exported(text) => self.exported = Some(text),
            }
        }
    }

    /// The screenshot tour's small job: a two-step spec (logit lens and perplexity on a little code), whose report
    /// and plot the view then shows.
    pub fn demo(&mut self, ctx: &egui::Context, shared: &mut Shared, stage: usize) -> bool {
        if stage > 0 {
            return false;
        }
        let spec = std::env::temp_dir().join("workbench-tour.ron");
        let text = format!(
            "(name: \"tour\", model: \"{}\", device: \"cpu\", steps: [\n    Lens(files: 2, max_tokens: 64),\n    Perplexity(files: 1, tokens: 128),\n])\n",
            models::catalogue::DEFAULT_MODEL
        );
        if let Err(err) = std::fs::write(&spec, text) {
            shared.failure = Some((View::Experiments, format!("{}: {err}", spec.display())));
            return false;
        }
        self.spec = spec.display().to_string();
        self.run_spec(ctx, shared);
        self.job.is_some()
    }

    /// Starts running the spec the view names.
    pub fn run_spec(&mut self, ctx: &egui::Context, shared: &mut Shared) {
        let (spec, runs) = (PathBuf::from(self.spec.trim()), PathBuf::from(self.runs.trim()));
        self.job = shared.start(ctx, View::Experiments, "running the spec", move |job| {
            let dir = experiments::runner::create_run(&spec, &runs)?;
            experiments::runner::run(&dir, job.progress())?;
            Ok(Found::Run(dir))
        });
    }

    /// Draws the view.
    pub fn show(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.heading("Experiment specs");
        shared.error_panel(ui, View::Experiments);
        ui.horizontal(|ui| {
            labelled_field(ui, "Spec", &mut self.spec, 320.0);
            labelled_field(ui, "Runs folder", &mut self.runs, 120.0);
            if run_button(ui, shared.busy(), "Run spec") {
                self.run_spec(ui.ctx(), shared);
            }
        });
        self.export(ui, shared);
        ui.separator();
        self.browse(ui);
    }

    fn export(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        ui.heading("Export the model with the applied repairs");
        ui.horizontal(|ui| {
            labelled_field(ui, "Hugging Face folder", &mut self.hf_dir, 200.0);
            labelled_field(ui, "GGUF file", &mut self.gguf_file, 200.0);
            labelled_field(ui, "GGUF type", &mut self.gguf_type, 50.0);
            if run_button(ui, shared.busy(), "Export") {
                let (hf, gguf, kind) =
                    (self.hf_dir.trim().to_string(), self.gguf_file.trim().to_string(), self.gguf_type.clone());
                self.job = shared.start_with_model(ui.ctx(), View::Experiments, "exporting", move |model, _| {
                    if hf.is_empty() && gguf.is_empty() {
                        anyhow::bail!("name a Hugging Face folder and/or a GGUF file");
                    }
                    let hf_path = (!hf.is_empty()).then(|| PathBuf::from(&hf));
                    let gguf_path = (!gguf.is_empty()).then(|| PathBuf::from(&gguf));
                    let gguf_target = gguf_path.as_deref().map(|path| (path, kind.as_str()));
                    // The applied repairs are in the model already.
                    experiments::ops::export::write_model(model, None, hf_path.as_deref(), gguf_target)?;
                    let written: Vec<String> = [
                        hf_path.map(|p| format!("Hugging Face folder {}", p.display())),
                        gguf_path.map(|p| format!("GGUF {}", p.display())),
                    ]
                    .into_iter()
                    .flatten()
                    .collect();
                    Ok(Found::Exported(format!("wrote {}", written.join(" and "))))
                });
            }
        });
        if let Some(text) = &self.exported {
            ui.label(text.as_str());
        }
    }

    fn browse(&mut self, ui: &mut egui::Ui) {
        ui.heading("Past runs");
        let runs = past_runs(Path::new(self.runs.trim()));
        if runs.is_empty() {
            ui.label("No runs yet.");
        }
        egui::ScrollArea::vertical().id_salt("runs").max_height(140.0).show(ui, |ui| {
            for dir in &runs {
                let name = dir.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
                if ui.selectable_label(self.selected.as_ref() == Some(dir), name).clicked() {
                    self.selected = Some(dir.clone());
                }
            }
        });
        let Some(selected) = &self.selected else { return };
        if self.browsed.as_ref().is_none_or(|b| &b.dir != selected) {
            self.browsed = Some(read_run(selected));
        }
        let Some(browsed) = &self.browsed else { return };
        ui.heading(format!("Report of {}", browsed.dir.display()));
        ui.add(egui::Label::new(egui::RichText::new(&browsed.report).monospace()).wrap());
        for plot in &browsed.plots {
            ui.label(plot.display().to_string());
            let uri = format!("file://{}", std::fs::canonicalize(plot).unwrap_or_else(|_| plot.clone()).display());
            ui.add(egui::Image::new(uri).max_width(640.0));
        }
    }
}

//! `workbench gui --screenshots DIR`: once the model is loaded and no job runs, shows each view in turn, runs a
//! small job in it so it shows results (a probe curve, a neuron's examples and function, a previewed repair, a
//! benchmark table, a run's report), saves a screenshot of the real window as `DIR/<n>-<view>.png`, and closes
//! the app.

use std::path::PathBuf;

use super::shared::View;

/// Frames to wait on a view before its screenshot, so it is laid out and its images are loaded.
const SETTLE_FRAMES: u32 = 8;

/// Frames to wait for a requested screenshot before asking again (a request can be lost while the window maps).
const SCREENSHOT_PATIENCE: u32 = 120;

/// How often the window redraws while a job runs: the job's progress asks for redraws too, and redrawing every
/// frame with software OpenGL would take the cores from the job.
const BUSY_REDRAW: std::time::Duration = std::time::Duration::from_millis(250);

/// The tour through the views.
pub struct Tour {
    dir: PathBuf,
    next: usize,
    /// The next stage of the view's small job, until the view has no more.
    demo_stage: Option<usize>,
    frames: u32,
    requested: bool,
    started: std::time::Instant,
}

/// What the app does in this frame of the tour.
pub struct TourStep {
    /// The view to show.
    pub view: View,
    /// Start this stage of the view's small job (then say whether one started).
    pub demo: Option<usize>,
}

impl Tour {
    /// A tour saving into `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Tour { dir, next: 0, demo_stage: Some(0), frames: 0, requested: false, started: std::time::Instant::now() }
    }

    /// Whether the stage of the small job the last step asked for started; when none did, the view is done.
    pub fn demo_started(&mut self, started: bool) {
        self.demo_stage = self.demo_stage.filter(|_| started).map(|stage| stage + 1);
    }

    /// Advances the tour by one frame; returns the view to show, and the job stage to start there.
    pub fn step(&mut self, ctx: &egui::Context, busy: bool) -> Option<TourStep> {
        if busy {
            ctx.request_repaint_after(BUSY_REDRAW);
            return None;
        }
        ctx.request_repaint();
        let view = *View::ALL.get(self.next)?;
        if let Some(stage) = self.demo_stage {
            self.log(&format!("{}: job stage {stage}", view.title()));
            return Some(TourStep { view, demo: Some(stage) });
        }
        let shot = ctx.input(|i| {
            i.events.iter().find_map(|e| match e {
                egui::Event::Screenshot { image, .. } => Some(image.clone()),
                _ => None,
            })
        });
        if let Some(image) = shot {
            let name = format!("{}-{}.png", self.next + 1, view.title().to_lowercase().replace(' ', "-"));
            match save_png(&self.dir.join(&name), &image) {
                Ok(()) => self.log(&format!("saved {name}")),
                Err(err) => self.log(&format!("screenshot of {}: {err:#}", view.title())),
            }
            self.next += 1;
            self.frames = 0;
            self.requested = false;
            self.demo_stage = Some(0);
            if self.next == View::ALL.len() {
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                return None;
            }
            return Some(TourStep { view: View::ALL[self.next], demo: None });
        }
        self.frames += 1;
        if self.frames >= SETTLE_FRAMES + SCREENSHOT_PATIENCE && self.requested {
            self.log(&format!("{}: no screenshot came, asking again", view.title()));
            (self.frames, self.requested) = (SETTLE_FRAMES, false);
        }
        if self.frames >= SETTLE_FRAMES && !self.requested {
            ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(egui::UserData::default()));
            self.requested = true;
        }
        Some(TourStep { view, demo: None })
    }

    /// Says on standard error where the tour is, with the seconds since it began, so a slow or stuck tour shows
    /// where it stands.
    fn log(&self, what: &str) {
        eprintln!("[tour {:6.1} s] {what}", self.started.elapsed().as_secs_f64());
    }
}

fn save_png(path: &std::path::Path, image: &egui::ColorImage) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let [width, height] = image.size;
    let pixels: Vec<u8> = image.pixels.iter().flat_map(|p| p.to_array()).collect();
    let buffer = image::RgbaImage::from_raw(width as u32, height as u32, pixels)
        .ok_or_else(|| anyhow::anyhow!("the screenshot's size does not match its pixels"))?;
    let temporary = path.with_extension("png.tmp");
    buffer.save_with_format(&temporary, image::ImageFormat::Png)?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

//! `workbench probe` and `workbench lens`: arguments into the probe and lens operations' settings.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;
use experiments::ops::lens::LensSettings;
use experiments::ops::probe::ProbeSettings;
use probes::protocol::ProbeKind;
use probes::tasks::ProbeTask;

use super::args::{output_dir, run_operation, ModelArgs};

/// The probe to fit.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ProbeChoice {
    /// Logistic regression, batched tch trainer.
    Logistic,
    /// Logistic regression, linfa-logistic (slow).
    LogisticLinfa,
    /// Ridge regression on the label as a number.
    Ridge,
}

/// `workbench probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// What to probe for.
    #[arg(
        long,
        default_value = "bracket-depth",
        value_parser = PossibleValuesParser::new(ProbeTask::ALL.map(ProbeTask::name)).try_map(|s| s.parse::<ProbeTask>())
    )]
    task: ProbeTask,
    /// The JSONL file of a user task: {"text", "start", "end", "label"} per line, spans in characters.
    #[arg(long)]
    spans: Option<PathBuf>,
    /// Layers whose residual stream (hook_resid_post) is probed: `all`, or comma-separated numbers.
    #[arg(long, default_value = "all")]
    layers: String,
    /// The probe.
    #[arg(long, value_enum, default_value = "logistic")]
    probe: ProbeChoice,
    /// How many CPython standard-library files to read (a fixed, sorted list), or programs to generate.
    #[arg(long, default_value_t = 40)]
    files: usize,
    /// Tokens read per file.
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Save the activation dataset to this safetensors file.
    #[arg(long)]
    save_activations: Option<PathBuf>,
    /// Store saved activations as f16 (half the size).
    #[arg(long)]
    f16: bool,
    /// Probe the listed layers in units of this many, each with a pass and cold-started fits of its own (the units
    /// a spec step splits into on a cluster).
    #[arg(long)]
    layers_per_unit: Option<usize>,
    /// Norm of the program-state steering vector, as a multiple of the mean residual norm at the best layer.
    #[arg(long, default_value_t = 0.5)]
    steering_scale: f64,
    /// Seeds (one split and control task each), from --seed on.
    #[arg(long, default_value_t = 3)]
    seeds: usize,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also probe a randomly initialised model of the same architecture.
    #[arg(long)]
    random_init: bool,
    /// Folder for results.json, results.csv and the plots (default: runs/<time>-probe-<task>).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The layers named by `--layers`: `None` for `all`.
fn parse_layers(spec: &str) -> Result<Option<Vec<usize>>> {
    if spec == "all" {
        return Ok(None);
    }
    spec.split(',')
        .map(|l| l.trim().parse().with_context(|| format!("--layers: {l:?} is not a layer number or `all`")))
        .collect::<Result<_>>()
        .map(Some)
}

impl ProbeArgs {
    /// The operation's settings.
    fn settings(&self) -> Result<ProbeSettings> {
        Ok(ProbeSettings {
            task: self.task,
            spans: self.spans.clone(),
            layers: parse_layers(&self.layers)?,
            probe: match self.probe {
                ProbeChoice::Logistic => ProbeKind::Logistic,
                ProbeChoice::LogisticLinfa => ProbeKind::LogisticLinfa,
                ProbeChoice::Ridge => ProbeKind::Ridge,
            },
            files: self.files,
            max_tokens: self.max_tokens,
            seeds: self.seeds,
            random_init: self.random_init,
            steering_scale: self.steering_scale,
            save_activations: self.save_activations.clone(),
            f16: self.f16,
            layers_per_unit: self.layers_per_unit,
        })
    }
}

/// Runs `workbench probe`.
pub fn probe(args: &ProbeArgs) -> Result<()> {
    let settings = args.settings()?;
    let model = args.model.load()?;
    let out = output_dir(&args.out, &format!("probe-{}", args.task))?;
    run_operation(&settings, &model, args.seed, &out, args.model.json)
}

/// `workbench lens`.
#[derive(Debug, Args)]
pub struct LensArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// How many CPython standard-library files to read.
    #[arg(long, default_value_t = 10)]
    files: usize,
    /// Tokens read per file.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Folder for results.json and the plot (default: runs/<time>-lens).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `workbench lens`.
pub fn lens(args: &LensArgs) -> Result<()> {
    let model = args.model.load()?;
    let settings = LensSettings { files: args.files, max_tokens: args.max_tokens };
    run_operation(&settings, &model, 0, &output_dir(&args.out, "lens")?, args.model.json)
}

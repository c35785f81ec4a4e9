//! `workbench repair` (one case with MINT or a baseline, a JSONL file of cases as a set, or the whole study) and
//! `workbench export` (a model with a patch set as a Hugging Face folder and/or GGUF).

use std::path::PathBuf;

use anyhow::{bail, Context as _, Result};
use clap::{Args, ValueEnum};
use experiments::ops::export::write_model;
use experiments::ops::repair::RepairSettings;
use experiments::ops::repair_set::{RepairSetSettings, SetMode};
use experiments::repair_study::{BenchmarkSpec, RepairStudySpec};
use repair::patchset::PatchSet;
use repair::{Example, FeatureConfig, GuardConfig, JointConfig, Method, Ranking, RepairCase, RepairConfig};

use super::args::{output_dir, run_operation, run_operation_report, ModelArgs};

/// Neuron rankings.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RankingChoice {
    /// Direct effect on the logit difference.
    Direct,
    /// Direct effect weighted by selectivity (fires here far more than on unrelated code).
    Selective,
    /// Attribution patching (direct and indirect effects).
    Attribution,
}

/// `workbench repair`.
#[derive(Debug, Args)]
pub struct RepairArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The prompt of one case.
    #[arg(long, requires = "desired")]
    prompt: Option<String>,
    /// What the model should write after the prompt.
    #[arg(long)]
    desired: Option<String>,
    /// A held-out variant prompt with the same desired continuation (repeatable).
    #[arg(long)]
    variant: Vec<String>,
    /// A JSONL file of cases ({"prompt", "desired", "variants": [{"prompt", "desired"}]}), repaired as a set:
    /// jointly, with the guard, unless --lifelong or --one-by-one says otherwise.
    #[arg(long, conflicts_with = "prompt")]
    cases: Option<PathBuf>,
    /// Repair the cases together in one guarded joint solve (the default for --cases).
    #[arg(long, conflicts_with_all = ["lifelong", "one_by_one", "study"])]
    joint: bool,
    /// Repair the cases one at a time into a growing patch set, each solved with the earlier ones and guarded.
    #[arg(long, conflicts_with_all = ["one_by_one", "study"])]
    lifelong: bool,
    /// Repair each case alone with --method, on top of the earlier ones (the old behaviour: repairs undo each
    /// other; a warning shows what all of them together did).
    #[arg(long, conflicts_with = "study")]
    one_by_one: bool,
    /// The reference code of a set's preservation statistics, as RON: `(windows: 64, tokens: 128, anchors: 0,
    /// covariance: true)`, the fields of a RepairSet step's `reference`.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// The guard refuses a set step that changes more than this share of its windows' top-1 tokens.
    #[arg(long, default_value_t = GuardConfig::default().max_top1_loss)]
    guard_top1_loss: f64,
    /// The guard refuses a set step after which the whole set would have changed more than this share of its
    /// windows' top-1 tokens.
    #[arg(long, default_value_t = GuardConfig::default().max_total_top1_loss)]
    guard_total_top1_loss: f64,
    /// Run the repair study (mined cases, every method, one table) instead.
    #[arg(long, conflicts_with_all = ["prompt", "cases"])]
    study: bool,
    /// Cases per family in the study: API names, lines, HumanEval.
    #[arg(long, num_args = 3, value_names = ["API", "LINES", "HUMANEVAL"], default_values_t = [20, 15, 15])]
    study_cases: Vec<usize>,
    /// The study's whole settings from a RON file: the fields of a spec's `Repair(...)` step, written
    /// `(api: 2, methods: [Mint], ...)`; the other --study-* options and --margin, --max-edits, --ranking are
    /// then not used.
    #[arg(long, requires = "study")]
    study_settings: Option<PathBuf>,
    /// Methods compared in the study, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    study_methods: Vec<Method>,
    /// HumanEval problems run before and after the study's MINT repairs in a row (0: none).
    #[arg(long, default_value_t = 16)]
    sequential_humaneval: usize,
    /// Method of a single case or of --one-by-one (mint, mint-gradient, random-neurons, fine-tune-layer,
    /// rank-one, mint-published, gated, mint-features).
    #[arg(long, default_value = "mint")]
    method: String,
    /// Neuron ranking.
    #[arg(long, value_enum, default_value = "selective")]
    ranking: RankingChoice,
    /// Logit margin the desired token must reach.
    #[arg(long, default_value_t = 1.0)]
    margin: f32,
    /// Most edits (neurons) per case.
    #[arg(long, default_value_t = 4)]
    max_edits: usize,
    /// A transcoder (SAELens folder, `workbench features train --transcoder L`) whose features carry the repair:
    /// for --method mint-features, and for a set (--joint, --lifelong), which is then solved through its features.
    #[arg(long)]
    transcoder: Option<PathBuf>,
    /// Apply this patch set first (repairs build on it, and the saved set includes it).
    #[arg(long)]
    apply: Option<PathBuf>,
    /// Folder for results.json and patches.ron (default: runs/<time>-repair).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `workbench export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The patch set to apply before writing.
    #[arg(long)]
    patches: Option<PathBuf>,
    /// Write a Hugging Face folder here (must not exist).
    #[arg(long)]
    hf: Option<PathBuf>,
    /// Write a GGUF file here.
    #[arg(long)]
    gguf: Option<PathBuf>,
    /// GGUF tensor type: f32, f16 or q8_0.
    #[arg(long, default_value = "f32")]
    gguf_type: String,
}

fn config(args: &RepairArgs) -> RepairConfig {
    let mut config = RepairConfig::default();
    config.mint.margin = args.margin;
    config.mint.max_edits = args.max_edits;
    config.gradient.margin = args.margin;
    config.mint.ranking = match args.ranking {
        RankingChoice::Direct => Ranking::Direct,
        RankingChoice::Selective => Ranking::Selective,
        RankingChoice::Attribution => Ranking::Attribution,
    };
    config.features = features(args);
    config
}

fn features(args: &RepairArgs) -> FeatureConfig {
    FeatureConfig { transcoder: args.transcoder.clone(), ..Default::default() }
}

fn cases(args: &RepairArgs) -> Result<Vec<RepairCase>> {
    match (&args.prompt, &args.desired, &args.cases) {
        (Some(prompt), Some(desired), _) => Ok(vec![RepairCase {
            family: "user".into(),
            id: "command-line".into(),
            example: Example { prompt: prompt.clone(), desired: desired.clone() },
            variants: args.variant.iter().map(|p| Example { prompt: p.clone(), desired: desired.clone() }).collect(),
        }]),
        (_, _, Some(_)) => Ok(Vec::new()),
        _ => bail!("give --prompt and --desired, --cases FILE.jsonl, or --study"),
    }
}

/// Runs `workbench repair`: the study, or the repairs of the given cases.
pub fn repair(args: &RepairArgs) -> Result<()> {
    let model = args.model.load()?;
    let out = output_dir(&args.out, "repair")?;
    if let Some(path) = &args.study_settings {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let spec: RepairStudySpec = experiments::spec::parse_ron(&text, &path.display().to_string())?;
        return run_operation(&spec, &model, 0, &out, args.model.json);
    }
    if args.study {
        let defaults = RepairStudySpec::default();
        let spec = RepairStudySpec {
            api: args.study_cases[0],
            lines: args.study_cases[1],
            humaneval: args.study_cases[2],
            methods: if args.study_methods.is_empty() { defaults.methods.clone() } else { args.study_methods.clone() },
            config: config(args),
            benchmarks: BenchmarkSpec {
                sequential_humaneval_problems: args.sequential_humaneval,
                ..defaults.benchmarks.clone()
            },
            ..defaults
        };
        return run_operation(&spec, &model, 0, &out, args.model.json);
    }
    let as_set = args.joint || args.lifelong || (args.cases.is_some() && !args.one_by_one);
    if as_set {
        let joint = JointConfig { margin: args.margin, ..Default::default() };
        let reference = match &args.reference {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                experiments::spec::parse_ron(&text, &path.display().to_string())?
            }
            None => Default::default(),
        };
        let settings = RepairSetSettings {
            cases: cases(args)?,
            cases_file: args.cases.clone(),
            mode: if args.lifelong { SetMode::Lifelong } else { SetMode::Joint },
            joint,
            features: features(args),
            guard: GuardConfig {
                max_top1_loss: args.guard_top1_loss,
                max_total_top1_loss: args.guard_total_top1_loss,
                ..Default::default()
            },
            reference,
            apply: args.apply.clone(),
            ..Default::default()
        };
        return run_operation(&settings, &model, 0, &out, args.model.json);
    }
    let settings = RepairSettings {
        cases: cases(args)?,
        cases_file: args.cases.clone(),
        method: args.method.parse()?,
        config: config(args),
        apply: args.apply.clone(),
        ..Default::default()
    };
    let report = run_operation_report(&settings, &model, 0, &out, args.model.json)?;
    if let Some(together) = report.together.filter(|t| t.still_right < t.applied || t.specificity.top1_unchanged < 0.97)
    {
        eprintln!(
            "warning: these {} repairs were made one after another and undo each other: with all applied, {} of their cases are right and {:.1}% of unrelated top-1 tokens changed. Repair a file of cases as a set (drop --one-by-one) to keep them together.",
            together.applied,
            together.still_right,
            100.0 * (1.0 - together.specificity.top1_unchanged)
        );
    }
    Ok(())
}

/// Runs `workbench export`.
pub fn export(args: &ExportArgs) -> Result<()> {
    if args.hf.is_none() && args.gguf.is_none() {
        bail!("give --hf DIR and/or --gguf FILE");
    }
    let model = args.model.load()?;
    let patches = match &args.patches {
        Some(path) => Some(PatchSet::load(path).with_context(|| format!("reading {}", path.display()))?),
        None => None,
    };
    let gguf = args.gguf.as_deref().map(|path| (path, args.gguf_type.as_str()));
    write_model(&model, patches.as_ref(), args.hf.as_deref(), gguf)?;
    if let Some(dir) = &args.hf {
        println!("Hugging Face folder: {}", dir.display());
    }
    if let Some(path) = &args.gguf {
        println!("GGUF: {}", path.display());
    }
    Ok(())
}

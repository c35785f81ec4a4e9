//! The `workbench` command line: the parser and its dispatch. Each subcommand lives in its own file, fills an
//! operation's settings from its arguments (`experiments::ops`) and prints the report.

mod args;
mod cache;
mod cluster;
mod eval;
mod features;
mod generate;
mod info;
mod inspect;
mod interpret;
mod model_list;
mod probe;
mod repair;
mod run;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// A workbench for interpretability and repair of code language models.
#[derive(Debug, Parser)]
#[command(name = "workbench", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the model's architecture, sizes and memory.
    Info(args::ModelArgs),
    /// List the models there are to load, offline: the catalogue, the Hugging Face cache, GGUF files in folders.
    Models(model_list::ModelsArgs),
    /// Continue a prompt.
    Generate(generate::GenerateArgs),
    /// Per position: the top next tokens, and the logit-lens top-1 at every layer.
    Inspect(inspect::InspectArgs),
    /// run_with_cache from the command line: chosen hook points (TransformerLens names, globs) of texts, to a
    /// safetensors file.
    Cache(cache::CacheArgs),
    /// Where is a property of code represented? Linear probes per layer, with controls, over CPython files.
    Probe(probe::ProbeArgs),
    /// Logit lens over CPython files: per layer, how often the early read-out is already the final top-1 and
    /// the true next token.
    Lens(probe::LensArgs),
    /// FIND-style function interpretation: the suite, interpreters and scores; neurons as functions; neuron pages.
    Interpret(interpret::InterpretArgs),
    /// Benchmarks: HumanEval (sandboxed), line completion and perplexity on held-out code.
    Eval(eval::EvalArgs),
    /// Sparse dictionaries: train a transcoder or sparse autoencoder (SAELens's format), measure one.
    Features(features::FeaturesArgs),
    /// MINT repair: rank neurons, patch one or two so the model writes the desired continuation, measure side
    /// effects, save the patch set; or the repair study of MINT beside the baselines.
    Repair(repair::RepairArgs),
    /// Write the model (with a patch set applied) as a Hugging Face folder and/or a GGUF file.
    Export(repair::ExportArgs),
    /// Run an experiment spec (RON) into runs/<time>-<name>/, or resume an interrupted run.
    Run(run::RunArgs),
    /// Where a run submitted with `run --slurm` stands: per step, shards done, waiting, running, failed (with the
    /// last lines of their logs).
    Status(cluster::StatusArgs),
    /// Open the desktop app.
    Gui(run::GuiArgs),
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info(args) => info::info(&args),
        Command::Models(args) => model_list::models(&args),
        Command::Generate(args) => generate::generate(&args),
        Command::Inspect(args) => inspect::inspect(&args),
        Command::Cache(args) => cache::cache(&args),
        Command::Probe(args) => probe::probe(&args),
        Command::Lens(args) => probe::lens(&args),
        Command::Interpret(args) => interpret::run(&args.command),
        Command::Eval(args) => eval::run(&args.command),
        Command::Features(args) => features::run(&args.command),
        Command::Repair(args) => repair::repair(&args),
        Command::Export(args) => repair::export(&args),
        Command::Run(args) => run::run_spec(&args),
        Command::Status(args) => cluster::status(&args),
        Command::Gui(args) => run::gui(args),
    }
}

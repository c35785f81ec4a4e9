//! `workbench interpret`: the FIND suite and its scores per interpreter, a neuron interpreted as a function, and
//! neuron pages.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use experiments::ops::interpret::InterpretSettings;
use experiments::ops::pages::PagesSettings;
use find::interpreters::InterpreterKind;
use find::neurons::UnitNumeric;
use find::session::{Budget, Session};
use find::units::Neurons;

use super::args::{interpreter_parser, output_dir, run_operation, ModelArgs, PageFilesArgs, UnitFunctionArgs};

/// `workbench interpret`.
#[derive(Debug, Args)]
pub struct InterpretArgs {
    #[command(subcommand)]
    pub command: InterpretCommand,
}

/// What to interpret.
#[derive(Debug, Subcommand)]
pub enum InterpretCommand {
    /// Generate (or read) the suite and score interpreters on it, per category.
    Suite(SuiteArgs),
    /// Interpret one neuron as a numeric function of a number in a prompt.
    Neuron(NeuronArgs),
    /// Top-activating examples, descriptions and simulation scores of neurons, as JSON and Markdown pages.
    Pages(PagesArgs),
}

/// `interpret suite`.
#[derive(Debug, Args)]
pub struct SuiteArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Read this suite file instead of generating one.
    #[arg(long)]
    suite: Option<PathBuf>,
    /// Numeric functions to generate.
    #[arg(long, default_value_t = 1000)]
    numeric: usize,
    /// String functions to generate.
    #[arg(long, default_value_t = 1000)]
    strings: usize,
    /// Seed of the suite and the interpreters.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Interpreters to score (repeatable).
    #[arg(long = "interpreter", value_parser = interpreter_parser(), default_values = ["scientist", "random"])]
    interpreters: Vec<InterpreterKind>,
    /// Rounds of calls per function.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Score only every n-th function (for quick runs).
    #[arg(long, default_value_t = 1)]
    every: usize,
    /// Score the suite in units of this many functions, each interpreter built afresh per unit (the units a spec
    /// step splits into on a cluster).
    #[arg(long)]
    functions_per_unit: Option<usize>,
    /// Folder for suite.json, results.json and table.csv (default: runs/<time>-interpret).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `interpret neuron`.
#[derive(Debug, Args)]
pub struct NeuronArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Layer.
    #[arg(long)]
    layer: usize,
    /// Neuron index on mlp.hook_post.
    #[arg(long)]
    index: usize,
    /// Prompt with {x} where the number goes; the activation is read at its last token.
    #[arg(long, default_value = "x = {x}")]
    template: String,
    /// The interpreter.
    #[arg(long, value_parser = interpreter_parser(), default_value = "scientist")]
    interpreter: InterpreterKind,
    /// Rounds of calls.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Inputs per round.
    #[arg(long, default_value_t = 32)]
    inputs: usize,
}

/// `interpret pages`.
#[derive(Debug, Args)]
pub struct PagesArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Layer.
    #[arg(long)]
    layer: usize,
    /// Neurons, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    neurons: Vec<usize>,
    #[command(flatten)]
    page_files: PageFilesArgs,
    #[command(flatten)]
    function: UnitFunctionArgs,
    /// Seed of the interpreter.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the pages (default: runs/<time>-neuron-pages).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs one `interpret` subcommand.
pub fn run(command: &InterpretCommand) -> Result<()> {
    match command {
        InterpretCommand::Suite(args) => suite(args),
        InterpretCommand::Neuron(args) => neuron(args),
        InterpretCommand::Pages(args) => pages(args),
    }
}

fn suite(args: &SuiteArgs) -> Result<()> {
    let settings = InterpretSettings {
        suite: args.suite.clone(),
        numeric: args.numeric,
        strings: args.strings,
        interpreters: args.interpreters.clone(),
        rounds: args.rounds,
        every: args.every,
        functions_per_unit: args.functions_per_unit,
    };
    let model = args.model.load()?;
    run_operation(&settings, &model, args.seed, &output_dir(&args.out, "interpret")?, args.model.json)
}

fn neuron(args: &NeuronArgs) -> Result<()> {
    let model = args.model.load()?;
    let mut function = UnitNumeric::new(&model, Box::new(Neurons(args.layer)), args.index, &args.template)?;
    let mut chosen = args.interpreter.build(&model, 0)?;
    let mut session = Session::new(&mut function, Budget { rounds: args.rounds, inputs_per_round: args.inputs });
    let answer = chosen.interpret(&mut session);
    let result = serde_json::json!({"answer": answer, "transcript": session.transcript});
    if args.model.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!("neuron {}.{} with template {:?}:", args.layer, args.index, args.template);
        println!("  description: {}\n  domain: {}\n  code: {}", answer.description, answer.domain, answer.code);
    }
    Ok(())
}

fn pages(args: &PagesArgs) -> Result<()> {
    let settings = PagesSettings {
        layer: args.layer,
        neurons: args.neurons.clone(),
        files: args.page_files.files,
        held_out: args.page_files.held_out,
        max_tokens: args.page_files.max_tokens,
        neurons_per_unit: None,
        function: args.function.settings(),
    };
    let model = args.model.load()?;
    run_operation(&settings, &model, args.seed, &output_dir(&args.out, "neuron-pages")?, args.model.json)
}

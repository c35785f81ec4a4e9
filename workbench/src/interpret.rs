//! `workbench interpret`: the FIND suite and its scores per interpreter, a neuron interpreted as a function, and
//! neuron pages.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use models::{Model, Neuron};
use probes::find::agent::{EndpointBackend, LmAgent, LocalBackend};
use probes::find::evaluate::{evaluate, RandomGuess};
use probes::find::neurons::NeuronNumeric;
use probes::find::scientist::Scientist;
use probes::find::session::{Budget, Interpreter, Session};
use probes::find::suite::Suite;

use crate::commands::{output_dir, write_json, Bar, ModelArgs};

/// The interpreters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InterpreterChoice {
    /// Active sampling, least-squares families, composition search.
    Scientist,
    /// A random guess, without calls.
    Random,
    /// The loaded model as an LM agent (through its chat template).
    LmLocal,
    /// An OpenAI-compatible endpoint as an LM agent (OPENAI_BASE_URL, OPENAI_API_KEY, OPENAI_MODEL).
    LmEndpoint,
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
    #[arg(long = "interpreter", value_enum, default_values_t = [InterpreterChoice::Scientist, InterpreterChoice::Random])]
    interpreters: Vec<InterpreterChoice>,
    /// Rounds of calls per function.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Score only every n-th function (for quick runs).
    #[arg(long, default_value_t = 1)]
    every: usize,
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
    #[arg(long, value_enum, default_value = "scientist")]
    interpreter: InterpreterChoice,
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
    /// CPython files to search for top examples.
    #[arg(long, default_value_t = 20)]
    files: usize,
    /// Further CPython files for the simulation score.
    #[arg(long, default_value_t = 5)]
    held_out: usize,
    /// Tokens per file.
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Folder for the pages (default: runs/<time>-neuron-pages).
    #[arg(long)]
    out: Option<PathBuf>,
}

fn interpreter<'a>(
    choice: InterpreterChoice,
    model: Option<&'a Model>,
    seed: u64,
) -> Result<Box<dyn Interpreter + 'a>> {
    Ok(match choice {
        InterpreterChoice::Scientist => Box::new(Scientist::new(seed)),
        InterpreterChoice::Random => Box::new(RandomGuess::new(seed)),
        InterpreterChoice::LmLocal => {
            Box::new(LmAgent::new(LocalBackend::new(model.context("the local LM agent needs a model")?, 96)))
        }
        InterpreterChoice::LmEndpoint => Box::new(LmAgent::new(EndpointBackend::from_env(Duration::from_secs(60)))),
    })
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
    let suite = match &args.suite {
        Some(path) => Suite::load(path)?,
        None => Suite::generate(args.seed, args.numeric, args.strings)?,
    };
    let out = output_dir(&args.out, "interpret");
    std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
    suite.save(&out.join("suite.json"))?;
    let model = if args.interpreters.contains(&InterpreterChoice::LmLocal) { Some(args.model.load()?) } else { None };
    let budget = Budget { rounds: args.rounds, ..Budget::default() };
    let every = args.every.max(1);
    let mut evaluations = Vec::new();
    let mut csv = String::from("interpreter,category,functions,mean_score,mean_interval_overlap,failures\n");
    for &choice in &args.interpreters {
        let mut chosen = interpreter(choice, model.as_ref(), args.seed)?;
        let bar = Bar::new();
        let evaluation = evaluate(&suite, chosen.as_mut(), budget, |f| f.id % every == 0, &bar)?;
        bar.0.finish_and_clear();
        println!("{}", evaluation.interpreter);
        for row in &evaluation.table {
            let overlap = row.mean_interval_overlap.map_or(String::new(), |o| format!("{o:.3}"));
            println!(
                "  {:<18} {:>5} functions  score {:.3}  interval overlap {overlap:>5}  failed code {}",
                format!("{:?}", row.category),
                row.functions,
                row.mean_score,
                row.failures
            );
            csv.push_str(&format!(
                "{},{:?},{},{:.4},{overlap},{}\n",
                evaluation.interpreter, row.category, row.functions, row.mean_score, row.failures
            ));
        }
        evaluations.push(evaluation);
    }
    write_json(&out, &evaluations)?;
    models::files::write_atomically(&out.join("table.csv"), csv.as_bytes())?;
    println!("suite, transcripts and scores in {}", out.display());
    Ok(())
}

fn neuron(args: &NeuronArgs) -> Result<()> {
    let model = args.model.load()?;
    let mut function = NeuronNumeric::new(&model, Neuron { layer: args.layer, index: args.index }, &args.template)?;
    let mut chosen = interpreter(args.interpreter, Some(&model), 0)?;
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
    let model = args.model.load()?;
    let documents = probes::corpus::stdlib_documents(args.files + args.held_out)?;
    let (search, held_out) = documents.split_at(args.files);
    let bar = Bar::new();
    let pages =
        probes::find::pages::neuron_pages(&model, args.layer, &args.neurons, search, held_out, args.max_tokens, &bar)?;
    bar.0.finish_and_clear();
    let out = output_dir(&args.out, "neuron-pages");
    for page in &pages {
        page.write(&out)?;
        println!("{}.{}: {} (simulation score {:.3})", page.layer, page.index, page.description, page.simulation_score);
    }
    println!("pages in {}", out.display());
    Ok(())
}

//! Subcommands of the `workbench` command line.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use models::{parse_device, parse_kind, GenerationConfig, LoadOptions, Model, Progress, Sampling};

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
    Info(ModelArgs),
    /// Continue a prompt.
    Generate(GenerateArgs),
    /// Per position: the top next tokens, and the logit-lens top-1 at every layer.
    Inspect(InspectArgs),
    /// Where is a property of code represented? Linear probes per layer, with controls, over CPython files.
    Probe(ProbeArgs),
    /// Logit lens over CPython files: per layer, how often the early read-out is already the final top-1 and
    /// the true next token.
    Lens(LensArgs),
    /// FIND-style function interpretation: the suite, interpreters and scores; neurons as functions; neuron pages.
    Interpret(InterpretArgs),
    /// Benchmarks: HumanEval (sandboxed), line completion and perplexity on held-out code.
    Eval(EvalArgs),
    /// MINT repair: rank neurons, patch one or two so the model writes the desired continuation, measure side
    /// effects, save the patch set; or the repair study of MINT beside the baselines.
    Repair(crate::repair::RepairArgs),
    /// Write the model (with a patch set applied) as a Hugging Face folder and/or a GGUF file.
    Export(crate::repair::ExportArgs),
    /// Run an experiment spec (RON) into runs/<time>-<name>/, or resume an interrupted run.
    Run(RunArgs),
    /// Open the desktop app.
    Gui(GuiArgs),
}

#[derive(Debug, Args)]
struct GuiArgs {
    /// Load this model at start (catalogue name, .gguf file or Hugging Face folder).
    #[arg(long)]
    model: Option<String>,
    /// Load the model, save a screenshot of every view into this folder, then quit.
    #[arg(long)]
    screenshots: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The spec file (experiments/specs/*.ron).
    spec: Option<std::path::PathBuf>,
    /// Resume the run in this folder instead (steps already done are kept).
    #[arg(long, conflicts_with = "spec")]
    resume: Option<std::path::PathBuf>,
    /// Where new runs go.
    #[arg(long, default_value = "runs")]
    runs: std::path::PathBuf,
}

fn run_spec(args: &RunArgs) -> Result<()> {
    let dir = match (&args.resume, &args.spec) {
        (Some(dir), _) => dir.clone(),
        (None, Some(spec)) => experiments::runner::create_run(spec, &args.runs)?,
        (None, None) => anyhow::bail!("give a spec file, or --resume DIR"),
    };
    println!("run folder: {}", dir.display());
    let bar = Bar::new();
    let steps = experiments::runner::run(&dir, &bar)?;
    bar.0.finish_and_clear();
    for step in &steps {
        println!("step {} {} ({:.1} s)", step.index, step.kind, step.seconds);
        for line in &step.lines {
            println!("  {line}");
        }
    }
    println!("report: {}", dir.join("report.md").display());
    Ok(())
}

/// Which model to load and where to run it.
#[derive(Debug, Args)]
pub(crate) struct ModelArgs {
    /// Catalogue name (smollm2-135m-instruct), a .gguf file, or a Hugging Face folder.
    #[arg(long, default_value = models::catalogue::DEFAULT_MODEL)]
    model: String,
    /// cpu, cuda, cuda:N or auto.
    #[arg(long, default_value = "auto")]
    device: String,
    /// f32, bf16 or f16.
    #[arg(long, default_value = "f32")]
    dtype: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

impl ModelArgs {
    pub(crate) fn load(&self) -> Result<Model> {
        let options = LoadOptions { device: parse_device(&self.device)?, kind: parse_kind(&self.dtype)? };
        let bar = Bar::new();
        let model = Model::load_with_progress(&self.model, options, &bar)
            .with_context(|| format!("loading model {}", self.model));
        bar.0.finish_and_clear();
        model
    }
}

/// The command line's drawing of [`Progress`]: an indicatif bar on stderr (hidden when it is not a terminal).
pub(crate) struct Bar(pub(crate) ProgressBar);

impl Bar {
    pub(crate) fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{msg:>16} [{bar:40}] {pos}/{len}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Bar(bar)
    }
}

impl Progress for Bar {
    fn begin(&self, stage: &str, total: u64) {
        self.0.set_message(stage.to_string());
        self.0.set_length(total);
        self.0.set_position(0);
    }

    fn advance(&self, steps: u64) {
        self.0.inc(steps);
    }
}

#[derive(Debug, Args)]
struct GenerateArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The prompt text.
    #[arg(long)]
    prompt: String,
    /// Wrap the prompt as a user message in the model's chat template.
    #[arg(long)]
    chat: bool,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Sampling temperature; 0 means greedy.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Keep the k most likely tokens when sampling.
    #[arg(long)]
    top_k: Option<usize>,
    /// Nucleus sampling threshold.
    #[arg(long)]
    top_p: Option<f64>,
    /// Random seed for sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop when the text contains this (repeatable).
    #[arg(long = "stop")]
    stop: Vec<String>,
}

#[derive(Debug, Args)]
struct InspectArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The prompt text.
    #[arg(long)]
    prompt: String,
    /// How many next tokens to show per position.
    #[arg(long, default_value_t = 5)]
    top_k: usize,
}

/// A built-in probing task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProbeTask {
    /// Bracket nesting depth (0, 1, 2, 3 or deeper).
    BracketDepth,
    /// Indentation level (0, 1, 2, 3 or deeper).
    IndentLevel,
    /// The tree-sitter-python category of each token (keyword, identifier, operator, string ...).
    Syntax,
    /// Values of variables in generated programs: current and future state, the swapped-semantics control,
    /// and a steering check at the best layer.
    ProgramState,
    /// API-name cloze prompts from real standard-library uses, top-k per layer through the logit lens.
    ApiCloze,
    /// Spans and labels from a JSONL file (`--spans`).
    User,
}

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

#[derive(Debug, Args)]
struct ProbeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// What to probe for.
    #[arg(long, value_enum, default_value = "bracket-depth")]
    task: ProbeTask,
    /// The JSONL file of a user task: {"text", "start", "end", "label"} per line, spans in characters.
    #[arg(long)]
    spans: Option<std::path::PathBuf>,
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
    save_activations: Option<std::path::PathBuf>,
    /// Store saved activations as f16 (half the size).
    #[arg(long)]
    f16: bool,
    /// Norm of the program-state steering vector, as a multiple of the mean residual norm at the best layer.
    #[arg(long, default_value_t = 0.5)]
    steering_scale: f64,
    /// Seeds (one split and control task each).
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Also probe a randomly initialised model of the same architecture.
    #[arg(long)]
    random_init: bool,
    /// Folder for results.json and results.csv (default: runs/<time>-probe-<task>).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

/// Runs one parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info(args) => info(&args),
        Command::Generate(args) => generate(&args),
        Command::Inspect(args) => inspect(&args),
        Command::Probe(args) => probe(&args),
        Command::Lens(args) => lens(&args),
        Command::Interpret(args) => crate::interpret::run(&args.command),
        Command::Eval(args) => crate::eval::run(&args.command),
        Command::Repair(args) => crate::repair::repair(&args),
        Command::Export(args) => crate::repair::export(&args),
        Command::Run(args) => run_spec(&args),
        Command::Gui(args) => {
            workbench::gui::run(workbench::gui::GuiOptions { model: args.model, screenshots: args.screenshots })
        }
    }
}

fn info(args: &ModelArgs) -> Result<()> {
    let model = args.load()?;
    let shape = model.shape();
    if args.json {
        let value = serde_json::json!({"source": model.source, "shape": shape, "parameters": model.parameter_count(), "bytes": model.parameter_bytes(), "device": format!("{:?}", model.device), "dtype": format!("{:?}", model.kind)});
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("model         {}", model.source.display_name.as_deref().unwrap_or(&model.source.spec));
    println!("file          {} ({:?})", model.source.path.display(), model.source.format);
    println!("architecture  {}", shape.architecture);
    println!("layers        {}", shape.n_layers);
    println!("d_model       {}", shape.d_model);
    println!("neurons/layer {} (mlp.hook_post), {} in all", shape.d_mlp, shape.d_mlp * shape.n_layers);
    println!("heads         {} query, {} key/value, {} wide", shape.n_heads, shape.n_kv_heads, shape.head_dim);
    println!(
        "vocabulary    {} (tokenizer {}), context {}",
        shape.vocab_size,
        model.tokenizer.vocab_size(),
        shape.context_length
    );
    println!("embeddings    {}", if shape.tied_embeddings { "tied" } else { "untied" });
    println!(
        "parameters    {} ({:.1} MiB as {:?} on {:?})",
        model.parameter_count(),
        model.parameter_bytes() as f64 / 1048576.0,
        model.kind,
        model.device
    );
    Ok(())
}

fn generate(args: &GenerateArgs) -> Result<()> {
    let model = args.model.load()?;
    let prompt = if args.chat { model.chat_prompt(&args.prompt)? } else { args.prompt.clone() };
    let sampling = if args.temperature > 0.0 {
        Sampling::Random { temperature: args.temperature, top_k: args.top_k, top_p: args.top_p, seed: args.seed }
    } else {
        Sampling::Greedy
    };
    let config = GenerationConfig {
        max_new_tokens: args.max_tokens,
        sampling,
        stop_sequences: args.stop.clone(),
        stop_at_eos: true,
    };
    let generation = model.generate_text(&[&prompt], &config)?.remove(0);
    if args.model.json {
        println!("{}", serde_json::to_string_pretty(&generation)?);
    } else {
        println!("{}", generation.text);
        eprintln!("[{} tokens, stopped: {:?}]", generation.tokens.len(), generation.stop);
    }
    Ok(())
}

fn inspect(args: &InspectArgs) -> Result<()> {
    let model = args.model.load()?;
    let ids = model.encode(&args.prompt)?;
    let lens = probes::logit_lens(&model, &ids, args.top_k)?;
    if args.model.json {
        println!("{}", serde_json::to_string_pretty(&lens)?);
        return Ok(());
    }
    for (pos, &id) in ids.iter().enumerate() {
        println!("[{pos}] {:?}", model.tokenizer.token_text(id));
        let next: Vec<String> = lens.final_top[pos].iter().map(|p| format!("{:?} {:.3}", p.text, p.prob)).collect();
        println!("    next: {}", next.join(", "));
        let by_layer: Vec<String> = lens.top1.iter().map(|layer| format!("{:?}", layer[pos].text)).collect();
        println!("    lens: {}", by_layer.join(" "));
    }
    Ok(())
}

/// The layers named by `--layers` (`all` or a comma-separated list), checked against the model.
fn parse_layers(spec: &str, n_layers: usize) -> Result<Vec<usize>> {
    if spec == "all" {
        return Ok((0..n_layers).collect());
    }
    let layers: Vec<usize> = spec
        .split(',')
        .map(|l| l.trim().parse().with_context(|| format!("--layers: {l:?} is not a layer number or `all`")))
        .collect::<Result<_>>()?;
    for &layer in &layers {
        models::HookPoint::ResidPost(layer).check(n_layers)?;
    }
    Ok(layers)
}

/// `--out`, or `runs/<unix time>-<what>`.
pub(crate) fn output_dir(out: &Option<std::path::PathBuf>, what: &str) -> std::path::PathBuf {
    out.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        std::path::PathBuf::from(format!("runs/{stamp}-{what}"))
    })
}

pub(crate) fn write_json(dir: &std::path::Path, value: &impl serde::Serialize) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    models::files::write_atomically(&dir.join("results.json"), serde_json::to_string_pretty(value)?.as_bytes())?;
    Ok(())
}

fn probe(args: &ProbeArgs) -> Result<()> {
    let model = args.model.load()?;
    let layers = parse_layers(&args.layers, model.shape().n_layers)?;
    let kind = match args.probe {
        ProbeChoice::Logistic => probes::protocol::ProbeKind::Logistic,
        ProbeChoice::LogisticLinfa => probes::protocol::ProbeKind::LogisticLinfa,
        ProbeChoice::Ridge => probes::protocol::ProbeKind::Ridge,
    };
    let sweep = probes::protocol::SweepConfig {
        seeds: (0..args.seeds.max(1)).collect(),
        ..probes::protocol::SweepConfig::for_probe(kind)
    };
    let bar = Bar::new();
    match args.task {
        ProbeTask::ApiCloze => return api_cloze(&model, args, &bar),
        ProbeTask::ProgramState => return program_state(&model, args, layers, sweep, &bar),
        _ => {}
    }
    let (documents, labeller): (Vec<String>, Box<dyn probes::dataset::TokenLabeller>) = match args.task {
        ProbeTask::User => {
            let path = args.spans.as_ref().context("--task user needs --spans FILE.jsonl")?;
            let task = probes::tasks::user::UserTask::load(path)?;
            (task.documents.clone(), Box::new(task))
        }
        task => {
            let labeller: Box<dyn probes::dataset::TokenLabeller> = match task {
                ProbeTask::IndentLevel => Box::new(probes::dataset::IndentLevel { max: 3 }),
                ProbeTask::Syntax => Box::new(probes::tasks::syntax::SyntaxKind),
                _ => Box::new(probes::dataset::BracketDepth { max: 3 }),
            };
            (probes::corpus::stdlib_documents(args.files)?, labeller)
        }
    };
    let points: Vec<models::HookPoint> = layers.iter().map(|&l| models::HookPoint::ResidPost(l)).collect();
    let spec = probes::study::StudySpec {
        documents: &documents,
        labeller: labeller.as_ref(),
        points: &points,
        max_tokens: args.max_tokens,
        sweep,
        random_init_seed: args.random_init.then_some(0),
        save_dataset: args.save_activations.as_deref().map(|p| (p, args.f16)),
    };
    let report = probes::study::run_study(&model, &spec, &bar)?;
    bar.0.finish_and_clear();
    let out = output_dir(&args.out, &format!("probe-{}", report.task));
    report.write(&out)?;
    println!(
        "{} labelled tokens from {} documents; results and plots in {}",
        report.tokens,
        report.documents,
        out.display()
    );
    print!("{}", report.to_csv());
    Ok(())
}

fn api_cloze(model: &Model, args: &ProbeArgs, bar: &Bar) -> Result<()> {
    let stdlib = models::catalogue::data_dir().join("cpython-stdlib");
    let cases = probes::tasks::api_cloze::cloze_cases(model, &stdlib, args.files * 5, 5)?;
    let report = probes::tasks::api_cloze::run_cloze(model, &cases, bar)?;
    bar.0.finish_and_clear();
    let out = output_dir(&args.out, "probe-api-cloze");
    write_json(&out, &serde_json::json!({"report": report, "cases": cases}))?;
    let o = &report.output;
    println!("{} cloze prompts over {} modules; results in {}", report.cases, report.modules, out.display());
    println!("output: top-1 {:.3}, top-5 {:.3}, top-10 {:.3}", o.top1, o.top5, o.top10);
    for l in &report.per_layer {
        println!("layer {:>2}: top-1 {:.3}, top-5 {:.3}", l.layer.unwrap_or_default(), l.top1, l.top5);
    }
    Ok(())
}

fn program_state(
    model: &Model,
    args: &ProbeArgs,
    layers: Vec<usize>,
    sweep: probes::protocol::SweepConfig,
    bar: &Bar,
) -> Result<()> {
    let spec = probes::program_study::ProgramStudySpec {
        programs: args.files,
        statements: 6,
        steering_programs: 50,
        steering_scale: args.steering_scale,
        seed: 0,
        layers,
        sweep,
        random_init: args.random_init,
    };
    let report = probes::program_study::run_program_study(model, &spec, bar)?;
    bar.0.finish_and_clear();
    let out = output_dir(&args.out, "probe-program-state");
    report.write(&out)?;
    let s = &report.steering;
    println!("{} labelled tokens from {} programs; results in {}", report.tokens, spec.programs, out.display());
    println!(
        "best layer {}; accuracy minus swapped-semantics accuracy there: {:+.3}",
        report.best_point, report.semantic_gap
    );
    println!(
        "steering at {} (norm {:.1}): mean change of log p(target value) {:+.3} along the probe, {:+.3} along random directions; effect size {:.2}",
        s.point, s.norm, s.probe.mean_delta_logprob, s.random.mean_delta_logprob, s.effect_size
    );
    print!("{}", report.to_csv());
    Ok(())
}

#[derive(Debug, Args)]
struct EvalArgs {
    #[command(subcommand)]
    command: crate::eval::EvalCommand,
}

#[derive(Debug, Args)]
struct InterpretArgs {
    #[command(subcommand)]
    command: crate::interpret::InterpretCommand,
}

#[derive(Debug, Args)]
struct LensArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// How many CPython standard-library files to read.
    #[arg(long, default_value_t = 10)]
    files: usize,
    /// Tokens read per file.
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// Folder for results.json (default: runs/<time>-lens).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
}

fn lens(args: &LensArgs) -> Result<()> {
    let model = args.model.load()?;
    let documents = probes::corpus::stdlib_documents(args.files)?;
    let bar = Bar::new();
    let curve = probes::lens_over_corpus(&model, &documents, args.max_tokens, &bar)?;
    bar.0.finish_and_clear();
    let out = output_dir(&args.out, "lens");
    write_json(&out, &curve)?;
    if args.model.json {
        println!("{}", serde_json::to_string_pretty(&curve)?);
        return Ok(());
    }
    println!(
        "{} positions; the model's own top-1 is the next token at {:.3} of them",
        curve.positions, curve.final_correct
    );
    println!("layer  = final top-1  = next token");
    for (layer, (agree, correct)) in curve.agrees_with_final.iter().zip(&curve.correct).enumerate() {
        println!("{layer:>5}  {agree:>11.3}  {correct:>12.3}");
    }
    Ok(())
}

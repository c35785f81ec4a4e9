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
}

/// Which model to load and where to run it.
#[derive(Debug, Args)]
struct ModelArgs {
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
    json: bool,
}

impl ModelArgs {
    fn load(&self) -> Result<Model> {
        let options = LoadOptions { device: parse_device(&self.device)?, kind: parse_kind(&self.dtype)? };
        let bar = Bar::new();
        let model = Model::load_with_progress(&self.model, options, &bar)
            .with_context(|| format!("loading model {}", self.model));
        bar.0.finish_and_clear();
        model
    }
}

/// The command line's drawing of [`Progress`]: an indicatif bar on stderr (hidden when it is not a terminal).
struct Bar(ProgressBar);

impl Bar {
    fn new() -> Self {
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
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ProbeTask {
    /// Bracket nesting depth (0, 1, 2, 3 or deeper).
    BracketDepth,
    /// Indentation level (0, 1, 2, 3 or deeper).
    IndentLevel,
}

#[derive(Debug, Args)]
struct ProbeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// What to probe for.
    #[arg(long, value_enum, default_value = "bracket-depth")]
    task: ProbeTask,
    /// Layers whose residual stream (hook_resid_post) is probed, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [0, 5, 10, 15, 20, 25, 29])]
    layers: Vec<usize>,
    /// How many CPython standard-library files to read (a fixed, sorted list).
    #[arg(long, default_value_t = 40)]
    files: usize,
    /// Tokens read per file.
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
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

fn probe(args: &ProbeArgs) -> Result<()> {
    let model = args.model.load()?;
    for &layer in &args.layers {
        models::HookPoint::ResidPost(layer).check(model.shape().n_layers)?;
    }
    let documents = probes::corpus::stdlib_documents(args.files)?;
    let labeller: Box<dyn probes::dataset::TokenLabeller> = match args.task {
        ProbeTask::BracketDepth => Box::new(probes::dataset::BracketDepth { max: 3 }),
        ProbeTask::IndentLevel => Box::new(probes::dataset::IndentLevel { max: 3 }),
    };
    let points: Vec<models::HookPoint> = args.layers.iter().map(|&l| models::HookPoint::ResidPost(l)).collect();
    let spec = probes::study::StudySpec {
        documents: &documents,
        labeller: labeller.as_ref(),
        points: &points,
        max_tokens: args.max_tokens,
        sweep: probes::protocol::SweepConfig { seeds: (0..args.seeds.max(1)).collect(), ..Default::default() },
        random_init_seed: args.random_init.then_some(0),
    };
    let bar = Bar::new();
    let report = probes::study::run_study(&model, &spec, &bar)?;
    bar.0.finish_and_clear();
    let out = args.out.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        std::path::PathBuf::from(format!("runs/{stamp}-probe-{}", report.task))
    });
    report.write(&out)?;
    println!("{} labelled tokens from {} files; results in {}", report.tokens, report.documents, out.display());
    print!("{}", report.to_csv());
    Ok(())
}

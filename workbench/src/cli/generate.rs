//! `workbench generate`: continue a prompt, greedily or sampled.

use anyhow::Result;
use clap::Args;
use models::{GenerationConfig, Sampling};

use super::args::ModelArgs;

#[derive(Debug, Args)]
/// `workbench generate`.
pub struct GenerateArgs {
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

/// Generates and prints the continuation.
pub fn generate(args: &GenerateArgs) -> Result<()> {
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

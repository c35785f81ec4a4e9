//! `workbench cache`: `run_with_cache` from the command line, the chosen hook points of every text written to one
//! safetensors file for other tools (see [`models::activations`]).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use models::activations::{matching_points, write_activations};

use super::args::{Bar, ModelArgs};

/// `workbench cache`.
#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// One text.
    #[arg(long, conflicts_with_all = ["file", "jsonl"])]
    prompt: Option<String>,
    /// A text file, read in pieces of whole lines of at most --max-tokens tokens each (long files stream).
    #[arg(long, conflicts_with = "jsonl")]
    file: Option<PathBuf>,
    /// A JSONL file: one text a line, as a JSON string or an object with "text" (or "prompt").
    #[arg(long)]
    jsonl: Option<PathBuf>,
    /// Hook points by TransformerLens name, globs allowed, comma-separated: 'blocks.*.mlp.hook_post,blocks.3.hook_resid_post'.
    #[arg(long, value_delimiter = ',', required = true)]
    points: Vec<String>,
    /// Tokens read of each text.
    #[arg(long, default_value_t = 1024)]
    max_tokens: usize,
    /// Write f16 instead of f32.
    #[arg(long)]
    f16: bool,
    /// The safetensors file to write.
    #[arg(long)]
    out: PathBuf,
}

/// Writes the activations and prints what was written.
pub fn cache(args: &CacheArgs) -> Result<()> {
    let model = args.model.load()?;
    let texts = match (&args.prompt, &args.file, &args.jsonl) {
        (Some(prompt), _, _) => vec![prompt.clone()],
        (None, Some(file), _) => pieces(&model, &read(file)?, args.max_tokens)?,
        (None, None, Some(jsonl)) => jsonl_texts(&read(jsonl)?).with_context(|| jsonl.display().to_string())?,
        (None, None, None) => bail!("give the texts: --prompt P, --file F.txt or --jsonl F.jsonl"),
    };
    let points = matching_points(&args.points, model.shape().n_layers)?;
    let bar = Bar::new();
    let written = write_activations(&model, &texts, &points, args.max_tokens, args.f16, &args.out, &bar);
    bar.0.finish_and_clear();
    let written = written?;
    if args.model.json {
        println!("{}", serde_json::to_string_pretty(&written)?);
    } else {
        println!(
            "{} tokens of {} texts, {} hook points ({} MiB) in {}",
            written.tokens,
            written.texts,
            written.points.len(),
            written.bytes / 1048576,
            args.out.display()
        );
    }
    Ok(())
}

fn read(path: &PathBuf) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| path.display().to_string())
}

/// A text cut at line ends into pieces of at most `max_tokens` tokens (a longer line is a piece of its own, cut
/// to `max_tokens` when read).
fn pieces(model: &models::Model, text: &str, max_tokens: usize) -> Result<Vec<String>> {
    let (mut pieces, mut piece, mut tokens) = (Vec::new(), String::new(), 0);
    for line in text.split_inclusive('\n') {
        let count = model.tokenizer.encode(line, false)?.len();
        if tokens + count > max_tokens && !piece.is_empty() {
            pieces.push(std::mem::take(&mut piece));
            tokens = 0;
        }
        piece.push_str(line);
        tokens += count;
    }
    if !piece.trim().is_empty() {
        pieces.push(piece);
    }
    Ok(pieces)
}

/// The texts of a JSONL file; a line that is neither a string nor an object with "text" or "prompt" is an error
/// naming it.
fn jsonl_texts(text: &str) -> Result<Vec<String>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let value: serde_json::Value = serde_json::from_str(line).with_context(|| format!("line {}", i + 1))?;
            let text = value.as_str().or_else(|| value["text"].as_str()).or_else(|| value["prompt"].as_str());
            text.map(str::to_string).with_context(|| format!("line {}: no \"text\" or \"prompt\"", i + 1))
        })
        .collect()
}

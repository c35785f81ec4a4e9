//! `workbench inspect`: one prompt from the inside.

use anyhow::Result;
use clap::Args;

use super::args::ModelArgs;

#[derive(Debug, Args)]
/// `workbench inspect`.
pub struct InspectArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The prompt text.
    #[arg(long)]
    prompt: String,
    /// How many next tokens to show per position.
    #[arg(long, default_value_t = 5)]
    top_k: usize,
}

/// Prints, per position, the top next tokens and the logit-lens top-1 per layer.
pub fn inspect(args: &InspectArgs) -> Result<()> {
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

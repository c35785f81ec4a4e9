//! `workbench info`: the model's architecture, sizes and memory.

use anyhow::Result;
use models::footprint::{available_bytes, gib, MemoryNeed};

use super::args::ModelArgs;

/// Prints the memory the model needs, then (when it fits) loads it and prints its summary (as JSON with `--json`).
pub fn info(args: &ModelArgs) -> Result<()> {
    let kind = models::LoadOptions::parse(&args.device, &args.dtype)?.kind;
    let need = MemoryNeed::of(&models::catalogue::resolve(&args.model)?, kind)?;
    let available = available_bytes()?;
    let available_text = available.map_or("unknown".to_string(), |bytes| format!("{:.2} GiB", gib(bytes)));
    if !args.json {
        println!(
            "memory        {:.2} GiB needed to load as {kind:?} ({:.2} GiB of weights); {available_text} available",
            gib(need.needed_bytes),
            gib(need.weight_bytes)
        );
    }
    let model = args.load()?;
    let shape = model.shape();
    if args.json {
        let value = serde_json::json!({
            "source": model.source, "shape": shape, "parameters": model.parameter_count(),
            "bytes": model.parameter_bytes(), "device": format!("{:?}", model.device),
            "dtype": format!("{:?}", model.kind), "memory": {"need": need, "available_bytes": available},
        });
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

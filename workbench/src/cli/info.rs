//! `workbench info`: the model's architecture, sizes and memory.

use anyhow::Result;

use super::args::ModelArgs;

/// Prints the summary of the model (as JSON with `--json`).
pub fn info(args: &ModelArgs) -> Result<()> {
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

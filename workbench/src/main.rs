//! `workbench`: the command line over the workbench crates. Each subcommand loads a model, runs an operation
//! of `experiments::ops` (or a crate below) and prints what it returns; no science happens here.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", describe(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause said once: typed errors often already end with their source's message
/// (`cannot read F: <the I/O error>`), and anyhow's `{:#}` would repeat it.
fn describe(err: &anyhow::Error) -> String {
    let mut text = err.to_string();
    for cause in err.chain().skip(1).map(ToString::to_string) {
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    #[test]
    fn each_cause_is_said_once() {
        let missing = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let loading: anyhow::Result<()> = Err(models::ModelError::io("m.gguf", missing).into());
        let err = loading.context("loading the model").unwrap_err();
        assert_eq!(super::describe(&err), "loading the model: cannot read m.gguf: no such file");
        let plain = anyhow::anyhow!("outer").context("context");
        assert_eq!(super::describe(&plain), "context: outer");
    }
}

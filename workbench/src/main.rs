//! `workbench`: the command line over the workbench crates. Each subcommand loads a model, calls the
//! crates below, and prints what they return; no science happens here.

mod commands;
mod eval;
mod interpret;
mod repair;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

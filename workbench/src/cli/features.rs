//! `workbench features train|eval|pages|steer`: arguments into the sparse-dictionary operations' settings.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use experiments::ops::dictionary::{EvalDictionarySettings, Frontier, HeldOut, TrainDictionarySettings};
use experiments::ops::features::{FeaturePagesSettings, SteerFeaturesSettings};
use experiments::ops::Report;
use probes::sparse::train::{Sparsity, TrainConfig};

use super::args::{output_dir, print_summary, run_operation, ModelArgs, PageFilesArgs, UnitFunctionArgs};

/// `workbench features`.
#[derive(Debug, Args)]
pub struct FeaturesArgs {
    #[command(subcommand)]
    pub command: FeaturesCommand,
}

/// What to do with sparse dictionaries.
#[derive(Debug, Subcommand)]
pub enum FeaturesCommand {
    /// Train a transcoder (MLP input to output) or a sparse autoencoder on activations of the standard library's
    /// packages; save it in SAELens's format; measure it on held-out files.
    Train(TrainArgs),
    /// Measure a dictionary in SAELens's format (cfg.json + sae_weights.safetensors) on held-out files.
    Eval(EvalArgs),
    /// Pages of sampled live features (top examples, description, simulation score) beside pages of sampled neurons
    /// of the same layer, with the table of their simulation scores.
    Pages(PagesArgs),
    /// Add features' decoder directions to held-out prompts: do the tokens they promote gain, against random
    /// directions of the same norm?
    Steer(SteerArgs),
    /// The L0 / CE-loss-recovered frontier of the dictionaries a run trained (experiments/specs/transcoder-frontier.ron):
    /// frontier.png, .svg, .csv and .json written into the run folder.
    Frontier(FrontierArgs),
}

/// `features frontier`.
#[derive(Debug, Args)]
pub struct FrontierArgs {
    /// The run folder whose TrainDictionary steps are compared.
    run: PathBuf,
}

/// `features pages`.
#[derive(Debug, Args)]
pub struct PagesArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The SAELens folder.
    dictionary: PathBuf,
    /// Live features to sample.
    #[arg(long, default_value_t = 20)]
    features: usize,
    /// Page these features instead of a sample (comma-separated).
    #[arg(long, value_delimiter = ',')]
    chosen: Vec<usize>,
    /// Neurons of the same layer to sample beside them.
    #[arg(long, default_value_t = 20)]
    neurons: usize,
    #[command(flatten)]
    page_files: PageFilesArgs,
    #[command(flatten)]
    function: UnitFunctionArgs,
    /// Seed of the samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the pages and table.csv (default: runs/<time>-features-pages).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `features steer`.
#[derive(Debug, Args)]
pub struct SteerArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The SAELens folder.
    dictionary: PathBuf,
    /// Features to steer with (comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    features: Vec<usize>,
    /// Held-out files whose prefixes are the prompts.
    #[arg(long, default_value_t = 16)]
    prompts: usize,
    /// Tokens per prompt.
    #[arg(long, default_value_t = 64)]
    tokens: usize,
    /// Norm of the added vectors, as a multiple of the residual stream's mean norm after the layer.
    #[arg(long, default_value_t = 0.5)]
    scale: f64,
    /// Seed of the random directions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for results.json (default: runs/<time>-features-steer).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// How features are chosen while training.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum SparsityChoice {
    /// k per token.
    Topk,
    /// k per token on average over a batch; saved as JumpReLU.
    BatchTopk,
}

/// Where dictionaries are measured.
#[derive(Debug, Args)]
struct HeldOutArgs {
    /// Held-out CPython files to measure on.
    #[arg(long, default_value_t = 16)]
    eval_files: usize,
    /// Tokens per held-out file.
    #[arg(long, default_value_t = 256)]
    eval_tokens: usize,
}

impl HeldOutArgs {
    fn settings(&self) -> HeldOut {
        HeldOut { files: self.eval_files, max_tokens: self.eval_tokens }
    }
}

/// `features train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// A transcoder of this layer's MLP (reads blocks.L.mlp.hook_in, writes blocks.L.hook_mlp_out).
    #[arg(long, conflicts_with = "point")]
    transcoder: Option<usize>,
    /// A sparse autoencoder on this hook point instead (blocks.8.hook_resid_post, blocks.8.hook_mlp_out ...).
    #[arg(long)]
    point: Option<String>,
    /// Give the transcoder an affine skip path.
    #[arg(long)]
    skip: bool,
    /// Number of features.
    #[arg(long, default_value_t = 4608)]
    features: usize,
    /// Active features per token.
    #[arg(long, default_value_t = 32)]
    k: usize,
    /// How features are chosen while training.
    #[arg(long, value_enum, default_value = "batch-topk")]
    sparsity: SparsityChoice,
    /// Optimiser steps.
    #[arg(long, default_value_t = 2000)]
    steps: usize,
    /// Tokens per step.
    #[arg(long, default_value_t = 4096)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 5e-4)]
    learning_rate: f64,
    /// Files of the standard library's packages to collect activations from.
    #[arg(long, default_value_t = 516)]
    files: usize,
    /// Tokens per file.
    #[arg(long, default_value_t = 2048)]
    max_tokens: usize,
    #[command(flatten)]
    held_out: HeldOutArgs,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the dictionary, checkpoints and results (default: runs/<time>-features-train); a run into the
    /// folder of an interrupted one resumes it.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// `features eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// The SAELens folder.
    dictionary: PathBuf,
    #[command(flatten)]
    held_out: HeldOutArgs,
    /// Folder for results.json (default: runs/<time>-features-eval).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `workbench features ...`.
pub fn run(command: &FeaturesCommand) -> Result<()> {
    match command {
        FeaturesCommand::Train(args) => {
            let (reads, writes) = match (&args.point, args.transcoder) {
                (Some(point), _) => (point.clone(), None),
                (None, layer) => {
                    let layer = layer.unwrap_or(15);
                    (format!("blocks.{layer}.mlp.hook_in"), Some(format!("blocks.{layer}.hook_mlp_out")))
                }
            };
            let settings = TrainDictionarySettings {
                reads,
                writes,
                files: args.files,
                max_tokens: args.max_tokens,
                training: TrainConfig {
                    sparsity: match args.sparsity {
                        SparsityChoice::Topk => Sparsity::TopK,
                        SparsityChoice::BatchTopk => Sparsity::BatchTopK,
                    },
                    k: args.k,
                    features: args.features,
                    skip: args.skip,
                    batch_size: args.batch_size,
                    learning_rate: args.learning_rate,
                    steps: args.steps,
                    seed: args.seed,
                    ..TrainConfig::default()
                },
                held_out: args.held_out.settings(),
            };
            let out = output_dir(&args.out, "features-train")?;
            run_operation(&settings, &args.model.load()?, args.seed, &out, args.model.json)
        }
        FeaturesCommand::Eval(args) => {
            let settings =
                EvalDictionarySettings { dictionary: args.dictionary.clone(), held_out: args.held_out.settings() };
            let out = output_dir(&args.out, "features-eval")?;
            run_operation(&settings, &args.model.load()?, 0, &out, args.model.json)
        }
        FeaturesCommand::Pages(args) => {
            let settings = FeaturePagesSettings {
                dictionary: args.dictionary.clone(),
                features: args.features,
                chosen: args.chosen.clone(),
                neurons: args.neurons,
                files: args.page_files.files,
                held_out: args.page_files.held_out,
                max_tokens: args.page_files.max_tokens,
                function: args.function.settings(),
            };
            let out = output_dir(&args.out, "features-pages")?;
            run_operation(&settings, &args.model.load()?, args.seed, &out, args.model.json)
        }
        FeaturesCommand::Steer(args) => {
            let settings = SteerFeaturesSettings {
                dictionary: args.dictionary.clone(),
                features: args.features.clone(),
                prompts: args.prompts,
                tokens: args.tokens,
                scale: args.scale,
            };
            let out = output_dir(&args.out, "features-steer")?;
            run_operation(&settings, &args.model.load()?, args.seed, &out, args.model.json)
        }
        FeaturesCommand::Frontier(args) => {
            let frontier = Frontier::of_run(&args.run)?;
            frontier.write(&args.run)?;
            print_summary(&frontier, &args.run);
            Ok(())
        }
    }
}

//! Which architecture a checkpoint names, built from its weights: the one place that maps `model_type` (or GGUF's
//! `general.architecture`) to an architecture file.

use tch::{Device, Kind};

use crate::arch::{
    codegen, gemma, gemma2, gpt2, gpt_bigcode, gpt_neox, granite, llama, mistral, phi3, qwen2, qwen3, starcoder2,
    Architecture,
};
use crate::config::HfConfig;
use crate::error::{ModelError, Result};
use crate::gguf::GgufFile;
use crate::gguf_arch::GgufArch;
use crate::gguf_weights::GgufWeights;
use crate::progress::Progress;
use crate::weights::{ReportingSource, WeightSource};

/// Builds the architecture a GGUF file names (`general.architecture`) from its metadata and tensors: the metadata
/// becomes the `config.json` the architecture is read from (`gguf_arch`).
pub fn from_gguf(
    file: &GgufFile,
    device: Device,
    kind: Kind,
    progress: &dyn Progress,
) -> Result<Box<dyn Architecture>> {
    let arch = GgufArch::of_file(file)?;
    let config = HfConfig::new(arch.hf_config(file)?);
    let mut weights = GgufWeights::new(file, arch)?;
    let mut reporting = ReportingSource::new(&mut weights, progress, file.tensors.len());
    from_hf(&config, &mut reporting, device, kind)
}

/// Builds the architecture a Hugging Face `config.json` names (`model_type`) from its weights.
pub fn from_hf(
    config: &HfConfig,
    weights: &mut dyn WeightSource,
    device: Device,
    kind: Kind,
) -> Result<Box<dyn Architecture>> {
    let decoder = match config.model_type()? {
        "llama" => llama::load(&llama::LlamaConfig::from_hf(config)?, weights, device, kind)?,
        "qwen2" => llama::load(&qwen2::config_from_hf(config)?, weights, device, kind)?,
        "qwen3" => llama::load(&qwen3::config_from_hf(config)?, weights, device, kind)?,
        "mistral" => llama::load(&mistral::config_from_hf(config)?, weights, device, kind)?,
        "gemma" => llama::load(&gemma::config_from_hf(config)?, weights, device, kind)?,
        "gemma2" => llama::load(&gemma2::config_from_hf(config)?, weights, device, kind)?,
        "granite" => llama::load(&granite::config_from_hf(config)?, weights, device, kind)?,
        "phi3" => llama::load(&phi3::config_from_hf(config)?, weights, device, kind)?,
        "starcoder2" => starcoder2::load(&starcoder2::Starcoder2Config::from_hf(config)?, weights, device, kind)?,
        "gpt2" => gpt2::load(&gpt2::Gpt2Config::from_hf(config)?, weights, device, kind)?,
        "gpt_bigcode" => gpt2::load(&gpt_bigcode::config_from_hf(config)?, weights, device, kind)?,
        "gpt_neox" => gpt_neox::load(&gpt_neox::GptNeoXConfig::from_hf(config)?, weights, device, kind)?,
        "codegen" => codegen::load(&codegen::CodeGenConfig::from_hf(config)?, weights, device, kind)?,
        other => return Err(ModelError::UnknownArchitecture(other.to_string())),
    };
    Ok(Box::new(decoder.with_hf_config(config.value().clone())))
}

//! The one error type of the `models` crate. Each variant says what went wrong and what the user can do.

use std::path::PathBuf;

/// Everything that can go wrong while loading, running or editing a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file that failed.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file is not in the format its name or the caller claimed.
    #[error("{path} is not a valid {format} file: {reason}")]
    BadFormat {
        /// The file that failed.
        path: PathBuf,
        /// The expected format (GGUF, safetensors, config.json ...).
        format: &'static str,
        /// What exactly is wrong.
        reason: String,
    },
    /// The file ends before the data its header describes.
    #[error("{path} is truncated: {what} needs bytes up to offset {needed}, but the file has {available}; download or copy it again")]
    Truncated {
        /// The file that failed.
        path: PathBuf,
        /// What was being read.
        what: String,
        /// The end offset that was needed.
        needed: u64,
        /// The size of the file.
        available: u64,
    },
    /// A tensor uses a storage type this runtime does not decode.
    #[error("tensor {tensor} uses the unsupported type {kind}; supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS")]
    UnsupportedType {
        /// The tensor's name.
        tensor: String,
        /// The type's name or number.
        kind: String,
    },
    /// A tensor the architecture needs is not in the checkpoint.
    #[error("the checkpoint has no tensor {0}; is it complete and of the architecture its config names?")]
    MissingTensor(String),
    /// A tensor has another shape than the config implies.
    #[error("tensor {tensor} has shape {found:?}, but the config implies {expected:?}")]
    ShapeMismatch {
        /// The tensor's name.
        tensor: String,
        /// The shape the config implies.
        expected: Vec<i64>,
        /// The shape in the file.
        found: Vec<i64>,
    },
    /// A metadata or config value is missing or has the wrong type.
    #[error("missing or invalid config value {key}: {reason}")]
    Config {
        /// The key that was looked up.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The architecture named by the model is not implemented.
    #[error("unknown architecture {0:?}; supported: {supported}", supported = crate::supported::SUPPORTED.join(", "))]
    UnknownArchitecture(String),
    /// A model name is neither in the catalogue nor a path that exists.
    #[error("no model {name:?}: not in the catalogue ({catalogue}) and not an existing .gguf file or folder with config.json")]
    UnknownModel {
        /// The name that was given.
        name: String,
        /// The catalogue's names.
        catalogue: String,
    },
    /// A model named by repository id is not (all) in the Hugging Face cache.
    #[error("{spec} is not in the Hugging Face cache (nothing is downloaded): missing {what}")]
    NotInCache {
        /// The name that was given.
        spec: String,
        /// What is missing.
        what: String,
    },
    /// The tokenizer could not be built or failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// A library the workbench calls panicked on what it was given (see [`crate::panics::contain`]).
    #[error("{what} failed inside a library, which panicked: {message}; the file is malformed or hostile")]
    Foreign {
        /// What was being read or done.
        what: String,
        /// The panic's message.
        message: String,
    },
    /// The chat template failed to render.
    #[error("chat template: {0}")]
    ChatTemplate(String),
    /// Loading the model would take more memory than the machine has available.
    #[error(
        "loading {model} as {dtype} needs about {needed:.1} GiB ({weights:.1} GiB of weights), but only \
         {available:.1} GiB is available; load it as bf16 (--dtype bf16 halves f32's weights), free memory, or use a \
         machine with more"
    )]
    NotEnoughMemory {
        /// The model that was asked for.
        model: String,
        /// The dtype it was to be loaded in.
        dtype: String,
        /// GiB needed in all.
        needed: f64,
        /// GiB of weights.
        weights: f64,
        /// GiB available.
        available: f64,
    },
    /// A prompt or input the caller gave cannot be run.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The prompt does not fit the model's context window.
    #[error("the prompt has {tokens} tokens but the model's context holds {context}; shorten it")]
    ContextOverflow {
        /// Number of tokens needed.
        tokens: usize,
        /// The model's context length.
        context: usize,
    },
    /// A hook-point name does not parse or does not exist in this model.
    #[error("unknown hook point {name:?}: {reason}")]
    HookPoint {
        /// The name given.
        name: String,
        /// Why it is not valid.
        reason: String,
    },
    /// A neuron address is outside the model.
    #[error("neuron ({layer}, {index}) does not exist: the model has {layers} layers of {neurons} neurons")]
    NoSuchNeuron {
        /// Requested layer.
        layer: usize,
        /// Requested index.
        index: usize,
        /// Layers in the model.
        layers: usize,
        /// Neurons per layer.
        neurons: usize,
    },
    /// The user cancelled the job.
    #[error("cancelled")]
    Cancelled,
    /// An error raised by libtorch.
    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),
}

/// Result type of the `models` crate.
pub type Result<T, E = ModelError> = std::result::Result<T, E>;

impl ModelError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ModelError::Io { path: path.into(), source }
    }

    /// A missing or invalid config value.
    pub fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ModelError::Config { key: key.into(), reason: reason.into() }
    }
}

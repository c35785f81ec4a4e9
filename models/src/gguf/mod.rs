//! GGUF files: a memory-mapped reader for the header, metadata, tensor infos and tensor data, and
//! dequantization of the block formats llama.cpp writes.

mod dequant;
mod reader;
mod writer;

pub use dequant::{dequantize, GgmlType};
pub use reader::{GgufFile, MetaValue, TensorInfo};
pub use writer::GgufWriter;

//! Reading an architecture's hyper-parameters from a Hugging Face `config.json`, with errors that name the
//! missing or malformed field.

use serde_json::Value;

use crate::error::{ModelError, Result};

/// The largest size, count or id a config field may give (2^28): above every real model's widths, layer and head
/// counts, vocabulary and context, and small enough that the product of three such numbers fits in 64 bits, so that
/// shape arithmetic on a hostile config cannot overflow.
pub const LARGEST_SIZE: u64 = 1 << 28;

/// A parsed `config.json`.
pub struct HfConfig {
    value: Value,
}

impl HfConfig {
    /// Wraps a parsed JSON object.
    pub fn new(value: Value) -> Self {
        HfConfig { value }
    }

    /// The whole `config.json`.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// The `model_type` field.
    pub fn model_type(&self) -> Result<&str> {
        self.value["model_type"].as_str().ok_or_else(|| ModelError::config("model_type", "missing from config.json"))
    }

    /// A required non-negative integer field, at most [`LARGEST_SIZE`].
    pub fn usize(&self, key: &str) -> Result<usize> {
        let value = self.value[key]
            .as_u64()
            .ok_or_else(|| ModelError::config(key, "missing from config.json or not a non-negative integer"))?;
        if value > LARGEST_SIZE {
            return Err(ModelError::config(
                key,
                format!("is {value}, more than any model has (at most {LARGEST_SIZE})"),
            ));
        }
        Ok(value as usize)
    }

    /// An optional integer field.
    pub fn usize_or(&self, key: &str, default: usize) -> Result<usize> {
        match &self.value[key] {
            Value::Null => Ok(default),
            _ => self.usize(key),
        }
    }

    /// A non-negative integer field that may be absent or null (`sliding_window: null`).
    pub fn usize_if_set(&self, key: &str) -> Result<Option<usize>> {
        match &self.value[key] {
            Value::Null => Ok(None),
            _ => self.usize(key).map(Some),
        }
    }

    /// An optional number field.
    pub fn f64_or(&self, key: &str, default: f64) -> Result<f64> {
        match &self.value[key] {
            Value::Null => Ok(default),
            v => v.as_f64().ok_or_else(|| ModelError::config(key, "is not a number")),
        }
    }

    /// An optional bool field.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match &self.value[key] {
            Value::Null => Ok(default),
            v => v.as_bool().ok_or_else(|| ModelError::config(key, "is not true or false")),
        }
    }

    /// The raw value of a field (`Null` when absent).
    pub fn get(&self, key: &str) -> &Value {
        &self.value[key]
    }

    /// The rotary base: `rope_theta`, or `rope_parameters.rope_theta` (transformers 5). Scaled rotary
    /// variants are refused rather than silently run unscaled.
    pub fn rope_theta(&self, default: f64) -> Result<f64> {
        for key in ["rope_scaling", "rope_parameters"] {
            let params = self.get(key);
            if let Some(kind) = params.get("rope_type").or_else(|| params.get("type")).and_then(Value::as_str) {
                if kind != "default" {
                    return Err(ModelError::config(key, format!("rotary scaling {kind:?} is not supported")));
                }
            }
        }
        match self.get("rope_parameters").get("rope_theta") {
            Some(v) => v.as_f64().ok_or_else(|| ModelError::config("rope_parameters.rope_theta", "is not a number")),
            None => self.f64_or("rope_theta", default),
        }
    }
}

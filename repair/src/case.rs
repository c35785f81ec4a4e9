//! Repair cases: a prompt and the continuation the model should write, with held-out variants of the same bug,
//! and how a case looks as token ids (the desired continuation teacher-forced token by token).

use std::path::Path;

use models::tch::{Kind, Tensor};
use models::Model;
use serde::{Deserialize, Serialize};

use crate::error::{RepairError, Result};

/// A prompt and the continuation the model should produce after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    /// Text the model reads.
    pub prompt: String,
    /// Text it should write next (one token or a whole line).
    pub desired: String,
}

/// One wrong behaviour of the model: the example the repair sees, and variants of the same bug (other
/// contexts, names, formatting) that it never sees, to measure generalization.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepairCase {
    /// Bug family (`api`, `line`, `humaneval`, `user` ...).
    pub family: String,
    /// A name unique within its family.
    pub id: String,
    /// The example to repair.
    pub example: Example,
    /// Held-out variants of the same bug.
    #[serde(default)]
    pub variants: Vec<Example>,
}

/// One line of a user's JSONL file of repair cases.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserLine {
    prompt: String,
    desired: String,
    #[serde(default)]
    variants: Vec<Example>,
    #[serde(default)]
    family: Option<String>,
    #[serde(default)]
    id: Option<String>,
}

/// Reads user cases from JSONL: one object per line with `prompt`, `desired`, optional `variants`
/// (`[{"prompt", "desired"}]`), `family` (default `user`) and `id` (default `user-<line>`).
pub fn load_user_cases(path: &Path) -> Result<Vec<RepairCase>> {
    let text = std::fs::read_to_string(path).map_err(|e| RepairError::file(path, e))?;
    parse_user_cases(&text, path)
}

/// [`load_user_cases`] over the file's text; `path` names it in errors.
pub fn parse_user_cases(text: &str, path: &Path) -> Result<Vec<RepairCase>> {
    let mut cases = Vec::new();
    for (number, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let parsed: UserLine = serde_json::from_str(line).map_err(|e| {
            RepairError::file(
                path,
                format!("line {}: {e} (expected {{\"prompt\", \"desired\", \"variants\"}})", number + 1),
            )
        })?;
        if parsed.desired.is_empty() {
            return Err(RepairError::file(path, format!("line {}: the desired continuation is empty", number + 1)));
        }
        cases.push(RepairCase {
            family: parsed.family.unwrap_or_else(|| "user".into()),
            id: parsed.id.unwrap_or_else(|| format!("user-{}", number + 1)),
            example: Example { prompt: parsed.prompt, desired: parsed.desired },
            variants: parsed.variants,
        });
    }
    Ok(cases)
}

/// An example as token ids: the prompt's tokens followed by the desired continuation's tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    /// Prompt then continuation.
    pub ids: Vec<u32>,
    /// How many of `ids` are the prompt.
    pub prompt_len: usize,
}

impl Tokens {
    /// Tokenizes `example` for `model`; the whole sequence must fit the context.
    pub fn new(model: &Model, example: &Example) -> Result<Self> {
        let prompt = model.encode(&example.prompt)?;
        let desired = model.tokenizer.encode(&example.desired, false)?;
        if desired.is_empty() {
            return Err(RepairError::Case { case: example.prompt.clone(), reason: "the desired text is empty".into() });
        }
        let prompt_len = prompt.len();
        let ids: Vec<u32> = prompt.into_iter().chain(desired).collect();
        model.check_prompt(&ids)?;
        Ok(Tokens { ids, prompt_len })
    }

    /// Number of desired tokens.
    pub fn steps(&self) -> usize {
        self.ids.len() - self.prompt_len
    }

    /// What the model reads before desired token `step` (teacher-forced).
    pub fn context(&self, step: usize) -> &[u32] {
        &self.ids[..self.prompt_len + step]
    }

    /// Desired token `step`.
    pub fn desired(&self, step: usize) -> u32 {
        self.ids[self.prompt_len + step]
    }
}

/// How the model does on every desired token of an example, teacher-forced.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Per desired token: its logit minus the best other token's logit (positive = top-1).
    pub margins: Vec<f32>,
}

impl Check {
    /// The first desired token whose margin is below `margin`.
    pub fn first_below(&self, margin: f32) -> Option<usize> {
        self.margins.iter().position(|&m| m < margin)
    }

    /// Whether every desired token is the model's top-1, i.e. greedy decoding writes the whole continuation.
    pub fn correct(&self) -> bool {
        self.first_below(0.0).is_none() && !self.margins.is_empty()
    }
}

/// Margins of every desired token, from one forward pass over prompt and continuation.
pub fn check(model: &Model, tokens: &Tokens) -> Result<Check> {
    let inputs = &tokens.ids[..tokens.ids.len() - 1];
    let logits = model.logits(inputs)?;
    let rows = logits.narrow(0, tokens.prompt_len as i64 - 1, tokens.steps() as i64);
    let desired: Vec<i64> = tokens.ids[tokens.prompt_len..].iter().map(|&t| i64::from(t)).collect();
    Ok(Check { margins: margins(&rows, &desired)? })
}

/// For each row of `logits` `[n, vocab]`, the logit of `desired[row]` minus the largest other logit.
pub fn margins(logits: &Tensor, desired: &[i64]) -> Result<Vec<f32>> {
    let index = Tensor::from_slice(desired).to_device(logits.device()).unsqueeze(1);
    let chosen = logits.gather(1, &index, false);
    let others = logits.scatter_value(1, &index, f64::NEG_INFINITY).amax([1], true);
    Ok(Vec::try_from((chosen - others).squeeze_dim(1).to_kind(Kind::Float).to_device(models::tch::Device::Cpu))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_by_hand() {
        let logits = Tensor::from_slice(&[1.0f32, 3.0, 2.0, 0.5, -1.0, 0.0]).view([2, 3]);
        let m = margins(&logits, &[1, 2]).unwrap();
        assert_eq!(m, [1.0, -0.5]);
        let check = Check { margins: m };
        assert_eq!(check.first_below(0.0), Some(1));
        assert_eq!(check.first_below(-1.0), None);
        assert!(!check.correct());
    }

    #[test]
    fn user_cases_parse_and_bad_lines_say_where() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cases.jsonl");
        let good = r#"{"prompt": "import os\nos.", "desired": "path", "variants": [{"prompt": "import os\nx = os.", "desired": "path"}]}"#;
        std::fs::write(&path, format!("{good}\n\n{good}\n")).unwrap();
        let cases = load_user_cases(&path).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[1].id, "user-3");
        assert_eq!(cases[0].variants.len(), 1);
        std::fs::write(&path, format!("{good}\n{{\"prompt\": 3}}\n")).unwrap();
        let error = load_user_cases(&path).unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
    }
}

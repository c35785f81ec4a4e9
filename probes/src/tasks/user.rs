//! User tasks from a JSONL file: one object per line, `{"text": ..., "start": ..., "end": ..., "label": ...}`,
//! where `start..end` is a span of characters (not bytes) of `text`. Every token that overlaps a span gets
//! its label; other tokens are left out. Lines with the same text form one document.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use models::tokenizer::ByteSpan;
use serde::Deserialize;

use crate::dataset::TokenLabeller;
use crate::error::{ProbeError, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    text: String,
    start: usize,
    end: usize,
    label: String,
}

/// A task read from JSONL.
pub struct UserTask {
    name: String,
    /// The distinct label strings; a label's class is its index.
    pub class_names: Vec<String>,
    /// The documents, in order of first appearance.
    pub documents: Vec<String>,
    /// Byte spans and classes of each document.
    spans: HashMap<String, Vec<(usize, usize, usize)>>,
}

/// The byte offset of character `index` of `text` (its length at the end).
fn byte_offset(text: &str, index: usize) -> Option<usize> {
    text.char_indices().map(|(b, _)| b).chain([text.len()]).nth(index)
}

impl UserTask {
    /// Reads and checks a JSONL file; errors name the line.
    pub fn load(path: &Path) -> Result<Self> {
        let content = std::fs::read_to_string(path).map_err(models::files::at(path))?;
        let name = path.file_stem().map_or("user".into(), |s| s.to_string_lossy().into_owned());
        Self::parse(&name, &content).map_err(|e| ProbeError::InvalidInput(format!("{}: {e}", path.display())))
    }

    /// Parses JSONL text.
    pub fn parse(name: &str, content: &str) -> std::result::Result<Self, String> {
        let mut lines = Vec::new();
        for (number, line) in content.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let at = number + 1;
            let line: Line = serde_json::from_str(line).map_err(|e| format!("line {at}: {e}"))?;
            let chars = line.text.chars().count();
            if line.start >= line.end || line.end > chars {
                return Err(format!(
                    "line {at}: span {}..{} is not inside a text of {chars} characters",
                    line.start, line.end
                ));
            }
            lines.push(line);
        }
        let class_names: Vec<String> =
            lines.iter().map(|l| l.label.clone()).collect::<BTreeSet<_>>().into_iter().collect();
        if class_names.len() < 2 {
            return Err(format!(
                "{} labelled spans with {} distinct labels; a probe needs two or more",
                lines.len(),
                class_names.len()
            ));
        }
        let (mut documents, mut spans) = (Vec::new(), HashMap::<String, Vec<_>>::new());
        for line in lines {
            let class = class_names.iter().position(|c| *c == line.label).unwrap_or(0);
            let (start, end) = (byte_offset(&line.text, line.start), byte_offset(&line.text, line.end));
            let (Some(start), Some(end)) = (start, end) else { continue };
            if !spans.contains_key(&line.text) {
                documents.push(line.text.clone());
            }
            spans.entry(line.text).or_default().push((start, end, class));
        }
        Ok(UserTask { name: name.to_string(), class_names, documents, spans })
    }
}

impl TokenLabeller for UserTask {
    fn name(&self) -> &str {
        &self.name
    }

    fn classes(&self) -> usize {
        self.class_names.len()
    }

    fn labels(&self, text: &str, spans: &[ByteSpan]) -> Vec<Option<usize>> {
        let Some(labelled) = self.spans.get(text) else { return vec![None; spans.len()] };
        spans
            .iter()
            .map(|&(start, end)| labelled.iter().find(|&&(s, e, _)| start < e && s < end).map(|&(_, _, c)| c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_spans_label_the_tokens_they_overlap() {
        let jsonl = concat!(
            r#"{"text": "é = open(path)", "start": 4, "end": 8, "label": "call"}"#,
            "\n",
            r#"{"text": "é = open(path)", "start": 0, "end": 1, "label": "name"}"#,
            "\n"
        );
        let task = UserTask::parse("t", jsonl).unwrap();
        assert_eq!(task.class_names, ["call", "name"]);
        assert_eq!(task.documents.len(), 1);
        // "é" is two bytes: characters 4..8 ("open") are bytes 5..9.
        let spans = [(0, 2), (2, 4), (4, 9), (9, 10)];
        assert_eq!(task.labels(&task.documents[0], &spans), [Some(1), None, Some(0), None]);
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        let err = |text: &str| UserTask::parse("t", text).err().unwrap();
        assert!(err("{\"text\": \"ab\", \"start\": 0, \"end\": 1, \"label\": \"x\"}\nnot json").starts_with("line 2:"));
        assert!(err(r#"{"text": "ab", "start": 1, "end": 5, "label": "x"}"#).contains("not inside"));
        assert!(err(r#"{"text": "ab", "start": 0, "end": 1, "label": "x"}"#).contains("two or more"));
    }
}

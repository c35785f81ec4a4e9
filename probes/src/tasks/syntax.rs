//! Syntax task: the tree-sitter-python node kind of each token, grouped into a few categories.

use models::tokenizer::ByteSpan;
use tree_sitter::{Node, Parser};

use crate::dataset::TokenLabeller;

/// The categories a token's syntax node falls into, in class order.
pub const SYNTAX_CLASSES: [&str; 9] =
    ["keyword", "identifier", "operator", "punctuation", "string", "number", "comment", "whitespace", "other"];

/// Labels each token with the category of the tree-sitter-python leaf under its last non-space byte.
pub struct SyntaxKind;

fn class(name: &str) -> usize {
    SYNTAX_CLASSES.iter().position(|&c| c == name).unwrap_or(SYNTAX_CLASSES.len() - 1)
}

/// The category of a leaf node.
fn category(node: &Node) -> usize {
    let kind = node.kind();
    let name = match kind {
        "comment" => "comment",
        "integer" | "float" => "number",
        "string_start" | "string_content" | "string_end" | "escape_sequence" | "escape_interpolation" => "string",
        "identifier" => "identifier",
        "true" | "false" | "none" => "keyword",
        _ if node.is_named() => "other",
        _ if kind.chars().all(|c| c.is_ascii_alphabetic() || c == '_') => "keyword",
        "(" | ")" | "[" | "]" | "{" | "}" | "," | ":" | "." | ";" => "punctuation",
        _ => "operator",
    };
    class(name)
}

/// The category of the byte at `at` in the parsed text: the leaf that covers it, or whitespace between leaves.
fn category_at(root: &Node, text: &[u8], at: usize) -> usize {
    match root.descendant_for_byte_range(at, at + 1) {
        Some(node) if node.child_count() == 0 => category(&node),
        // String content with children (escapes, f-string parts) still covers this byte.
        Some(node) if matches!(node.kind(), "string" | "string_content") => class("string"),
        _ if text[at].is_ascii_whitespace() => class("whitespace"),
        _ => class("other"),
    }
}

impl TokenLabeller for SyntaxKind {
    fn name(&self) -> &str {
        "syntax"
    }

    fn classes(&self) -> usize {
        SYNTAX_CLASSES.len()
    }

    fn labels(&self, text: &str, spans: &[ByteSpan]) -> Vec<Option<usize>> {
        let mut parser = Parser::new();
        let tree =
            parser.set_language(&tree_sitter_python::LANGUAGE.into()).ok().and_then(|()| parser.parse(text, None));
        let Some(tree) = tree else { return vec![None; spans.len()] };
        let (root, bytes) = (tree.root_node(), text.as_bytes());
        spans
            .iter()
            .map(|&(start, end)| {
                if end <= start || end > bytes.len() {
                    return None;
                }
                let last = (start..end).rev().find(|&b| !bytes[b].is_ascii_whitespace()).unwrap_or(end - 1);
                Some(category_at(&root, bytes, last))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-labelled tokens of a small program (spans chosen by hand, as a tokenizer would split it).
    #[test]
    fn each_kind_of_token_gets_its_category() {
        let text = "def f(x):\n    # add one\n    return x + 1.5, 'a'\n";
        let word = |w: &str| {
            let start = text.find(w).unwrap();
            (start, start + w.len())
        };
        let spans = [
            word("def"),
            word(" f"),
            word("("),
            word("# add"),
            word("return"),
            word(" +"),
            word("1.5"),
            word("'a'"),
            word(","),
            (9, 10),
        ];
        let labels: Vec<&str> =
            SyntaxKind.labels(text, &spans).into_iter().map(|l| SYNTAX_CLASSES[l.unwrap()]).collect();
        assert_eq!(
            labels,
            [
                "keyword",
                "identifier",
                "punctuation",
                "comment",
                "keyword",
                "operator",
                "number",
                "string",
                "punctuation",
                "whitespace"
            ]
        );
    }
}

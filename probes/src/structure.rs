//! Structure labels of Python source: bracket nesting depth and indentation level at every byte, computed
//! by a small lexer that skips brackets inside strings and comments.

/// Structure state at one byte of a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Structure {
    /// Open `(`, `[` and `{` before and including this byte (outside strings and comments).
    pub bracket_depth: usize,
    /// Leading spaces of this byte's line, in columns (a tab counts 8), divided by 4.
    pub indent_level: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Lexer {
    Code,
    Comment,
    /// Inside a string opened by `quote`, triple-quoted or not.
    Str {
        quote: u8,
        triple: bool,
    },
}

/// The structure state after each byte of `source`.
pub fn structure_per_byte(source: &str) -> Vec<Structure> {
    let bytes = source.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let (mut depth, mut indent, mut at_line_start, mut columns) = (0usize, 0usize, true, 0usize);
    let mut state = Lexer::Code;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let mut width = 1;
        if at_line_start {
            match b {
                b' ' => columns += 1,
                b'\t' => columns += 8 - columns % 8,
                _ => {
                    at_line_start = false;
                    indent = columns / 4;
                }
            }
        }
        match state {
            Lexer::Code => match b {
                b'#' => state = Lexer::Comment,
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                b'\'' | b'"' => {
                    let triple = bytes.get(i + 1) == Some(&b) && bytes.get(i + 2) == Some(&b);
                    state = Lexer::Str { quote: b, triple };
                    if triple {
                        width = 3;
                    }
                }
                _ => {}
            },
            Lexer::Comment => {
                if b == b'\n' {
                    state = Lexer::Code;
                }
            }
            Lexer::Str { quote, triple } => {
                if b == b'\\' {
                    width = 2;
                } else if b == quote
                    && (!triple || (bytes.get(i + 1) == Some(&quote) && bytes.get(i + 2) == Some(&quote)))
                {
                    state = Lexer::Code;
                    if triple {
                        width = 3;
                    }
                } else if b == b'\n' && !triple {
                    state = Lexer::Code;
                }
            }
        }
        for _ in 0..width.min(bytes.len() - i) {
            out.push(Structure { bracket_depth: depth, indent_level: indent });
        }
        if b == b'\n' {
            at_line_start = depth == 0 && !matches!(state, Lexer::Str { triple: true, .. });
            columns = 0;
            if at_line_start {
                indent = 0;
            }
        }
        i += width;
    }
    out.truncate(bytes.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(source: &str, needle: &str) -> Structure {
        structure_per_byte(source)[source.find(needle).unwrap()]
    }

    #[test]
    fn depth_counts_brackets_outside_strings_and_comments() {
        let src = "f(a, [b, {'x': \"(\"}], c)  # )))\ny = g(\n    1)\n";
        assert_eq!(at(src, "a,").bracket_depth, 1);
        assert_eq!(at(src, "b,").bracket_depth, 2);
        assert_eq!(at(src, "'x'").bracket_depth, 3);
        assert_eq!(at(src, "c)").bracket_depth, 1);
        assert_eq!(at(src, "y =").bracket_depth, 0, "brackets in the string and the comment must not count");
        assert_eq!(at(src, "1)").bracket_depth, 1);
    }

    #[test]
    fn indentation_follows_logical_lines() {
        let src = "def f():\n    if x:\n        return [\n            1]\n\tpass\n";
        assert_eq!(at(src, "def").indent_level, 0);
        assert_eq!(at(src, "if").indent_level, 1);
        assert_eq!(at(src, "return").indent_level, 2);
        // a continuation line keeps its logical line's indentation
        assert_eq!(at(src, "1]").indent_level, 2);
        assert_eq!(at(src, "pass").indent_level, 2);
    }

    #[test]
    fn triple_quoted_strings_hide_brackets() {
        let src = "x = \"\"\"(\n(\n\"\"\"\nz = (1)\n";
        assert_eq!(at(src, "z").bracket_depth, 0);
        assert_eq!(at(src, "1").bracket_depth, 1);
    }
}

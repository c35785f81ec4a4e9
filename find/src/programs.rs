//! Pieces the string scientist builds programs from, beyond the suite's primitives (issue 20): character maps
//! under a condition (`chars_where(x, "vowel", "double")`), per-word operations (`words(x, "reverse")`),
//! operations on the list of words (`word_list(x, "sort")`) and slices by share of the length
//! (`slice(x, 0.5, 1) + slice(x, 0, 0.5)`), all callable from the expression language.

use crate::strings::one_string;
use crate::value::Value;

/// Which characters a character map changes.
pub const CLASSES: [&str; 14] = [
    "vowel",
    "consonant",
    "digit",
    "space",
    "upper",
    "lower",
    "letter",
    "any",
    "even",
    "odd",
    "third",
    "word_start",
    "word_end",
    "not_last",
];

/// What a character map does to them.
pub const ACTIONS: [&str; 8] = ["drop", "double", "upper", "lower", "swap", "dash", "underscore", "star"];

/// Operations on the list of words.
pub const WORD_LISTS: [&str; 5] = ["sort", "reverse", "first_letters", "last_letters", "dedup"];

/// Shares of the length a slice starts or ends at.
pub const SHARES: [f64; 5] = [0.0, 1.0 / 3.0, 0.5, 2.0 / 3.0, 1.0];

const VOWELS: &str = "aeiouAEIOU";

fn in_class(class: &str, chars: &[char], i: usize) -> Option<bool> {
    let c = chars[i];
    let word_start = i == 0 || chars[i - 1] == ' ';
    Some(match class {
        "vowel" => VOWELS.contains(c),
        "consonant" => c.is_alphabetic() && !VOWELS.contains(c),
        "digit" => c.is_ascii_digit(),
        "space" => c == ' ',
        "upper" => c.is_uppercase(),
        "lower" => c.is_lowercase(),
        "letter" => c.is_alphabetic(),
        "any" => true,
        "even" => i.is_multiple_of(2),
        "odd" => i % 2 == 1,
        "third" => i % 3 == 2,
        "word_start" => c != ' ' && word_start,
        "word_end" => c != ' ' && chars.get(i + 1).is_none_or(|n| *n == ' '),
        "not_last" => i + 1 < chars.len(),
        _ => return None,
    })
}

fn act(action: &str, c: char) -> Option<String> {
    Some(match action {
        "drop" => String::new(),
        "double" => format!("{c}{c}"),
        "upper" => c.to_uppercase().collect(),
        "lower" => c.to_lowercase().collect(),
        "swap" if c.is_uppercase() => c.to_lowercase().collect(),
        "swap" => c.to_uppercase().collect(),
        "dash" => format!("{c}-"),
        "underscore" => "_".into(),
        "star" => "*".into(),
        _ => return None,
    })
}

/// `s` with `action` applied to every character of `class`; `None` for an unknown class or action.
pub fn chars_where(s: &str, class: &str, action: &str) -> Option<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        if in_class(class, &chars, i)? {
            out.push_str(&act(action, c)?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// `s` with the one-argument primitive `op` applied to every space-separated word.
pub fn words(s: &str, op: &str) -> Option<String> {
    let mapped: Option<Vec<String>> = s
        .split(' ')
        .map(|w| match one_string(op, w)? {
            Value::Str(t) => Some(t),
            Value::Num(_) => None,
        })
        .collect();
    Some(mapped?.join(" "))
}

/// An operation on the list of `s`'s words.
pub fn word_list(s: &str, op: &str) -> Option<String> {
    let mut list: Vec<&str> = s.split(' ').collect();
    Some(match op {
        "sort" => {
            list.sort_unstable();
            list.join(" ")
        }
        "reverse" => list.iter().rev().copied().collect::<Vec<_>>().join(" "),
        "first_letters" => list.iter().filter_map(|w| w.chars().next()).collect(),
        "last_letters" => list.iter().filter_map(|w| w.chars().last()).collect(),
        "dedup" => {
            list.dedup();
            list.join(" ")
        }
        _ => return None,
    })
}

/// The characters of `s` from share `from` to share `to` of its length (rounded down).
pub fn slice(s: &str, from: f64, to: f64) -> String {
    let chars: Vec<char> = s.chars().collect();
    let at = |share: f64| ((share.clamp(0.0, 1.0) * chars.len() as f64).floor() as usize).min(chars.len());
    let (a, b) = (at(from), at(to));
    if a >= b {
        String::new()
    } else {
        chars[a..b].iter().collect()
    }
}

/// Applies the piece `name` to `args` (the string first); `None` when there is no such piece.
pub fn apply(name: &str, args: &[Value]) -> Option<Value> {
    let text = match (name, args) {
        ("chars_where", [Value::Str(s), Value::Str(class), Value::Str(action)]) => chars_where(s, class, action)?,
        ("words", [Value::Str(s), Value::Str(op)]) => words(s, op)?,
        ("word_list", [Value::Str(s), Value::Str(op)]) => word_list(s, op)?,
        ("slice", [Value::Str(s), Value::Num(from), Value::Num(to)]) => slice(s, *from, *to),
        _ => return None,
    };
    Some(Value::Str(text))
}

fn share(v: f64) -> &'static str {
    if v <= 0.0 {
        "the start"
    } else if v >= 1.0 {
        "the end"
    } else if (v - 0.5).abs() < 1e-9 {
        "the middle"
    } else if v < 0.5 {
        "a third of the way"
    } else {
        "two thirds of the way"
    }
}

/// Every one-piece program as (expression, description): character maps, per-word primitives, word-list
/// operations, slices and two slices joined.
pub fn pieces(word_primitives: &[String]) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for class in CLASSES {
        for action in ACTIONS {
            all.push((
                format!("chars_where(x, \"{class}\", \"{action}\")"),
                format!("applies {action} to every {} character", class.replace('_', " ")),
            ));
        }
    }
    for op in word_primitives {
        all.push((format!("words(x, \"{op}\")"), format!("applies {op} to each word")));
    }
    for op in WORD_LISTS {
        all.push((format!("word_list(x, \"{op}\")"), format!("{} of the words", op.replace('_', " "))));
    }
    let slices: Vec<(String, String)> = SHARES
        .iter()
        .flat_map(|&a| SHARES.iter().filter(move |&&b| b > a).map(move |&b| (a, b)))
        .map(|(a, b)| (format!("slice(x, {a}, {b})"), format!("the characters from {} to {}", share(a), share(b))))
        .collect();
    for (code, description) in &slices {
        all.push((code.clone(), description.clone()));
        for (second, second_description) in &slices {
            all.push((format!("{code} + {second}"), format!("{description}, then {second_description}")));
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Expr;

    #[test]
    fn pieces_by_hand() {
        assert_eq!(chars_where("banana split", "vowel", "double").unwrap(), "baanaanaa spliit");
        assert_eq!(chars_where("abc", "not_last", "dash").unwrap(), "a-b-c");
        assert_eq!(chars_where("abcdefg", "third", "drop").unwrap(), "abdeg");
        assert_eq!(chars_where("hello big world", "word_start", "upper").unwrap(), "Hello Big World");
        assert_eq!(words("ab cd", "reverse").unwrap(), "ba dc");
        assert_eq!(word_list("portable network graphics", "first_letters").unwrap(), "png");
        assert_eq!(word_list("b a c", "sort").unwrap(), "a b c");
        assert_eq!(slice("abcde", 0.5, 1.0) + &slice("abcde", 0.0, 0.5), "cdeab");
        assert!(chars_where("x", "nosuch", "drop").is_none() && words("x", "nosuch").is_none());
        let run = |e: &str, x: &str| Expr::parse(e).unwrap().eval_str(x).unwrap();
        assert_eq!(run("slice(x, 0.5, 1) + slice(x, 0, 0.5)", "abcdef"), "defabc");
        assert_eq!(run("chars_where(lower(x), \"word_start\", \"upper\")", "hELLO wORLD"), "Hello World");
        for (code, _) in pieces(&["reverse".into()]) {
            assert!(Expr::parse(&code).unwrap().eval_str("Hello World 42").is_ok(), "{code}");
        }
    }
}

//! The string primitives of the FIND suite, callable from the expression language: case changes, reversal,
//! vowel and digit operations, letter shifts, counts returned as words, substitutions, and more.

use crate::value::Value;

const VOWELS: &str = "aeiouAEIOU";

/// A number as an English word ("zero" to "ninety-nine"; larger numbers as digits).
pub fn number_word(n: i64) -> String {
    const ONES: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 10] = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
    match n {
        0..=19 => ONES[n as usize].to_string(),
        20..=99 if n % 10 == 0 => TENS[(n / 10) as usize].to_string(),
        20..=99 => format!("{}-{}", TENS[(n / 10) as usize], ONES[(n % 10) as usize]),
        _ => n.to_string(),
    }
}

fn shift_letter(c: char, k: i64) -> char {
    let shift = |base: u8| (((c as u8 - base) as i64 + k).rem_euclid(26) as u8 + base) as char;
    if c.is_ascii_lowercase() {
        shift(b'a')
    } else if c.is_ascii_uppercase() {
        shift(b'A')
    } else {
        c
    }
}

fn map_chars(s: &str, f: impl Fn(char) -> char) -> String {
    s.chars().map(f).collect()
}

/// The one-argument primitive `name` of `s`; `None` when there is no such primitive.
pub fn one_string(name: &str, s: &str) -> Option<Value> {
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let text = |t: String| Some(Value::Str(t));
    match name {
        "upper" => text(s.to_uppercase()),
        "lower" => text(s.to_lowercase()),
        "capitalize" => text(chars.first().map_or(String::new(), |c| {
            c.to_uppercase().chain(chars[1..].iter().flat_map(|c| c.to_lowercase())).collect()
        })),
        "swapcase" => {
            text(map_chars(s, |c| if c.is_uppercase() { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() }))
        }
        "reverse" => text(chars.iter().rev().collect()),
        "remove_vowels" => text(s.chars().filter(|c| !VOWELS.contains(*c)).collect()),
        "keep_vowels" => text(s.chars().filter(|c| VOWELS.contains(*c)).collect()),
        "remove_consonants" => text(s.chars().filter(|c| !c.is_alphabetic() || VOWELS.contains(*c)).collect()),
        "remove_digits" => text(s.chars().filter(|c| !c.is_ascii_digit()).collect()),
        "keep_digits" => text(s.chars().filter(char::is_ascii_digit).collect()),
        "double_chars" => text(s.chars().flat_map(|c| [c, c]).collect()),
        "dedup" => {
            text(chars.iter().enumerate().filter(|(i, c)| *i == 0 || chars[i - 1] != **c).map(|(_, c)| c).collect())
        }
        "sort_chars" => {
            let mut sorted = chars.clone();
            sorted.sort_unstable();
            text(sorted.into_iter().collect())
        }
        "first_half" => text(chars[..n / 2].iter().collect()),
        "second_half" => text(chars[n / 2..].iter().collect()),
        "first_char" => text(chars.first().map(char::to_string).unwrap_or_default()),
        "last_char" => text(chars.last().map(char::to_string).unwrap_or_default()),
        "drop_first" => text(chars.iter().skip(1).collect()),
        "drop_last" => text(chars[..n.saturating_sub(1)].iter().collect()),
        "rotate_left" => text(chars.iter().skip(1).chain(chars.first()).collect()),
        "rotate_right" => text(chars.last().into_iter().chain(&chars[..n.saturating_sub(1)]).collect()),
        "mirror" => text(chars.iter().chain(chars.iter().rev()).collect()),
        "twice" => text(format!("{s}{s}")),
        "alternate_case" => text(
            chars
                .iter()
                .enumerate()
                .map(|(i, c)| if i % 2 == 0 { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() })
                .collect(),
        ),
        "rot13" => text(map_chars(s, |c| shift_letter(c, 13))),
        "vowels_to_star" => text(map_chars(s, |c| if VOWELS.contains(c) { '*' } else { c })),
        "digits_to_hash" => text(map_chars(s, |c| if c.is_ascii_digit() { '#' } else { c })),
        "count_vowels" => text(number_word(s.chars().filter(|c| VOWELS.contains(*c)).count() as i64)),
        "count_consonants" => {
            text(number_word(s.chars().filter(|c| c.is_alphabetic() && !VOWELS.contains(*c)).count() as i64))
        }
        "count_chars" => text(number_word(n as i64)),
        "count_digits" => text(number_word(s.chars().filter(char::is_ascii_digit).count() as i64)),
        "count_upper" => text(number_word(s.chars().filter(|c| c.is_uppercase()).count() as i64)),
        "even_chars" => text(chars.iter().step_by(2).collect()),
        "odd_chars" => text(chars.iter().skip(1).step_by(2).collect()),
        "letter_positions" => text(
            chars
                .iter()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        ((c.to_ascii_lowercase() as u8 - b'a' + 1) % 10 + b'0') as char
                    } else {
                        *c
                    }
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Applies the primitive `name` to `args` (the string first); `None` when there is no such primitive.
pub fn apply(name: &str, args: &[Value]) -> Option<Value> {
    match args {
        [Value::Str(s)] => one_string(name, s),
        [Value::Str(s), Value::Num(k)] if name == "shift" => {
            Some(Value::Str(map_chars(s, |c| shift_letter(c, *k as i64))))
        }
        [Value::Str(s), Value::Num(k)] if name == "repeat" && (0.0..=8.0).contains(k) => {
            Some(Value::Str(s.repeat(*k as usize)))
        }
        [Value::Str(s), Value::Str(a), Value::Str(b)] if name == "replace" => {
            Some(Value::Str(s.replace(a.as_str(), b)))
        }
        [Value::Str(s), Value::Str(t)] if name == "append" => Some(Value::Str(format!("{s}{t}"))),
        [Value::Str(s), Value::Str(t)] if name == "prepend" => Some(Value::Str(format!("{t}{s}"))),
        [Value::Str(s), Value::Str(t)] if name == "remove_char" => Some(Value::Str(s.replace(t.as_str(), ""))),
        _ => None,
    }
}

/// The composition "apply `g`, then `f`" of two primitives given as (expression, description): the expression
/// `f(g(x), ...)` and the description.
pub fn compose((f, f_description): &(String, String), (g, g_description): &(String, String)) -> (String, String) {
    (f.replacen("(x", &format!("({g}"), 1), format!("{g_description}, then {f_description}"))
}

/// Every primitive as an expression of `x` with its description: the building blocks of the suite and the
/// search space of the scientist (parameterised primitives with a few settings each).
pub fn primitives() -> Vec<(String, String)> {
    let plain = [
        ("upper", "converts every letter to upper case"),
        ("lower", "converts every letter to lower case"),
        ("capitalize", "capitalizes the first letter and lower-cases the rest"),
        ("swapcase", "swaps the case of every letter"),
        ("reverse", "reverses the string"),
        ("remove_vowels", "removes the vowels"),
        ("keep_vowels", "keeps only the vowels"),
        ("remove_consonants", "removes the consonants"),
        ("remove_digits", "removes the digits"),
        ("keep_digits", "keeps only the digits"),
        ("double_chars", "doubles every character"),
        ("dedup", "collapses runs of the same character"),
        ("sort_chars", "sorts the characters"),
        ("first_half", "keeps the first half"),
        ("second_half", "keeps the second half"),
        ("first_char", "returns the first character"),
        ("last_char", "returns the last character"),
        ("drop_first", "drops the first character"),
        ("drop_last", "drops the last character"),
        ("rotate_left", "moves the first character to the end"),
        ("rotate_right", "moves the last character to the front"),
        ("mirror", "appends the reversed string"),
        ("twice", "repeats the string twice"),
        ("alternate_case", "alternates upper and lower case, starting upper"),
        ("rot13", "applies rot13"),
        ("vowels_to_star", "replaces vowels with *"),
        ("digits_to_hash", "replaces digits with #"),
        ("count_vowels", "counts the vowels and returns the count as a word"),
        ("count_consonants", "counts the consonants and returns the count as a word"),
        ("count_chars", "returns the length as a word"),
        ("count_digits", "counts the digits and returns the count as a word"),
        ("count_upper", "counts upper-case letters and returns the count as a word"),
        ("even_chars", "keeps the characters at even positions"),
        ("odd_chars", "keeps the characters at odd positions"),
        ("letter_positions", "replaces each letter by its alphabet position modulo 10"),
    ];
    let mut all: Vec<(String, String)> = plain.iter().map(|(n, d)| (format!("{n}(x)"), d.to_string())).collect();
    for k in [1, 2, 3, 4, 5, -1, -2, -3] {
        all.push((format!("shift(x, {k})"), format!("shifts every letter {k} places in the alphabet")));
    }
    for (a, b) in [("a", "e"), ("e", "a"), ("o", "0"), ("s", "z"), ("i", "1"), ("t", "7"), ("l", "1"), ("u", "v")] {
        all.push((format!("replace(x, \"{a}\", \"{b}\")"), format!("replaces {a} with {b}")));
    }
    for t in ["ing", "xyz", "!", "ed"] {
        all.push((format!("append(x, \"{t}\")"), format!("appends {t:?}")));
        all.push((format!("prepend(x, \"{t}\")"), format!("prepends {t:?}")));
    }
    for c in ["a", "e", "t", "s", "o", "n"] {
        all.push((format!("remove_char(x, \"{c}\")"), format!("removes every {c}")));
    }
    all.push(("repeat(x, 3)".into(), "repeats the string three times".into()));
    all
}

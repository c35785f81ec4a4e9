//! The values functions take and return, and expressions compute: numbers and strings.

use std::fmt;

/// A value: a number or a string (as JSON: a number or a string; a number that is not finite, which JSON cannot
/// hold, is written `null` and read back as NaN).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A real number.
    Num(f64),
    /// A string.
    Str(String),
}

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Written {
            Num(f64),
            Str(String),
            NotFinite(()),
        }
        Ok(match Written::deserialize(deserializer)? {
            Written::Num(n) => Value::Num(n),
            Written::Str(s) => Value::Str(s),
            Written::NotFinite(()) => Value::Num(f64::NAN),
        })
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Num(n) => write!(f, "{n}"),
            Value::Str(s) => write!(f, "{s:?}"),
        }
    }
}

#[cfg(test)]
mod json_tests {
    use super::*;

    #[test]
    fn a_value_that_is_not_finite_is_written_null_and_read_back_as_nan() {
        let values = vec![Value::Num(1.5), Value::Str("a".into()), Value::Num(f64::NAN), Value::Num(f64::INFINITY)];
        let text = serde_json::to_string(&values).unwrap();
        assert_eq!(text, r#"[1.5,"a",null,null]"#);
        let back: Vec<Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(back[..2], values[..2]);
        assert!(matches!(back[2], Value::Num(n) if n.is_nan()) && matches!(back[3], Value::Num(n) if n.is_nan()));
    }
}

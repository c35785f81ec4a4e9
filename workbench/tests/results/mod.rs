//! A folder's results.json as the tests compare it: without the wall-clock fields, which differ between any two
//! runs.

use std::path::Path;

use serde_json::Value;

/// `dir/results.json` without its wall-clock fields.
pub fn results(dir: &Path) -> Value {
    let file = dir.join("results.json");
    let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut value: Value = serde_json::from_str(&text).unwrap();
    drop_timings(&mut value);
    value
}

/// Removes the wall-clock fields (`seconds`, `*_seconds`) and the times at the end of summary lines (", 0.59 s").
fn drop_timings(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| key != "seconds" && !key.ends_with("_seconds"));
            map.values_mut().for_each(drop_timings);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_timings),
        Value::String(text) => {
            let kept: Vec<&str> = text
                .split(", ")
                .filter(|part| part.strip_suffix(" s").is_none_or(|n| n.parse::<f64>().is_err()))
                .collect();
            *text = kept.join(", ");
        }
        _ => {}
    }
}

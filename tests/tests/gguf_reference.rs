//! The GGUF reader and dequantizers against the Python `gguf` package: real SmolLM2 tensors (Q8_0, Q4_1,
//! F32) and a file written by gguf-py with every metadata type and all fifteen tensor types.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use integration_tests::{default_model_path, max_abs_diff, read_f32, run_python};
use models::gguf::{GgmlType, GgufFile, MetaValue};
use serde_json::Value;

/// Runs the reference script once per test binary; returns its output folder and manifest.
fn reference() -> &'static (PathBuf, Value) {
    static REFERENCE: OnceLock<(PathBuf, Value)> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        run_python("gguf_reference.py", &[&default_model_path(), &dir]).expect("reference script runs");
        let manifest = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).expect("manifest"))
            .expect("manifest is JSON");
        (dir, manifest)
    })
}

fn assert_matches(file: &GgufFile, name: &str, expected_type: &str, expected_shape: &Value, reference: &Path) {
    let info = file.tensor(name).unwrap_or_else(|| panic!("tensor {name} is missing"));
    assert_eq!(info.kind.name(), expected_type, "{name}");
    let (values, shape) = file.dequantize(name).unwrap();
    let want_shape: Vec<i64> = serde_json::from_value(expected_shape.clone()).unwrap();
    assert_eq!(shape, want_shape, "{name}");
    let expected = read_f32(reference);
    let scale = expected.iter().fold(1f32, |m, v| m.max(v.abs()));
    let diff = max_abs_diff(&values, &expected);
    assert!(diff <= 1e-6 * scale, "{name} ({expected_type}): max |difference| {diff} against gguf.quants.dequantize");
}

#[test]
fn real_smollm2_tensors_dequantize_like_gguf_py() {
    let (dir, manifest) = reference();
    let file = GgufFile::open(default_model_path()).unwrap();
    let real = manifest["real"].as_array().unwrap();
    assert_eq!(real.len(), 4);
    for t in real {
        let name = t["name"].as_str().unwrap();
        assert_matches(&file, name, t["type"].as_str().unwrap(), &t["shape"], &dir.join(format!("real-{name}.f32")));
    }
}

#[test]
fn every_supported_type_dequantizes_like_gguf_py() {
    let (dir, manifest) = reference();
    let file = GgufFile::open(dir.join("synthetic.gguf")).unwrap();
    let synthetic = manifest["synthetic"].as_array().unwrap();
    let types: Vec<&str> = synthetic.iter().map(|t| t["type"].as_str().unwrap()).collect();
    let all = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"];
    assert_eq!(types, [&all[..], &["IQ4_NL", "IQ4_XS"]].concat());
    for t in synthetic {
        let name = t["name"].as_str().unwrap();
        assert_matches(&file, name, t["type"].as_str().unwrap(), &t["shape"], &dir.join(format!("{name}.f32")));
    }
}

#[test]
fn tensor_offsets_honour_the_custom_alignment() {
    let (dir, manifest) = reference();
    let file = GgufFile::open(dir.join("synthetic.gguf")).unwrap();
    assert_eq!(file.get("general.alignment").and_then(MetaValue::as_u64), Some(64));
    let bytes = std::fs::read(dir.join("synthetic.gguf")).unwrap();
    for (name, offset) in manifest["python_reader_tensor_offsets"].as_object().unwrap() {
        let info = file.tensor(name).unwrap();
        let data = file.tensor_bytes(info).unwrap();
        let start = offset.as_u64().unwrap() as usize;
        assert_eq!(data, &bytes[start..start + data.len()], "{name}: our data section differs from gguf-py's");
        assert_eq!(start % 64, 0);
    }
}

#[test]
fn every_metadata_value_type_reads_back() {
    let (dir, manifest) = reference();
    let file = GgufFile::open(dir.join("synthetic.gguf")).unwrap();
    for entry in manifest["metadata"].as_array().unwrap() {
        let key = entry["key"].as_str().unwrap();
        let value = file.get(key).unwrap_or_else(|| panic!("{key} missing"));
        let want = &entry["value"];
        let ok = match (entry["type"].as_str().unwrap(), value) {
            ("U8", MetaValue::U8(v)) => want.as_u64() == Some(u64::from(*v)),
            ("I8", MetaValue::I8(v)) => want.as_i64() == Some(i64::from(*v)),
            ("U16", MetaValue::U16(v)) => want.as_u64() == Some(u64::from(*v)),
            ("I16", MetaValue::I16(v)) => want.as_i64() == Some(i64::from(*v)),
            ("U32", MetaValue::U32(v)) => want.as_u64() == Some(u64::from(*v)),
            ("I32", MetaValue::I32(v)) => want.as_i64() == Some(i64::from(*v)),
            ("F32", MetaValue::F32(v)) => want.as_f64() == Some(f64::from(*v)),
            ("Bool", MetaValue::Bool(v)) => want.as_bool() == Some(*v),
            ("String", MetaValue::String(v)) => want.as_str() == Some(v.as_str()),
            ("U64", MetaValue::U64(v)) => want.as_u64() == Some(*v),
            ("I64", MetaValue::I64(v)) => want.as_i64() == Some(*v),
            ("F64", MetaValue::F64(v)) => want.as_f64() == Some(*v),
            ("Array", MetaValue::Array(items)) => {
                let got: Vec<Value> = items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(Value::from)
                            .or_else(|| i.as_f64().map(|f| Value::from(f as i64)))
                            .unwrap_or(Value::Null)
                    })
                    .collect();
                &Value::Array(got) == want
            }
            _ => false,
        };
        assert!(ok, "{key}: read {value:?}, gguf-py wrote {want} as {}", entry["type"]);
    }
}

#[test]
fn the_real_file_has_the_documented_layout() {
    let file = GgufFile::open(default_model_path()).unwrap();
    assert_eq!(file.version, 3);
    assert_eq!(file.tensors.len(), 272);
    assert_eq!(file.require_str("general.architecture").unwrap(), "llama");
    assert_eq!(file.tensor("token_embd.weight").unwrap().kind, GgmlType::Q8_0);
    assert_eq!(file.tensor("blk.0.attn_q.weight").unwrap().kind, GgmlType::Q4_1);
    assert!(file.tensor("output.weight").is_none(), "SmolLM2 ties its embeddings");
}

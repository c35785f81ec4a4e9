//! Models by repository id from a Hugging Face cache laid out as `huggingface_hub` lays it out (blobs, snapshot
//! links, refs), offline: the workbench finds the snapshot `huggingface_hub` finds, loads the sharded checkpoint
//! through its links with transformers' logits, and names what is missing from an incomplete one.

use std::path::{Path, PathBuf};

use integration_tests::{default_model_path, max_abs_diff, read_f32, run_python};
use models::hf_cache::resolve_in;
use models::{LoadOptions, Model};

const REPO: &str = "Tiny-Org/tiny-qwen2-coder";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Puts the files of `folder` into `cache` as the snapshot `COMMIT` of `REPO`, each a link into `blobs/`, with
/// `refs/main` naming it.
fn cache_folder(folder: &Path, cache: &Path) -> PathBuf {
    let repo = cache.join(format!("models--{}", REPO.replace('/', "--")));
    let snapshot = repo.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(repo.join("blobs")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::create_dir_all(&snapshot).unwrap();
    for (i, entry) in std::fs::read_dir(folder).unwrap().enumerate() {
        let file = entry.unwrap().path();
        let blob = format!("{i:064x}");
        std::fs::copy(&file, repo.join("blobs").join(&blob)).unwrap();
        std::os::unix::fs::symlink(Path::new("../../blobs").join(&blob), snapshot.join(file.file_name().unwrap()))
            .unwrap();
    }
    std::fs::write(repo.join("refs/main"), COMMIT).unwrap();
    snapshot
}

#[test]
fn a_model_in_the_hub_cache_loads_by_its_repository_id() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("reference");
    run_python("hf_reference.py", &[Path::new("qwen2"), Path::new("sharded"), &default_model_path(), &out]).unwrap();
    let cache = dir.path().join("hub");
    let snapshot = cache_folder(&out.join("model"), &cache);

    let theirs = run_python("hf_cache_reference.py", &[&cache, Path::new(REPO)]).unwrap();
    let theirs: serde_json::Value = serde_json::from_str(theirs.lines().last().unwrap()).unwrap();
    assert_eq!(resolve_in(&cache, REPO).unwrap(), PathBuf::from(theirs["snapshot"].as_str().unwrap()));
    assert_eq!(resolve_in(&cache, &format!("{REPO}@{COMMIT}")).unwrap(), snapshot);
    assert!(theirs["files"].as_array().unwrap().iter().any(|f| f == "model.safetensors.index.json"), "{theirs}");

    // By name, from the cache `HF_HUB_CACHE` names (the only test in this binary, so no other reads the variable).
    std::env::set_var("HF_HUB_CACHE", &cache);
    let model = Model::load(REPO, LoadOptions::default()).unwrap();
    let reference: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("reference.json")).unwrap()).unwrap();
    let ids: Vec<u32> = serde_json::from_value(reference["ids"][0].clone()).unwrap();
    let ours: Vec<f32> = Vec::try_from(model.logits(&ids).unwrap().flatten(0, -1)).unwrap();
    let diff = max_abs_diff(&ours, &read_f32(&out.join("logits-0.f32")));
    assert!(diff <= 1e-4, "logits differ from transformers' by {diff}");

    let listed = models::hf_cache::cached_models(&cache);
    assert_eq!(listed.len(), 1);
    let shards: u64 = std::fs::read_dir(&snapshot)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let entry = &listed[0];
    assert_eq!((entry.id.as_str(), entry.architecture.as_deref(), entry.bytes), (REPO, Some("qwen2"), shards));
    assert_eq!((entry.dtype.as_deref(), entry.problem.as_ref()), (Some("float32"), None), "{entry:?}");

    // A shard whose blob is gone (an interrupted download), a revision the cache lacks, a model it lacks.
    let index: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(snapshot.join("model.safetensors.index.json")).unwrap()).unwrap();
    let shard = index["weight_map"].as_object().unwrap().values().next().unwrap().as_str().unwrap().to_string();
    std::fs::remove_file(std::fs::canonicalize(snapshot.join(&shard)).unwrap()).unwrap();
    let error = Model::load(REPO, LoadOptions::default()).err().unwrap().to_string();
    assert!(error.contains(&shard) && error.contains("not in the Hugging Face cache"), "{error}");
    let problem = models::hf_cache::cached_models(&cache)[0].problem.clone().unwrap();
    assert!(problem.contains(&shard), "{problem}");
    let error = resolve_in(&cache, &format!("{REPO}@v2")).unwrap_err().to_string();
    assert!(error.contains("refs/v2") && error.contains(COMMIT), "{error}");
    let error = Model::load("Tiny-Org/absent", LoadOptions::default()).err().unwrap().to_string();
    assert!(error.contains("models--Tiny-Org--absent"), "{error}");
}

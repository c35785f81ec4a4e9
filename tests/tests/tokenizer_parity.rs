//! The tokenizer rebuilt from GGUF metadata against transformers.AutoTokenizer on real CPython files,
//! edge cases, special tokens and the chat template.

use integration_tests::{default_model_path, python, run_python, stdlib_files};
use models::gguf::GgufFile;
use models::{ChatMessage, Tokenizer};
use serde_json::{json, Value};

const EDGE_CASES: &[&str] = &[
    "",
    "def f(x):\n    return x ** 2\n",
    "naïve café — 東京 🚀🔥 \u{202e}rtl\u{202c} \u{301}combining",
    "x = 1234567890 + 3.14159e-10",
    "if x:\n\n\n        \t\t   y = 10\n    \n  12",
    "                                                                      \n",
    "\t\t\t\t\n\r\n\u{a0}\u{2003}nbsp",
    "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|><repo_name>x<file_sep>y<filename>z.py",
    "don't won't they'll I'm we've she'd it's",
    "    return {'a': [1, 2, 3], \"b\": (4, 5)}  # comment ✓",
    "a\u{0}b\u{7f}c\u{1b}[31m",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and emoji families 👨‍👩‍👧‍👦",
];

#[test]
fn ids_match_transformers_on_cpython_files_and_edge_cases() {
    let files = stdlib_files(60);
    let mut texts: Vec<String> =
        files.iter().map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).collect();
    texts.extend(EDGE_CASES.iter().map(|s| s.to_string()));
    let chats = vec![
        vec![ChatMessage::user("Write a function that reverses a list.")],
        vec![
            ChatMessage { role: "system".into(), content: "You write Python.".into() },
            ChatMessage::user("sum of 1..10?"),
            ChatMessage { role: "assistant".into(), content: "55".into() },
            ChatMessage::user("and 1..100?"),
        ],
    ];
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("in.json"), dir.path().join("out.json"));
    std::fs::write(&input, json!({"texts": texts, "chat": chats}).to_string()).unwrap();
    run_python("tokenizer_reference.py", &[&default_model_path(), &input, &output]).unwrap();
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(&output).unwrap()).unwrap();

    let tokenizer = Tokenizer::from_gguf(&GgufFile::open(default_model_path()).unwrap()).unwrap();
    let mut total_tokens = 0;
    for (i, text) in texts.iter().enumerate() {
        let ours = tokenizer.encode(text, true).unwrap();
        let theirs: Vec<u32> = serde_json::from_value(reference["ids"][i].clone()).unwrap();
        let label = files.get(i).map_or_else(|| format!("edge case {:?}", text), |p| p.display().to_string());
        if let Some(at) = ours
            .iter()
            .zip(&theirs)
            .position(|(a, b)| a != b)
            .or((ours.len() != theirs.len()).then(|| ours.len().min(theirs.len())))
        {
            panic!(
                "{label}: first difference at token {at}: ours {:?}, transformers {:?}",
                &ours[at..(at + 5).min(ours.len())],
                &theirs[at..(at + 5).min(theirs.len())]
            );
        }
        assert_eq!(
            tokenizer.decode(&ours, false).unwrap(),
            reference["decoded"][i].as_str().unwrap(),
            "{label}: decoding differs"
        );
        total_tokens += ours.len();
    }
    assert!(total_tokens > 100_000, "only {total_tokens} tokens compared");
    eprintln!(
        "{} texts, {total_tokens} tokens identical; transformers' unpatched GGUF tokenizer differs on {} texts",
        texts.len(),
        reference["plain_gguf_disagreements"]
    );

    for (i, chat) in chats.iter().enumerate() {
        let text = tokenizer.apply_chat_template(chat, true).unwrap();
        assert_eq!(text, reference["chat_text"][i].as_str().unwrap(), "chat template rendering");
        let ids: Vec<u32> = serde_json::from_value(reference["chat_ids"][i].clone()).unwrap();
        assert_eq!(tokenizer.encode(&text, false).unwrap(), ids, "chat ids");
    }
    assert!(python().exists());
}

#[test]
fn special_tokens_are_single_ids() {
    let tokenizer = Tokenizer::from_gguf(&GgufFile::open(default_model_path()).unwrap()).unwrap();
    let ids = tokenizer.encode("<|im_start|>user<|im_end|>", false).unwrap();
    assert_eq!(ids.first(), Some(&1));
    assert_eq!(ids.last(), Some(&2));
    assert_eq!(tokenizer.eos_id, Some(2));
    assert_eq!(tokenizer.decode(&ids, true).unwrap(), "user");
}

#[test]
fn sentencepiece_vocabularies_of_gguf_files_match_transformers() {
    // spm_gguf.py trains its vocabulary on the first 40 CPython files; these texts are others, and the edge cases.
    let mut texts: Vec<String> =
        stdlib_files(52)[40..].iter().map(|p| std::fs::read_to_string(p).expect("a CPython file")).collect();
    texts.extend(EDGE_CASES.iter().map(|s| s.to_string()));
    texts.push("  two leading spaces, then \u{2581} itself and \u{e9}t\u{e9}".into());
    let dir = tempfile::tempdir().unwrap();
    let texts_path = dir.path().join("texts.json");
    std::fs::write(&texts_path, serde_json::to_string(&texts).unwrap()).unwrap();
    for arch in ["llama", "gemma2", "phi3"] {
        let out = dir.path().join(arch);
        run_python("spm_gguf.py", &[std::path::Path::new(arch), &texts_path, &out]).expect("spm_gguf.py runs");
        let reference: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("reference.json")).unwrap()).unwrap();
        let tokenizer = Tokenizer::from_gguf(&GgufFile::open(out.join("vocab.gguf")).unwrap()).expect("builds");
        assert!(tokenizer.add_bos, "{arch}: the file asks for BOS");
        let mut tokens = 0;
        for case in reference["texts"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let ids: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
            assert_eq!(tokenizer.encode(text, false).unwrap(), ids, "{arch}: {text:?}");
            let with_bos: Vec<u32> = serde_json::from_value(case["with_bos"].clone()).unwrap();
            assert_eq!(tokenizer.encode(text, true).unwrap(), with_bos, "{arch}: {text:?} with BOS");
            assert_eq!(tokenizer.decode(&ids, false).unwrap(), case["decoded"].as_str().unwrap(), "{arch}: {text:?}");
            tokens += ids.len();
        }
        assert!(tokens > 20_000, "{arch}: only {tokens} tokens compared");
    }
}

//! The LM agent end to end: against an OpenAI-compatible server on loopback (scripted replies, garbage, a
//! server that never answers, unparseable code) and with the loaded SmolLM2 as its backend. Failures are
//! scored failures, never crashes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use find::agent::{LmAgent, LocalBackend};
use find::endpoint::EndpointBackend;
use find::score::score;
use find::session::{Budget, Interpreter, Session, SuiteFunction};
use find::suite::{Category, FunctionSpec};
use integration_tests::default_model;

fn linear() -> FunctionSpec {
    FunctionSpec {
        id: 0,
        category: Category::Clean,
        description: "linear".into(),
        domain: "all x".into(),
        definition: "2 * x + 1".into(),
        noise: None,
        corruption: None,
        mlp: None,
        test_inputs: Vec::new(),
    }
}

/// Serves one canned HTTP body per connection (or none, keeping the connection open, for `None`), and returns
/// the request bodies it received.
fn serve(bodies: Vec<Option<String>>) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let mut seen = Vec::new();
        for body in bodies {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let mut request = vec![0; length];
            reader.read_exact(&mut request).unwrap();
            seen.push(String::from_utf8_lossy(&request).into_owned());
            let mut stream = stream;
            match body {
                Some(body) => {
                    let head = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    stream.write_all(head.as_bytes()).unwrap();
                    stream.write_all(body.as_bytes()).unwrap();
                }
                None => std::thread::sleep(Duration::from_secs(3)),
            }
        }
        seen
    });
    (url, handle)
}

fn chat(content: &str) -> Option<String> {
    Some(serde_json::json!({"choices": [{"message": {"role": "assistant", "content": content}}]}).to_string())
}

fn run(url: &str, spec: &FunctionSpec) -> (find::score::Score, Option<String>, usize) {
    let backend = EndpointBackend::new(url, Some("test-key".into()), "scripted", Duration::from_secs(1));
    let mut agent = LmAgent::new(backend);
    let mut black_box = SuiteFunction::new(spec, 0);
    let mut session = Session::new(&mut black_box, Budget { rounds: 3, inputs_per_round: 8 });
    let answer = agent.interpret(&mut session);
    (score(spec, &answer), agent.last_error.clone(), session.transcript.len())
}

#[test]
fn the_agent_follows_the_protocol_with_an_endpoint() {
    let spec = linear();
    let (url, server) =
        serve(vec![chat("I will test.\nCALL: 0, 1, 2"), chat("DESCRIPTION: a line\nDOMAIN: all x\nCODE: 2 * x + 1")]);
    let (s, error, rounds) = run(&url, &spec);
    assert_eq!((s.value, error, rounds), (1.0, None, 1));
    let requests = server.join().unwrap();
    assert!(requests[0].contains("\"model\":\"scripted\"") && requests[0].contains("CALL:"));
    assert!(requests[1].contains("f(1) = 3"), "{}", requests[1]);
}

#[test]
fn endpoint_failures_are_scored_failures() {
    let spec = linear();
    let (url, server) = serve(vec![Some("this is not json".into())]);
    let (s, error, _) = run(&url, &spec);
    assert_eq!(s.value, 0.0);
    assert!(error.unwrap().contains("not JSON"));
    server.join().unwrap();

    let (url, server) = serve(vec![None]);
    let started = std::time::Instant::now();
    let (s, error, _) = run(&url, &spec);
    assert!(s.value == 0.0 && error.is_some() && started.elapsed() < Duration::from_secs(3));
    server.join().unwrap();

    let (url, server) = serve(vec![chat("DESCRIPTION: ?\nDOMAIN: ?\nCODE: 2 * x +")]);
    let (s, _, _) = run(&url, &spec);
    assert!(s.value == 0.0 && s.error.unwrap().contains("does not parse"));
    server.join().unwrap();
}

#[test]
fn the_agent_runs_on_the_local_model() {
    let model = default_model();
    let spec = linear();
    let mut agent = LmAgent::new(LocalBackend::new(&model, 48));
    let mut black_box = SuiteFunction::new(&spec, 0);
    let mut session = Session::new(&mut black_box, Budget { rounds: 2, inputs_per_round: 8 });
    let answer = agent.interpret(&mut session);
    let s = score(&spec, &answer);
    eprintln!("SmolLM2 as the agent: {:?} -> {s:?} after {} rounds", answer.code, session.transcript.len());
    assert!(s.value == 0.0 || s.value == 1.0);
    assert!(session.transcript.len() <= 2);
}

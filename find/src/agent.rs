//! The LM agent of FIND's protocol: a chat model is told how to call the function (`CALL: 1, 2.5, -3` or
//! `CALL: "abc", "Hello"`), sees the results, and ends with `DESCRIPTION:`, `DOMAIN:` and `CODE:` lines
//! (CODE in the workbench's expression language). Its backend is the loaded local model (through its chat
//! template) or any OpenAI-compatible chat endpoint (`crate::endpoint`, with the `http` feature). A backend that fails, times out or answers garbage ends
//! the session with an empty answer, which scores as a failure.

use models::{ChatMessage, GenerationConfig, Model};

use super::session::{Answer, Interpreter, Session};
use crate::value::Value;

/// A chat model.
pub trait ChatBackend {
    /// Its name in tables.
    fn name(&self) -> String;
    /// The assistant's reply to `messages`.
    fn reply(&mut self, messages: &[ChatMessage]) -> Result<String, String>;
}

/// The loaded model, prompted through its chat template, greedy.
pub struct LocalBackend<'a> {
    model: &'a Model,
    max_new_tokens: usize,
}

impl<'a> LocalBackend<'a> {
    /// Replies of up to `max_new_tokens` tokens from `model`.
    pub fn new(model: &'a Model, max_new_tokens: usize) -> Self {
        LocalBackend { model, max_new_tokens }
    }
}

impl ChatBackend for LocalBackend<'_> {
    fn name(&self) -> String {
        format!("local {}", self.model.source.display_name.as_deref().unwrap_or(&self.model.source.spec))
    }

    fn reply(&mut self, messages: &[ChatMessage]) -> Result<String, String> {
        let prompt = self.model.tokenizer.apply_chat_template(messages, true).map_err(|e| e.to_string())?;
        // Keep the most recent context when the conversation outgrows the model.
        let mut ids = self.model.tokenizer.encode(&prompt, false).map_err(|e| e.to_string())?;
        let room = self.model.shape().context_length.saturating_sub(self.max_new_tokens + 1);
        if ids.len() > room {
            ids.drain(..ids.len() - room);
        }
        let config = GenerationConfig::greedy(self.max_new_tokens);
        let generated =
            self.model.generate(&[ids], &config, &mut models::Hooks::default()).map_err(|e| e.to_string())?;
        Ok(generated.into_iter().next().map(|g| g.text).unwrap_or_default())
    }
}

/// The LM agent.
pub struct LmAgent<B: ChatBackend> {
    backend: B,
    /// What went wrong in the last session, if anything.
    pub last_error: Option<String>,
}

impl<B: ChatBackend> LmAgent<B> {
    /// An agent over `backend`.
    pub fn new(backend: B) -> Self {
        LmAgent { backend, last_error: None }
    }
}

fn instructions(session: &Session) -> String {
    let (kind, example) = if session.numeric_input() {
        ("a real number x (try values in [-128, 128])", "CALL: -128, -64, 0, 1.5, 64")
    } else {
        ("a string x", "CALL: \"hello\", \"World\", \"abc123\"")
    };
    format!(
        "You are interpreting a function f that takes {kind}. To run experiments, reply with one line like\n{example}\n\
         and you will see f at those inputs ({} per call, {} calls at most). When you know what f does, reply with three lines:\n\
         DESCRIPTION: <what f does, in words>\nDOMAIN: <where its behaviour changes, e.g. an interval [a, b]>\n\
         CODE: <f as one expression of x using + - * / ^, abs, sqrt, log, exp, sin, cos, tanh, floor, ceil, min, max, if(cond, a, b), relu, or string functions such as upper(x), reverse(x), shift(x, 1)>\n{}",
        session.budget.inputs_per_round,
        session.budget.rounds,
        session.hint().unwrap_or_default()
    )
}

/// The inputs of a `CALL:` line.
fn parse_call(reply: &str, numeric: bool) -> Option<Vec<Value>> {
    let line = reply.lines().find_map(|l| l.trim().strip_prefix("CALL:"))?;
    let values: Vec<Value> = if numeric {
        line.split(',').filter_map(|v| v.trim().parse::<f64>().ok()).map(Value::Num).collect()
    } else {
        line.split(',')
            .map(|v| v.trim().trim_matches('"').trim_matches('\''))
            .filter(|v| !v.is_empty())
            .map(|v| Value::Str(v.to_string()))
            .collect()
    };
    (!values.is_empty()).then_some(values)
}

/// The answer in a reply with `CODE:`, if there is one.
fn parse_answer(reply: &str) -> Option<Answer> {
    let field = |name: &str| {
        reply.lines().find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().trim_matches('`').to_string()))
    };
    let code = field("CODE:")?;
    let domain = field("DOMAIN:").unwrap_or_default();
    let interval = interval_in(&domain);
    Some(Answer { description: field("DESCRIPTION:").unwrap_or_default(), domain, code, interval })
}

/// The first `[a, b]` in a text.
fn interval_in(text: &str) -> Option<(f64, f64)> {
    let inner = text.split_once('[')?.1.split_once(']')?.0;
    let (a, b) = inner.split_once(',')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

impl<B: ChatBackend> Interpreter for LmAgent<B> {
    fn name(&self) -> String {
        format!("LM agent ({})", self.backend.name())
    }

    fn interpret(&mut self, session: &mut Session) -> Answer {
        self.last_error = None;
        let mut messages = vec![ChatMessage { role: "user".into(), content: instructions(session) }];
        let turns = session.budget.rounds + 2;
        for _ in 0..turns {
            let reply = match self.backend.reply(&messages) {
                Ok(r) => r,
                Err(e) => {
                    self.last_error = Some(e);
                    return Answer::default();
                }
            };
            if let Some(answer) = parse_answer(&reply) {
                return answer;
            }
            messages.push(ChatMessage { role: "assistant".into(), content: reply.clone() });
            let next = match parse_call(&reply, session.numeric_input()) {
                Some(inputs) if session.rounds_left() > 0 => match session.ask(&inputs) {
                    Ok(calls) => calls.iter().map(|(x, y)| format!("f({x}) = {y}")).collect::<Vec<_>>().join("\n"),
                    Err(e) => e.to_string(),
                },
                Some(_) => "No calls are left. Give your answer now with DESCRIPTION:, DOMAIN: and CODE: lines.".into(),
                None => "Reply with a CALL: line, or with DESCRIPTION:, DOMAIN: and CODE: lines.".into(),
            };
            messages.push(ChatMessage { role: "user".into(), content: next });
        }
        self.last_error = Some("the agent gave no answer".into());
        Answer::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_answers_are_parsed_from_replies() {
        assert_eq!(
            parse_call("Let me try.\nCALL: 1, -2.5, x, 3", true),
            Some(vec![Value::Num(1.0), Value::Num(-2.5), Value::Num(3.0)])
        );
        assert_eq!(
            parse_call("CALL: \"ab\", 'Cd'", false),
            Some(vec![Value::Str("ab".into()), Value::Str("Cd".into())])
        );
        assert_eq!(parse_call("no call here", true), None);
        let answer = parse_answer("DESCRIPTION: a line\nDOMAIN: noise on [2, 9.5]\nCODE: `2 * x + 1`").unwrap();
        assert_eq!((answer.code.as_str(), answer.interval), ("2 * x + 1", Some((2.0, 9.5))));
        assert!(parse_answer("DESCRIPTION: only words").is_none());
    }
}

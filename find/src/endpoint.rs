//! An OpenAI-compatible chat endpoint as the LM agent's backend (the `http` feature, on by default).

use std::time::Duration;

use models::ChatMessage;

use crate::agent::ChatBackend;

/// An OpenAI-compatible `/chat/completions` endpoint.
pub struct EndpointBackend {
    base_url: String,
    api_key: Option<String>,
    model: String,
    agent: ureq::Agent,
}

impl EndpointBackend {
    /// `base_url` (e.g. `https://api.openai.com/v1`), an optional key, the model name, and a timeout per reply.
    pub fn new(base_url: &str, api_key: Option<String>, model: &str, timeout: Duration) -> Self {
        let agent = ureq::AgentBuilder::new().timeout(timeout).build();
        EndpointBackend {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            model: model.to_string(),
            agent,
        }
    }

    /// The endpoint named by `OPENAI_BASE_URL` (default `https://api.openai.com/v1`), `OPENAI_API_KEY` and
    /// `OPENAI_MODEL` (default `gpt-4o-mini`).
    pub fn from_env(timeout: Duration) -> Self {
        let base = std::env::var("OPENAI_BASE_URL").unwrap_or_else(|_| "https://api.openai.com/v1".into());
        let model = std::env::var("OPENAI_MODEL").unwrap_or_else(|_| "gpt-4o-mini".into());
        Self::new(&base, std::env::var("OPENAI_API_KEY").ok(), &model, timeout)
    }
}

impl ChatBackend for EndpointBackend {
    fn name(&self) -> String {
        format!("endpoint {}", self.model)
    }

    fn reply(&mut self, messages: &[ChatMessage]) -> Result<String, String> {
        let body = serde_json::json!({"model": self.model, "messages": messages, "temperature": 0});
        let mut request = self.agent.post(&format!("{}/chat/completions", self.base_url));
        if let Some(key) = &self.api_key {
            request = request.set("Authorization", &format!("Bearer {key}"));
        }
        let response = request.send_json(body).map_err(|e| format!("the endpoint failed: {e}"))?;
        let value: serde_json::Value =
            response.into_json().map_err(|e| format!("the endpoint's answer is not JSON: {e}"))?;
        value["choices"][0]["message"]["content"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("the endpoint's answer has no choices[0].message.content: {value}"))
    }
}

//! `--server URL`: the commands that can go through a running
//! `dealledger serve` instead of opening the ledger themselves.
//!
//! Only transport lives here: build the request of contract §7, turn an
//! error body back into the message the local command would print, and hand
//! the JSON answer to the same printers. Plain `http://` only (no TLS).

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use serde_json::Value;

/// A client of one server.
pub struct Remote {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
}

/// A response whose status was a success.
pub struct Reply {
    /// The body as text.
    pub body: String,
    /// The `dealledger-previous-seq` header of an append, if any.
    pub previous_seq: Option<u64>,
}

impl Remote {
    /// A client of the server at `base` (e.g. `http://127.0.0.1:7878`).
    pub fn new(base: &str, token: Option<String>) -> Result<Self> {
        if !base.starts_with("http://") {
            return Err(anyhow!("--server {base}: only http:// URLs are supported"));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)))
            .build();
        Ok(Self { base: base.trim_end_matches('/').to_owned(), agent: config.into(), token })
    }

    /// `GET path` (with its query string).
    pub fn get(&self, path: &str) -> Result<Reply> {
        let url = format!("{}{path}", self.base);
        let response = self.agent.get(&url).call().with_context(|| format!("cannot reach the server at {url}"))?;
        Self::reply(response)
    }

    /// `POST path` with a body.
    pub fn post(&self, path: &str, content_type: &str, body: &str) -> Result<Reply> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.post(&url).header("content-type", content_type);
        if let Some(token) = &self.token {
            request = request.header("authorization", &format!("Bearer {token}"));
        }
        let response = request.send(body).with_context(|| format!("cannot reach the server at {url}"))?;
        Self::reply(response)
    }

    /// The body of a success, or the server's error message as the error.
    fn reply(mut response: ureq::http::Response<ureq::Body>) -> Result<Reply> {
        let status = response.status();
        let previous_seq = response
            .headers()
            .get(dealledger::server::PREVIOUS_SEQ_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = response
            .body_mut()
            .with_config()
            .limit(u64::MAX)
            .read_to_string()
            .context("reading the server's answer")?;
        if status.is_success() {
            return Ok(Reply { body, previous_seq });
        }
        let message = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| format!("server answered {status}: {body}"));
        Err(anyhow!(message))
    }
}

/// Percent-encodes a path segment or query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_what_a_url_cannot_carry() {
        assert_eq!(encode("scale-ai"), "scale-ai");
        assert_eq!(encode("2025-06-12T00:00:00+02:00"), "2025-06-12T00%3A00%3A00%2B02%3A00");
        assert_eq!(encode("a b/c"), "a%20b%2Fc");
    }
}

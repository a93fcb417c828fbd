//! A small client for MCP's Streamable HTTP transport, enough for the
//! registry (`initialize`, `tools/list`, `tools/call`): a JSON-RPC message
//! per POST, the answer as JSON or as server-sent events, the session in
//! `Mcp-Session-Id`. Written here on the workspace's reqwest 0.12 because
//! rmcp's HTTP client would build a second reqwest major version.
//!
//! Every answer is bounded (4 MiB, 30 s per request) and a server that
//! answers something else than JSON-RPC is refused with what it sent.

use std::time::Duration;

use serde_json::{json, Value};

/// The longest answer read, bytes.
const MAX_ANSWER: usize = 4 << 20;
/// The longest one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The protocol version asked for in `initialize`.
pub const PROTOCOL: &str = "2025-11-25";

/// An HTTP session.
#[derive(Debug)]
pub struct HttpSession {
    client: reqwest::Client,
    url: String,
    session: Option<String>,
    protocol: Option<String>,
    next: u64,
    /// What `initialize` answered.
    pub info: Value,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl HttpSession {
    /// Connects to `url` and completes `initialize`.
    pub async fn connect(url: &str) -> Result<HttpSession, String> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(err)?;
        let mut s = HttpSession {
            client,
            url: url.to_string(),
            session: None,
            protocol: None,
            next: 0,
            info: Value::Null,
        };
        let info = s
            .request(
                "initialize",
                json!({"protocolVersion": PROTOCOL, "capabilities": {},
                       "clientInfo": {"name": "nexus", "version": env!("CARGO_PKG_VERSION")}}),
            )
            .await?;
        s.protocol = info["protocolVersion"].as_str().map(str::to_string);
        s.info = info;
        s.notify("notifications/initialized").await?;
        Ok(s)
    }

    fn post(&self, body: &Value) -> reqwest::RequestBuilder {
        let mut r = self
            .client
            .post(&self.url)
            .header("Accept", "application/json, text/event-stream")
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(body).unwrap_or_default());
        if let Some(id) = &self.session {
            r = r.header("Mcp-Session-Id", id);
        }
        if let Some(v) = &self.protocol {
            r = r.header("MCP-Protocol-Version", v);
        }
        r
    }

    async fn notify(&self, method: &str) -> Result<(), String> {
        let r = self
            .post(&json!({"jsonrpc": "2.0", "method": method}))
            .send()
            .await
            .map_err(err)?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(format!("`{method}` was refused: HTTP {}", r.status()))
        }
    }

    /// Sends a request; its result, or the error it answered.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next += 1;
        let id = self.next;
        let mut r = self
            .post(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .send()
            .await
            .map_err(err)?;
        if let Some(sid) = r
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        {
            self.session = Some(sid.to_string());
        }
        if !r.status().is_success() {
            return Err(format!("`{method}` was refused: HTTP {}", r.status()));
        }
        let sse = r
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let chunk = r.chunk().await.map_err(err)?;
            let done = chunk.is_none();
            if let Some(c) = chunk {
                buf.extend_from_slice(&c);
                if buf.len() > MAX_ANSWER {
                    return Err(format!(
                        "the answer to `{method}` is over {} MiB",
                        MAX_ANSWER >> 20
                    ));
                }
            }
            let found = if sse {
                find_in_events(&buf, id)
            } else if done {
                Some(serde_json::from_slice::<Value>(&buf).map_err(|_| not_json(&buf))?)
            } else {
                None
            };
            if let Some(msg) = found {
                return answer(msg, method);
            }
            if done {
                return Err(format!("the server closed before answering `{method}`"));
            }
        }
    }

    /// Ends the session (best effort).
    pub async fn close(self) {
        if let Some(id) = &self.session {
            let _ = self
                .client
                .delete(&self.url)
                .header("Mcp-Session-Id", id)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
        }
    }
}

fn not_json(buf: &[u8]) -> String {
    format!(
        "it answered something that is not JSON-RPC: {:?}",
        String::from_utf8_lossy(&buf[..buf.len().min(120)])
    )
}

/// The message with `id` among the complete events of `buf`, if there.
fn find_in_events(buf: &[u8], id: u64) -> Option<Value> {
    let text = String::from_utf8_lossy(buf).replace("\r\n", "\n");
    let complete = text.rfind("\n\n").map_or("", |i| &text[..i]);
    for event in complete.split("\n\n") {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if data.is_empty() {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(&data.join("\n")) {
            if v["id"] == id {
                return Some(v);
            }
        }
    }
    None
}

fn answer(msg: Value, method: &str) -> Result<Value, String> {
    if let Some(e) = msg.get("error") {
        return Err(format!(
            "`{method}` failed: {}",
            e["message"]
                .as_str()
                .unwrap_or("an error without a message")
        ));
    }
    msg.get("result")
        .cloned()
        .ok_or_else(|| format!("the answer to `{method}` has no result"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn events_are_searched_for_the_answer_only_when_complete() {
        let b = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"n\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n\n";
        assert_eq!(super::find_in_events(b, 2).unwrap()["id"], 2);
        assert!(super::find_in_events(b, 3).is_none());
        let partial = b"data: {\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}";
        assert!(super::find_in_events(partial, 2).is_none());
        assert!(super::answer(serde_json::json!({"error": {"message": "no"}}), "x").is_err());
    }
}

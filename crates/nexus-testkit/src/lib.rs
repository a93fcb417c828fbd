//! Local stand-in servers for every provider API Nexus speaks.
//!
//! One [`StandIn`] listens on loopback and serves all the API families under
//! their own path prefixes (see [`Api::prefix`]), speaking each one's exact
//! wire format: response bodies, SSE grammars (Anthropic `ping` and `error`
//! events, OpenAI's `choices: []` usage chunk, OpenRouter's comments and
//! cost, Gemini's cumulative usage), error bodies and `Retry-After`.
//!
//! By default the model follows the echo protocol of
//! `nexus_core::conformance`. Tests queue [`Script`]s to make the next
//! request(s) to a family fail in a precise way: an HTTP error, an error in
//! the middle of a stream, a truncated stream, malformed JSON, a slow drip,
//! or a server that never answers.

#![allow(clippy::unwrap_used, clippy::panic)]

mod http;
pub mod nats;
pub mod oidc;
pub mod tls;
pub mod wire;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;

pub use wire::{Answer, Api};

/// One scripted behaviour for the next request to a family.
#[derive(Debug, Clone)]
pub enum Script {
    /// Answer normally with this text.
    Reply(String),
    /// Answer with the API's error body for this status.
    Status(u16),
    /// An error status with extra headers (`retry-after`, `retry-after-ms`,
    /// `x-should-retry`).
    StatusWithHeaders(u16, Vec<(String, String)>),
    /// OpenAI's `insufficient_quota` 429.
    InsufficientQuota,
    /// A raw body with a status (for malformed error bodies).
    Raw(u16, String),
    /// Streams `n` content frames, then the API's mid-stream error event.
    MidStreamError(usize),
    /// Streams `n` content frames, then ends the HTTP body cleanly without
    /// the stream's terminal event.
    Truncate(usize),
    /// Streams `n` content frames, then drops the connection mid-body.
    Drop(usize),
    /// A body (or stream frame) that is not valid JSON.
    Malformed,
    /// Streams normally with this pause before every frame.
    Drip(Duration),
    /// Reads the request and never answers.
    Hang,
    /// Answers with this text, streamed as every frame in one write, so
    /// that a client's own per-event cost is what a benchmark measures.
    Burst(String),
}

impl Script {
    /// A script from its JSON form, as the `nexus-standin` control endpoint
    /// `POST /_standin/script` takes it: `{"reply": TEXT}`, `{"status": 500}`,
    /// `{"status": 429, "headers": {"retry-after": "2"}}`,
    /// `{"insufficient_quota": true}`, `{"raw": [STATUS, BODY]}`,
    /// `{"mid_stream_error": N}`, `{"truncate": N}`, `{"drop": N}`,
    /// `{"malformed": true}`, `{"drip_ms": MS}`, `{"hang": true}`,
    /// `{"burst": TEXT}`.
    pub fn from_json(v: &Value) -> Result<Script, String> {
        let n = |k: &str| v.get(k).and_then(Value::as_u64);
        if let Some(t) = v.get("reply").and_then(Value::as_str) {
            return Ok(Script::Reply(t.to_string()));
        }
        if let Some(t) = v.get("burst").and_then(Value::as_str) {
            return Ok(Script::Burst(t.to_string()));
        }
        if let Some(s) = n("status") {
            let s = u16::try_from(s).map_err(|_| "bad status".to_string())?;
            return Ok(match v.get("headers").and_then(Value::as_object) {
                Some(h) => Script::StatusWithHeaders(
                    s,
                    h.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect(),
                ),
                None => Script::Status(s),
            });
        }
        if let Some(r) = v.get("raw").and_then(Value::as_array) {
            let s = r.first().and_then(Value::as_u64).unwrap_or(500);
            let b = r.get(1).and_then(Value::as_str).unwrap_or_default();
            return Ok(Script::Raw(s as u16, b.to_string()));
        }
        let count = |k: &str| n(k).map(|x| x as usize);
        if let Some(x) = count("mid_stream_error") {
            return Ok(Script::MidStreamError(x));
        }
        if let Some(x) = count("truncate") {
            return Ok(Script::Truncate(x));
        }
        if let Some(x) = count("drop") {
            return Ok(Script::Drop(x));
        }
        if let Some(ms) = n("drip_ms") {
            return Ok(Script::Drip(Duration::from_millis(ms)));
        }
        for (k, s) in [
            ("insufficient_quota", Script::InsufficientQuota),
            ("malformed", Script::Malformed),
            ("hang", Script::Hang),
        ] {
            if v.get(k).is_some() {
                return Ok(s);
            }
        }
        Err(format!("unknown script {v}"))
    }
}

/// A request the stand-in received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The family it was routed to.
    pub api: Api,
    /// `GET` or `POST`.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: HashMap<String, String>,
    /// The parsed JSON body (`Null` when empty).
    pub body: Value,
}

#[derive(Default)]
struct State {
    statics: HashMap<String, (u16, String)>,
    scripts: HashMap<Api, VecDeque<Script>>,
    recorded: Vec<Recorded>,
    required_key: Option<String>,
}

/// A running stand-in server. It stops when dropped.
pub struct StandIn {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StandIn").field("addr", &self.addr).finish()
    }
}

impl StandIn {
    /// Starts on an ephemeral loopback port.
    pub async fn start() -> StandIn {
        Self::start_on("127.0.0.1:0").await.unwrap()
    }

    /// Starts on `addr`.
    pub async fn start_on(addr: &str) -> std::io::Result<StandIn> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                let _ = sock.set_nodelay(true);
                let st = st.clone();
                tokio::spawn(async move {
                    let _ = http::serve_connection(sock, st).await;
                });
            }
        });
        Ok(StandIn { addr, state, task })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL a provider of family `api` should use.
    pub fn base_url(&self, api: Api) -> String {
        format!("http://{}{}", self.addr, api.prefix())
    }

    /// Requires this API key (in the family's own header); others get 401.
    pub fn require_key(&self, key: &str) -> &Self {
        self.state.lock().unwrap().required_key = Some(key.to_string());
        self
    }

    /// Serves `body` with `status` at `GET path` (a catalog, a JWKS, ...).
    pub fn serve_static(&self, path: &str, status: u16, body: impl Into<String>) -> &Self {
        self.state
            .lock()
            .unwrap()
            .statics
            .insert(path.to_string(), (status, body.into()));
        self
    }

    /// Queues behaviours for the next requests to `api`.
    pub fn script(&self, api: Api, scripts: impl IntoIterator<Item = Script>) -> &Self {
        self.state
            .lock()
            .unwrap()
            .scripts
            .entry(api)
            .or_default()
            .extend(scripts);
        self
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().recorded.clone()
    }

    /// Requests received for `api`.
    pub fn requests_for(&self, api: Api) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.api == api)
            .collect()
    }

    /// Environment variables pointing every provider at this server with
    /// `key` as the API key.
    pub fn env(&self, key: &str) -> Vec<(String, String)> {
        let mut v = Vec::new();
        for api in Api::ALL {
            v.push((api.base_url_env().to_string(), self.base_url(api)));
            v.push((api.key_env().to_string(), key.to_string()));
        }
        v
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The API key [`describe`]'s `env` carries.
pub const STANDIN_KEY: &str = "sk-standin-test";

/// A JSON description of the base URLs, printed by the `nexus-standin` binary.
pub fn describe(s: &StandIn) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("addr".into(), Value::String(s.addr().to_string()));
    for api in Api::ALL {
        m.insert(api.provider().into(), Value::String(s.base_url(api)));
    }
    // What a client in another language sets to use every family here.
    let env: serde_json::Map<String, Value> = s
        .env(STANDIN_KEY)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    m.insert("env".into(), Value::Object(env));
    Value::Object(m)
}

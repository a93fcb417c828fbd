//! The translation seam: a `Dialect` turns requests into HTTP parts and
//! bytes back into typed responses and events. It does no I/O.

use std::time::Duration;

use nexus_core::{ChatRequest, ChatResponse, ErrorKind, ProviderError, RemoteModel, StreamEvent};

use crate::sse::SseEvent;

/// An HTTP request, ready to send.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub method: Method,
    /// The full URL.
    pub url: String,
    /// Headers, credentials included.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body, for POST.
    pub body: Option<Vec<u8>>,
}

impl std::fmt::Debug for HttpRequest {
    // Headers may carry credentials: show their names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            )
            .field("body_len", &self.body.as_ref().map(Vec::len))
            .finish()
    }
}

/// The HTTP methods providers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
}

/// The parts of an HTTP response a dialect reads.
#[derive(Debug, Clone, Default)]
pub struct ResponseMeta {
    /// The status code.
    pub status: u16,
    /// The provider's request id, from the dialect's header.
    pub request_id: Option<String>,
    /// The wait the provider asked for (`retry-after-ms`, `retry-after`).
    pub retry_after: Option<Duration>,
    /// `x-should-retry`, when the server sent it.
    pub should_retry: Option<bool>,
}

/// Turns stream events of one API into typed [`StreamEvent`]s.
pub trait StreamDecoder: Send {
    /// Handles one SSE event, appending typed events to `out`.
    fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError>;

    /// Called at the end of the byte stream: fails if the stream was cut
    /// short (no terminal event), appends any final events otherwise.
    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError>;
}

/// One provider API's translation rules.
pub trait Dialect: Send + Sync {
    /// The provider's name, for errors.
    fn provider(&self) -> &str;

    /// The header carrying the provider's request id.
    fn request_id_header(&self) -> &'static str;

    /// Builds the chat request.
    fn chat_request(&self, req: &ChatRequest, stream: bool) -> Result<HttpRequest, ProviderError>;

    /// Parses a successful non-streamed answer.
    fn parse_chat(&self, body: &[u8], meta: &ResponseMeta) -> Result<ChatResponse, ProviderError>;

    /// A decoder for a streamed answer to `req`.
    fn stream_decoder(&self, req: &ChatRequest, meta: &ResponseMeta) -> Box<dyn StreamDecoder>;

    /// Turns an error response into a typed error.
    fn parse_error(&self, body: &[u8], meta: &ResponseMeta) -> ProviderError;

    /// Builds the list-models request.
    fn models_request(&self) -> HttpRequest;

    /// Parses the list-models answer.
    fn parse_models(&self, body: &[u8]) -> Result<Vec<RemoteModel>, ProviderError>;
}

/// A GET request (list endpoints).
pub(crate) fn get(url: String, headers: Vec<(&'static str, String)>) -> HttpRequest {
    HttpRequest {
        method: Method::Get,
        url,
        headers,
        body: None,
    }
}

/// Parses the `{"data": [{"id": ..., "display_name" | "name": ...}]}` model
/// list that Anthropic and the OpenAI family share.
pub(crate) fn parse_data_models(
    provider: &str,
    body: &[u8],
) -> Result<Vec<RemoteModel>, ProviderError> {
    #[derive(serde::Deserialize)]
    struct List {
        data: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        id: String,
        #[serde(default, alias = "name")]
        display_name: Option<String>,
    }
    let l: List = parse_json(provider, "models list", body)?;
    Ok(l.data
        .into_iter()
        .map(|i| RemoteModel {
            id: i.id,
            display_name: i.display_name,
        })
        .collect())
}

/// A protocol error: the server's bytes broke the API's grammar.
pub(crate) fn protocol(provider: &str, what: impl std::fmt::Display) -> ProviderError {
    ProviderError::new(ErrorKind::Protocol, provider, what.to_string())
}

/// Parses JSON or reports a protocol error naming what was being parsed.
pub(crate) fn parse_json<'a, T: serde::Deserialize<'a>>(
    provider: &str,
    what: &str,
    bytes: &'a [u8],
) -> Result<T, ProviderError> {
    serde_json::from_slice(bytes).map_err(|e| protocol(provider, format!("malformed {what}: {e}")))
}

/// Fills in status, request id and retry-after on an error built from a body.
pub(crate) fn with_meta(e: ProviderError, meta: &ResponseMeta) -> ProviderError {
    let mut e = e.with_status(meta.status);
    if e.request_id.is_none() {
        e.request_id.clone_from(&meta.request_id);
    }
    if e.retry_after.is_none() {
        e.retry_after = meta.retry_after;
    }
    e
}

/// A fallback message when an error body is not the API's JSON.
pub(crate) fn body_snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.is_empty() {
        "empty error body".into()
    } else {
        s.chars().take(300).collect()
    }
}

/// Builds an error from an error body that did not parse: classify by status.
pub(crate) fn fallback_error(provider: &str, body: &[u8], meta: &ResponseMeta) -> ProviderError {
    with_meta(
        ProviderError::new(
            nexus_core::conformance::kind_for_status(meta.status),
            provider,
            body_snippet(body),
        ),
        meta,
    )
}

/// Refines a status-based kind with the message text: providers signal a
/// too-long prompt with a plain 400.
pub(crate) fn refine_kind(kind: ErrorKind, code: Option<&str>, message: &str) -> ErrorKind {
    let m = message.to_ascii_lowercase();
    match code {
        Some("insufficient_quota") | Some("billing_hard_limit_reached") => {
            return ErrorKind::QuotaExceeded
        }
        Some("context_length_exceeded") | Some("string_above_max_length") => {
            return ErrorKind::ContextWindowExceeded
        }
        Some("content_policy_violation") | Some("content_filter") => {
            return ErrorKind::ContentPolicy
        }
        Some("invalid_api_key") => return ErrorKind::Auth,
        _ => {}
    }
    if kind == ErrorKind::InvalidRequest
        && (m.contains("prompt is too long")
            || m.contains("context length")
            || m.contains("context window")
            || m.contains("maximum context")
            || m.contains("exceeds the maximum number of tokens")
            || m.contains("too many tokens"))
    {
        return ErrorKind::ContextWindowExceeded;
    }
    kind
}

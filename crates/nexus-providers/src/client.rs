//! `HttpProvider`: one HTTP layer (reqwest + rustls) under every dialect.
//! Retries, timeouts, SSE framing and redaction live here, once.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use nexus_core::{
    ChatRequest, ChatResponse, ErrorKind, EventStream, Provider, ProviderError, RandomSource,
    RemoteModel, SeededRandom, StreamEvent,
};

use crate::dialect::{Dialect, HttpRequest, Method, ResponseMeta, StreamDecoder};
use crate::retry::{parse_retry_after, RetryPolicy};
use crate::sse::{SseDecoder, SseEvent};

/// Timeouts and retries.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for a whole non-streamed request, and for a stream's headers.
    pub request_timeout: Duration,
    /// Time a stream may go without a byte.
    pub stream_idle_timeout: Duration,
    /// Time a stream may take in all.
    pub stream_total_timeout: Duration,
    /// Bytes a whole response may have.
    pub max_response_bytes: usize,
    /// Bytes a stream may have in all.
    pub max_stream_bytes: usize,
    /// The retry policy.
    pub retry: RetryPolicy,
    /// Told before each wait between retries (the CLI prints it).
    pub on_retry: Option<RetryHook>,
}

/// What is told before a wait between retries.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryNotice {
    /// The provider.
    pub provider: String,
    /// Why (`rate_limited`, `overloaded`, `network`, ...).
    pub kind: nexus_core::ErrorKind,
    /// How long it waits.
    pub wait: Duration,
    /// The attempt that comes next (2 for the first retry).
    pub next_attempt: u32,
    /// Attempts in all, at most.
    pub attempts: u32,
}

/// A callback for [`RetryNotice`]s.
#[derive(Clone)]
pub struct RetryHook(pub std::sync::Arc<dyn Fn(&RetryNotice) + Send + Sync>);

impl std::fmt::Debug for RetryHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetryHook")
    }
}

/// Bytes of an error body that are read (the rest is not needed to say
/// what went wrong).
const MAX_ERROR_BODY: usize = 1 << 20;

/// Redirects followed within one origin, at most.
const MAX_REDIRECTS: usize = 5;

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions::from_config(&nexus_core::HttpConfig::default())
    }
}

impl HttpOptions {
    /// From the `[http]` section of `config.toml`.
    pub fn from_config(c: &nexus_core::HttpConfig) -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(c.connect_timeout_secs.max(1)),
            request_timeout: Duration::from_secs(c.request_timeout_secs.max(1)),
            stream_idle_timeout: Duration::from_secs(c.stream_idle_timeout_secs.max(1)),
            stream_total_timeout: Duration::from_secs(c.stream_total_timeout_secs.max(1)),
            max_response_bytes: usize::try_from(c.max_response_bytes.max(1024))
                .unwrap_or(usize::MAX),
            max_stream_bytes: usize::try_from(c.max_stream_bytes.max(1024)).unwrap_or(usize::MAX),
            retry: RetryPolicy {
                max_retries: c.max_retries,
                max_total_wait: Duration::from_secs(c.max_retry_wait_secs),
                ..RetryPolicy::default()
            },
            on_retry: None,
        }
    }
}

/// Builds the shared reqwest client. It follows redirects only within the
/// same origin (scheme, host and port): reqwest drops `Authorization` on a
/// cross-host redirect but not `x-api-key` or `x-goog-api-key`, and a 307
/// would carry the prompt along, so a redirect elsewhere is not followed
/// and becomes an error that names where it pointed.
pub fn build_client(opts: &HttpOptions) -> Result<reqwest::Client, String> {
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .last()
            .is_some_and(|prev| prev.origin() == attempt.url().origin());
        if !same_origin || attempt.previous().len() > MAX_REDIRECTS {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .redirect(policy)
        .connect_timeout(opts.connect_timeout)
        .user_agent(concat!("nexus/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| format!("could not build the HTTP client: {e}"))
}

/// A [`Provider`] made of a [`Dialect`] and the shared HTTP layer.
pub struct HttpProvider {
    dialect: Arc<dyn Dialect>,
    client: reqwest::Client,
    opts: HttpOptions,
    rng: Arc<dyn RandomSource>,
    secret: Option<String>,
    token: Option<Arc<dyn crate::auth::TokenSource>>,
}

impl std::fmt::Debug for HttpProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpProvider")
            .field("provider", &self.dialect.provider())
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl HttpProvider {
    /// A provider over `dialect`. `secret` is the credential's value, used
    /// only to scrub it from any error text a server echoes back.
    pub fn new(
        dialect: Arc<dyn Dialect>,
        client: reqwest::Client,
        opts: HttpOptions,
        secret: Option<String>,
    ) -> Self {
        HttpProvider {
            dialect,
            client,
            opts,
            rng: Arc::new(SeededRandom::from_entropy()),
            secret: secret.filter(|s| s.len() >= 4),
            token: None,
        }
    }

    /// Authenticates every request with a bearer token from `source`
    /// (OAuth), asked for before each request so it is refreshed in time.
    pub fn with_token_source(mut self, source: Arc<dyn crate::auth::TokenSource>) -> Self {
        self.token = Some(source);
        self
    }

    /// Replaces the jitter source (tests seed it).
    pub fn with_random(mut self, rng: Arc<dyn RandomSource>) -> Self {
        self.rng = rng;
        self
    }

    fn redact(&self, e: ProviderError) -> ProviderError {
        redact(e, self.secret.as_deref(), None)
    }

    fn err(&self, kind: ErrorKind, msg: impl Into<String>) -> ProviderError {
        ProviderError::new(kind, self.dialect.provider(), msg)
    }

    fn transport_error(&self, e: &reqwest::Error) -> ProviderError {
        // reqwest's Display names the URL; no credential ever sits in a URL.
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Network
        };
        self.redact(self.err(kind, msg))
    }

    fn meta(&self, resp: &reqwest::Response) -> ResponseMeta {
        let h = resp.headers();
        let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok());
        ResponseMeta {
            status: resp.status().as_u16(),
            request_id: get(self.dialect.request_id_header())
                .or_else(|| get("request-id"))
                .or_else(|| get("x-request-id"))
                .map(str::to_string),
            retry_after: parse_retry_after(
                get("retry-after-ms"),
                get("retry-after"),
                SystemTime::now(),
            ),
            should_retry: get("x-should-retry").and_then(|v| match v {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            }),
        }
    }

    /// One attempt: the response with a success status (and the bearer
    /// token it was sent with, to scrub from later errors), or a typed
    /// error (plus `x-should-retry`).
    async fn send_once(
        &self,
        req: &HttpRequest,
        stream: bool,
    ) -> Result<(reqwest::Response, ResponseMeta, Option<String>), (ProviderError, Option<bool>)>
    {
        let mut rb = match req.method {
            Method::Get => self.client.get(&req.url),
            Method::Post => self.client.post(&req.url),
        };
        let bearer = match &self.token {
            Some(t) => Some(t.bearer().await.map_err(|e| (e, None))?),
            None => None,
        };
        for (k, v) in &req.headers {
            match (&bearer, *k) {
                (Some(b), "authorization") => rb = rb.header(*k, format!("Bearer {}", b.expose())),
                // With a bearer token, API-key headers are not sent.
                (Some(_), "x-api-key" | "x-goog-api-key") => {}
                _ => rb = rb.header(*k, v),
            }
        }
        if stream {
            rb = rb.header("accept", "text/event-stream");
        }
        if let Some(b) = &req.body {
            rb = rb.body(b.clone());
        }
        let send = if stream {
            // The whole-request timeout would cut long streams: bound only
            // the wait for headers here; the idle timeout guards the body.
            match tokio::time::timeout(self.opts.request_timeout, rb.send()).await {
                Ok(r) => r,
                Err(_) => {
                    return Err((
                        self.err(
                            ErrorKind::Timeout,
                            format!(
                                "no response headers within {}s",
                                self.opts.request_timeout.as_secs()
                            ),
                        ),
                        None,
                    ))
                }
            }
        } else {
            rb.timeout(self.opts.request_timeout).send().await
        };
        let bearer = bearer.map(|b| b.expose().to_string());
        let scrub = |e: ProviderError| redact(e, self.secret.as_deref(), bearer.as_deref());
        let resp = send.map_err(|e| (scrub(self.transport_error(&e)), None))?;
        let meta = self.meta(&resp);
        if resp.status().is_success() {
            return Ok((resp, meta, bearer));
        }
        if resp.status().is_redirection() {
            let to = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("?")
                .chars()
                .take(200)
                .collect::<String>();
            let e = self.err(
                ErrorKind::InvalidRequest,
                format!(
                    "the server redirected ({}) to {to}; Nexus sends credentials to one origin only and does not follow it: set the provider's base_url to where the API really is",
                    resp.status().as_u16()
                ),
            );
            return Err((scrub(e), Some(false)));
        }
        // Error bodies are read up to a bound, and within the request time.
        let body = match tokio::time::timeout(
            self.opts.request_timeout,
            read_capped(resp, MAX_ERROR_BODY, false),
        )
        .await
        {
            Ok(Ok(b)) => b,
            Ok(Err(ReadError::Transport(e))) => {
                return Err((scrub(self.transport_error(&e)), meta.should_retry))
            }
            Ok(Err(ReadError::TooLarge)) | Err(_) => Bytes::new(),
        };
        Err((
            scrub(self.dialect.parse_error(&body, &meta)),
            meta.should_retry,
        ))
    }

    /// Waits before the next attempt, or gives `e` back (saying when to try
    /// again) when that wait would take the request past its total.
    async fn backoff(
        &self,
        attempt: u32,
        e: ProviderError,
        waited: &mut Duration,
    ) -> Result<(), ProviderError> {
        let d = self.opts.retry.delay(attempt, e.retry_after, &*self.rng);
        if !self.opts.retry.within_total(*waited, d) {
            let mut e = e;
            if let Some(ra) = e.retry_after {
                e.message = format!(
                    "{}; the server asks to wait {} s, more than the {} s Nexus waits (http.max_retry_wait_secs): try again later",
                    e.message,
                    ra.as_secs_f64().ceil(),
                    self.opts.retry.max_total_wait.as_secs()
                );
            }
            return Err(e);
        }
        *waited += d;
        if let Some(hook) = &self.opts.on_retry {
            (hook.0)(&RetryNotice {
                provider: e.provider.clone(),
                kind: e.kind,
                wait: d,
                next_attempt: attempt + 2,
                attempts: self.opts.retry.max_retries + 1,
            });
        }
        // The error is already redacted; no key or token is in it.
        tracing::warn!(
            provider = %e.provider,
            attempt = attempt + 1,
            wait_ms = d.as_millis() as u64,
            "retrying after {}: {e}",
            e.kind.as_str()
        );
        tokio::time::sleep(d).await;
        Ok(())
    }

    /// Sends with retries and returns the body of the successful response
    /// (at most `max_response_bytes` of it), and the bearer token it was
    /// sent with.
    async fn send_with_retries(
        &self,
        req: &HttpRequest,
    ) -> Result<(Bytes, ResponseMeta, Option<String>), ProviderError> {
        let mut attempt = 0;
        let mut waited = Duration::ZERO;
        loop {
            let (e, should) = match self.send_once(req, false).await {
                Ok((resp, meta, bearer)) => {
                    match read_capped(resp, self.opts.max_response_bytes, true).await {
                        Ok(b) => return Ok((b, meta, bearer)),
                        Err(ReadError::Transport(e)) => (
                            redact(
                                self.transport_error(&e),
                                self.secret.as_deref(),
                                bearer.as_deref(),
                            ),
                            None,
                        ),
                        Err(ReadError::TooLarge) => {
                            return Err(self.err(
                                ErrorKind::TooLarge,
                                format!(
                                    "the response is larger than {} bytes (max_response_bytes)",
                                    self.opts.max_response_bytes
                                ),
                            ))
                        }
                    }
                }
                Err(e) => e,
            };
            if !self.opts.retry.should_retry(attempt, &e, should) {
                return Err(e);
            }
            self.backoff(attempt, e, &mut waited).await?;
            attempt += 1;
        }
    }
}

/// Is this event part of the answer (after which nothing may be retried)?
fn is_content(e: &StreamEvent) -> bool {
    !matches!(e, StreamEvent::Start { .. } | StreamEvent::Usage { .. })
}

#[async_trait]
impl Provider for HttpProvider {
    fn name(&self) -> &str {
        self.dialect.provider()
    }

    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let http = self.dialect.chat_request(request, false)?;
        let (body, meta, bearer) = self.send_with_retries(&http).await?;
        self.dialect.parse_chat(&body, &meta).map_err(|e| {
            redact(
                e.with_request_id(meta.request_id.clone()),
                self.secret.as_deref(),
                bearer.as_deref(),
            )
        })
    }

    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let http = self.dialect.chat_request(request, true)?;
        let mut attempt = 0;
        let mut waited = Duration::ZERO;
        loop {
            let (resp, meta, bearer) = match self.send_once(&http, true).await {
                Ok(ok) => ok,
                Err((e, should)) => {
                    if !self.opts.retry.should_retry(attempt, &e, should) {
                        return Err(e);
                    }
                    self.backoff(attempt, e, &mut waited).await?;
                    attempt += 1;
                    continue;
                }
            };
            let mut pump = Pump {
                body: Box::pin(resp.bytes_stream()),
                sse: SseDecoder::new(),
                decoder: self.dialect.stream_decoder(request, &meta),
                queue: VecDeque::new(),
                scratch: Vec::new(),
                out: Vec::new(),
                pending_error: None,
                idle: self.opts.stream_idle_timeout,
                deadline: tokio::time::Instant::now() + self.opts.stream_total_timeout,
                total: self.opts.stream_total_timeout,
                bytes_left: self.opts.max_stream_bytes,
                max_bytes: self.opts.max_stream_bytes,
                done: false,
                provider: self.dialect.provider().to_string(),
                request_id: meta.request_id.clone(),
                secret: self.secret.clone(),
                bearer,
            };
            // Read until the first piece of the answer. An error before it
            // may still be retried; after it, never.
            let mut head = Vec::new();
            let early_error = loop {
                match pump.next().await {
                    None => break None,
                    Some(Ok(ev)) => {
                        let content = is_content(&ev);
                        head.push(ev);
                        if content {
                            break None;
                        }
                    }
                    Some(Err(e)) => break Some(e),
                }
            };
            if let Some(e) = early_error {
                if self.opts.retry.should_retry(attempt, &e, None) {
                    self.backoff(attempt, e, &mut waited).await?;
                    attempt += 1;
                    continue;
                }
                return Err(e);
            }
            let head = futures_util::stream::iter(head.into_iter().map(Ok));
            let rest = futures_util::stream::unfold(pump, |mut p| async move {
                p.next().await.map(|item| (item, p))
            });
            return Ok(Box::pin(head.chain(rest)));
        }
    }

    async fn list_models(&self) -> Result<Vec<RemoteModel>, ProviderError> {
        let http = self.dialect.models_request();
        let (body, _meta, bearer) = self.send_with_retries(&http).await?;
        self.dialect
            .parse_models(&body)
            .map_err(|e| redact(e, self.secret.as_deref(), bearer.as_deref()))
    }
}

/// Removes the API key and the bearer token from an error's text, on every
/// path that can carry a server's words (error bodies, parse errors of a
/// 200 reply, stream decoding, transport errors).
fn redact(mut e: ProviderError, secret: Option<&str>, bearer: Option<&str>) -> ProviderError {
    for s in [secret, bearer]
        .into_iter()
        .flatten()
        .filter(|s| s.len() >= 4)
    {
        if e.message.contains(s) {
            e.message = e.message.replace(s, "[REDACTED]");
        }
    }
    e
}

enum ReadError {
    Transport(reqwest::Error),
    TooLarge,
}

/// Reads a body, refusing more than `cap` bytes: a `Content-Length` over it
/// is refused before reading, and a body without one is stopped there.
/// With `strict` false, a larger body is cut at `cap` instead (error
/// bodies: the start says what went wrong).
async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
    strict: bool,
) -> Result<Bytes, ReadError> {
    if strict && resp.content_length().is_some_and(|n| n > cap as u64) {
        return Err(ReadError::TooLarge);
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Transport)? {
        if buf.len() + chunk.len() > cap {
            if strict {
                return Err(ReadError::TooLarge);
            }
            buf.extend_from_slice(&chunk[..cap - buf.len()]);
            break;
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Bytes → SSE events → typed events, with the idle timeout.
struct Pump {
    body: ByteStream,
    sse: SseDecoder,
    decoder: Box<dyn StreamDecoder>,
    queue: VecDeque<StreamEvent>,
    scratch: Vec<SseEvent>,
    out: Vec<StreamEvent>,
    pending_error: Option<ProviderError>,
    idle: Duration,
    /// When the whole stream must have ended.
    deadline: tokio::time::Instant,
    total: Duration,
    /// Bytes the stream may still send, of `max_bytes`.
    bytes_left: usize,
    max_bytes: usize,
    done: bool,
    provider: String,
    request_id: Option<String>,
    secret: Option<String>,
    bearer: Option<String>,
}

impl Pump {
    fn fail(&mut self, e: ProviderError) -> ProviderError {
        self.done = true;
        let mut e = e;
        if e.request_id.is_none() {
            e.request_id.clone_from(&self.request_id);
        }
        redact(e, self.secret.as_deref(), self.bearer.as_deref())
    }

    async fn next(&mut self) -> Option<Result<StreamEvent, ProviderError>> {
        loop {
            if let Some(ev) = self.queue.pop_front() {
                return Some(Ok(ev));
            }
            if let Some(e) = self.pending_error.take() {
                return Some(Err(self.fail(e)));
            }
            if self.done {
                return None;
            }
            let now = tokio::time::Instant::now();
            if now >= self.deadline {
                let e = ProviderError::new(
                    ErrorKind::TooLarge,
                    self.provider.clone(),
                    format!(
                        "the stream went on for more than {}s (stream_total_timeout_secs)",
                        self.total.as_secs()
                    ),
                );
                return Some(Err(self.fail(e)));
            }
            let wait = self.idle.min(self.deadline - now);
            match tokio::time::timeout(wait, self.body.next()).await {
                Err(_) if wait < self.idle => continue,
                Err(_) => {
                    let e = ProviderError::new(
                        ErrorKind::Timeout,
                        self.provider.clone(),
                        format!("the stream sent nothing for {}s", self.idle.as_secs()),
                    );
                    return Some(Err(self.fail(e)));
                }
                Ok(None) => {
                    self.done = true;
                    if let Err(e) = self.decoder.finish(&mut self.out) {
                        self.pending_error = Some(e);
                    }
                    self.queue.extend(self.out.drain(..));
                }
                Ok(Some(Err(e))) => {
                    let e = ProviderError::new(
                        if e.is_timeout() {
                            ErrorKind::Timeout
                        } else {
                            ErrorKind::Network
                        },
                        self.provider.clone(),
                        format!("the stream broke: {e}"),
                    );
                    return Some(Err(self.fail(e)));
                }
                Ok(Some(Ok(bytes))) => {
                    if bytes.len() > self.bytes_left {
                        let e = ProviderError::new(
                            ErrorKind::TooLarge,
                            self.provider.clone(),
                            format!(
                                "the stream sent more than {} bytes (max_stream_bytes)",
                                self.max_bytes
                            ),
                        );
                        return Some(Err(self.fail(e)));
                    }
                    self.bytes_left -= bytes.len();
                    if self.sse.feed(&bytes, &mut self.scratch).is_err() {
                        let e = ProviderError::new(
                            ErrorKind::Protocol,
                            self.provider.clone(),
                            "a stream event exceeded 16 MiB",
                        );
                        return Some(Err(self.fail(e)));
                    }
                    for ev in self.scratch.drain(..) {
                        if let Err(e) = self.decoder.on_event(&ev, &mut self.out) {
                            self.pending_error = Some(e);
                            break;
                        }
                    }
                    self.scratch.clear();
                    self.queue.extend(self.out.drain(..));
                }
            }
        }
    }
}

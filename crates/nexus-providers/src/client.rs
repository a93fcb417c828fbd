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
    /// The retry policy.
    pub retry: RetryPolicy,
}

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
            retry: RetryPolicy {
                max_retries: c.max_retries,
                ..RetryPolicy::default()
            },
        }
    }
}

/// Builds the shared reqwest client.
pub fn build_client(opts: &HttpOptions) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
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

    fn redact(&self, mut e: ProviderError) -> ProviderError {
        if let Some(s) = &self.secret {
            if e.message.contains(s.as_str()) {
                e.message = e.message.replace(s.as_str(), "[REDACTED]");
            }
        }
        e
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

    /// One attempt: the response with a success status, or a typed error
    /// (plus `x-should-retry`).
    async fn send_once(
        &self,
        req: &HttpRequest,
        stream: bool,
    ) -> Result<(reqwest::Response, ResponseMeta), (ProviderError, Option<bool>)> {
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
        let resp = send.map_err(|e| (self.transport_error(&e), None))?;
        let meta = self.meta(&resp);
        if resp.status().is_success() {
            return Ok((resp, meta));
        }
        let body = match tokio::time::timeout(self.opts.request_timeout, resp.bytes()).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return Err((self.transport_error(&e), meta.should_retry)),
            Err(_) => Bytes::new(),
        };
        let mut e = self.redact(self.dialect.parse_error(&body, &meta));
        if let Some(b) = &bearer {
            e.message = e.message.replace(b.expose(), "[REDACTED]");
        }
        Err((e, meta.should_retry))
    }

    async fn backoff(&self, attempt: u32, e: &ProviderError) {
        let d = self.opts.retry.delay(attempt, e.retry_after, &*self.rng);
        tokio::time::sleep(d).await;
    }

    /// Sends with retries and returns the body of the successful response.
    async fn send_with_retries(
        &self,
        req: &HttpRequest,
    ) -> Result<(Bytes, ResponseMeta), ProviderError> {
        let mut attempt = 0;
        loop {
            let (e, should) = match self.send_once(req, false).await {
                Ok((resp, meta)) => match resp.bytes().await {
                    Ok(b) => return Ok((b, meta)),
                    Err(e) => (self.transport_error(&e), None),
                },
                Err(e) => e,
            };
            if !self.opts.retry.should_retry(attempt, &e, should) {
                return Err(e);
            }
            self.backoff(attempt, &e).await;
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
        let (body, meta) = self.send_with_retries(&http).await?;
        self.dialect
            .parse_chat(&body, &meta)
            .map_err(|e| self.redact(e.with_request_id(meta.request_id.clone())))
    }

    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let http = self.dialect.chat_request(request, true)?;
        let mut attempt = 0;
        loop {
            let (resp, meta) = match self.send_once(&http, true).await {
                Ok(ok) => ok,
                Err((e, should)) => {
                    if !self.opts.retry.should_retry(attempt, &e, should) {
                        return Err(e);
                    }
                    self.backoff(attempt, &e).await;
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
                done: false,
                provider: self.dialect.provider().to_string(),
                request_id: meta.request_id.clone(),
                secret: self.secret.clone(),
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
                    self.backoff(attempt, &e).await;
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
        let (body, _meta) = self.send_with_retries(&http).await?;
        self.dialect.parse_models(&body)
    }
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
    done: bool,
    provider: String,
    request_id: Option<String>,
    secret: Option<String>,
}

impl Pump {
    fn fail(&mut self, e: ProviderError) -> ProviderError {
        self.done = true;
        let mut e = e;
        if e.request_id.is_none() {
            e.request_id.clone_from(&self.request_id);
        }
        if let Some(s) = &self.secret {
            e.message = e.message.replace(s.as_str(), "[REDACTED]");
        }
        e
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
            match tokio::time::timeout(self.idle, self.body.next()).await {
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

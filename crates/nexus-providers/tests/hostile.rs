//! A hostile provider server on loopback: it redirects the request (with
//! its key) to another host, sends bodies without end, streams without
//! end or a byte at a time, and echoes the OAuth bearer token back inside
//! 200 replies. The client stays bounded in memory and time, follows no
//! redirect to another origin, and never shows a credential.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_core::{ChatRequest, ErrorKind, Provider, ProviderError, Secret};
use nexus_providers::anthropic::Anthropic;
use nexus_providers::auth::TokenSource;
use nexus_providers::client::build_client;
use nexus_providers::gemini::Gemini;
use nexus_providers::openai::{Flavor, OpenAi};
use nexus_providers::{Credential, HttpOptions, HttpProvider};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod common;

const KEY: &str = "sk-hostile-0123456789abcdef";
const BEARER: &str = "ya29.bearer-SECRET-0123456789";

/// What the hostile server does with each request it reads.
#[derive(Clone)]
enum Act {
    /// A redirect with this status to this location.
    Redirect(u16, String),
    /// A response head, then `body` repeated `times` times, `gap` apart.
    Send {
        head: String,
        body: Vec<u8>,
        times: usize,
        gap: Duration,
    },
    /// Echo the request's headers inside a 200 JSON error body.
    EchoHeaders,
}

struct Server {
    url: String,
    requests: Arc<AtomicUsize>,
}

async fn read_request(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return head;
        }
    }
    String::new()
}

async fn serve(act: Act) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let act = act.clone();
            let count = count.clone();
            tokio::spawn(async move {
                let head = read_request(&mut s).await;
                count.fetch_add(1, Ordering::SeqCst);
                match act {
                    Act::Redirect(code, to) => {
                        let r = format!("HTTP/1.1 {code} Moved\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                        let _ = s.write_all(r.as_bytes()).await;
                    }
                    Act::Send {
                        head: h,
                        body,
                        times,
                        gap,
                    } => {
                        if s.write_all(h.as_bytes()).await.is_err() {
                            return;
                        }
                        for _ in 0..times {
                            if s.write_all(&body).await.is_err() {
                                return;
                            }
                            if !gap.is_zero() {
                                tokio::time::sleep(gap).await;
                            }
                        }
                    }
                    Act::EchoHeaders => {
                        let body = serde_json::json!({"error": {"message": format!("you sent: {head}"), "type": "x"}})
                            .to_string();
                        let r = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                        let _ = s.write_all(r.as_bytes()).await;
                    }
                }
            });
        }
    });
    Server { url, requests }
}

fn opts() -> HttpOptions {
    let mut o = common::fast_opts();
    o.retry.max_retries = 0;
    o
}

fn anthropic(base: &str, o: HttpOptions) -> HttpProvider {
    let d = Arc::new(Anthropic::new(
        "anthropic",
        base,
        Credential::ApiKey(Secret::new(KEY)),
    ));
    HttpProvider::new(d, build_client(&o).unwrap(), o, Some(KEY.into()))
}

fn gemini(base: &str, o: HttpOptions) -> HttpProvider {
    let d = Arc::new(Gemini::new(
        "gemini",
        base,
        Credential::ApiKey(Secret::new(KEY)),
    ));
    HttpProvider::new(d, build_client(&o).unwrap(), o, Some(KEY.into()))
}

#[derive(Debug)]
struct FixedToken;

#[async_trait::async_trait]
impl TokenSource for FixedToken {
    async fn bearer(&self) -> Result<Secret, ProviderError> {
        Ok(Secret::new(BEARER))
    }
}

fn oauth_openai(base: &str, o: HttpOptions) -> HttpProvider {
    let d = Arc::new(OpenAi::new(
        "openai",
        &format!("{base}/v1"),
        Credential::Bearer(Secret::new("oauth")),
        Flavor::OpenAi,
    ));
    HttpProvider::new(d, build_client(&o).unwrap(), o, None).with_token_source(Arc::new(FixedToken))
}

fn req() -> ChatRequest {
    ChatRequest::new("m", "hello")
}

async fn stream_error(p: &HttpProvider) -> ProviderError {
    use futures_util::StreamExt;
    let mut s = match p.stream(&req()).await {
        Ok(s) => s,
        Err(e) => return e,
    };
    while let Some(ev) = s.next().await {
        if let Err(e) = ev {
            return e;
        }
    }
    panic!("the stream ended without an error");
}

#[tokio::test]
async fn no_key_follows_a_redirect_to_another_host() {
    for code in [301, 302, 307, 308] {
        let elsewhere = serve(Act::EchoHeaders).await;
        let to = format!("{}/v1/messages", elsewhere.url);
        let hostile = serve(Act::Redirect(code, to.clone())).await;
        for p in [
            anthropic(&hostile.url, opts()),
            gemini(&hostile.url, opts()),
        ] {
            let e = p.chat(&req()).await.unwrap_err();
            assert!(
                e.message.contains("redirected") && e.message.contains(&to),
                "{code}: {e}"
            );
            assert!(!e.message.contains(KEY));
            let e = stream_error(&p).await;
            assert!(e.message.contains("redirected"), "{code}: {e}");
        }
        assert_eq!(
            elsewhere.requests.load(Ordering::SeqCst),
            0,
            "{code}: nothing reached the other host"
        );
    }
}

#[tokio::test]
async fn a_redirect_within_the_origin_is_still_followed() {
    // The server redirects its own /v1/messages to itself (same origin):
    // the request goes through and its answer (a 200 echo) is read.
    let l = serve(Act::EchoHeaders).await;
    let same = serve(Act::Redirect(307, format!("{}/v1/messages", l.url))).await;
    // Different port means a different origin: not followed.
    let e = anthropic(&same.url, opts()).chat(&req()).await.unwrap_err();
    assert!(e.message.contains("redirected"), "{e}");
    // A relative location is the same origin: followed (and answered by
    // the redirecting server again, until the redirect limit).
    let rel = serve(Act::Redirect(307, "/v1/messages".into())).await;
    let e = anthropic(&rel.url, opts()).chat(&req()).await.unwrap_err();
    assert!(
        rel.requests.load(Ordering::SeqCst) > 1,
        "followed within the origin: {e}"
    );
}

#[tokio::test]
async fn endless_and_oversized_bodies_stop_at_the_cap() {
    let chunk = vec![b'a'; 64 * 1024];
    // No length, a body without end: stopped at max_response_bytes (1 MiB here).
    let endless = serve(Act::Send {
        head: "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
            .into(),
        body: chunk.clone(),
        times: 1_000_000,
        gap: Duration::ZERO,
    })
    .await;
    let t = Instant::now();
    let e = anthropic(&endless.url, opts())
        .chat(&req())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    assert!(e.message.contains("max_response_bytes"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5));
    // A declared 10 GB body is refused before reading.
    let declared = serve(Act::Send {
        head: "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 10000000000\r\n\r\n".into(),
        body: chunk.clone(),
        times: 4,
        gap: Duration::ZERO,
    })
    .await;
    let e = anthropic(&declared.url, opts())
        .chat(&req())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    // An endless error body: its start is read, the rest is not.
    let err_body = serve(Act::Send {
        head: "HTTP/1.1 500 Oops\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n".into(),
        body: chunk,
        times: 1_000_000,
        gap: Duration::ZERO,
    })
    .await;
    let t = Instant::now();
    let e = anthropic(&err_body.url, opts())
        .chat(&req())
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Server, "{e}");
    assert!(e.message.len() < 4096, "the message is bounded too");
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_endless_stream_stops_at_max_stream_bytes() {
    let delta = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}]}\n\n".repeat(64);
    let s = serve(Act::Send {
        head: "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
            .into(),
        body: delta,
        times: 10_000_000,
        gap: Duration::ZERO,
    })
    .await;
    let d = Arc::new(OpenAi::new(
        "openai",
        &format!("{}/v1", s.url),
        Credential::ApiKey(Secret::new(KEY)),
        Flavor::OpenAi,
    ));
    let o = opts();
    let p = HttpProvider::new(d, build_client(&o).unwrap(), o, Some(KEY.into()));
    let e = stream_error(&p).await;
    assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    assert!(e.message.contains("max_stream_bytes"), "{e}");
}

#[tokio::test]
async fn a_trickling_stream_meets_the_total_deadline() {
    let s = serve(Act::Send {
        head: "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n: keep-alive\n\n".into(),
        body: b": .\n\n".to_vec(),
        times: 1_000,
        gap: Duration::from_millis(300),
    })
    .await;
    let mut o = opts();
    o.stream_total_timeout = Duration::from_secs(2);
    let d = Arc::new(OpenAi::new(
        "openai",
        &format!("{}/v1", s.url),
        Credential::ApiKey(Secret::new(KEY)),
        Flavor::OpenAi,
    ));
    let p = HttpProvider::new(d, build_client(&o).unwrap(), o, Some(KEY.into()));
    let t = Instant::now();
    let e = stream_error(&p).await;
    assert_eq!(e.kind, ErrorKind::TooLarge, "{e}");
    assert!(e.message.contains("stream_total_timeout_secs"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
}

#[tokio::test]
async fn the_bearer_token_never_shows_in_an_error() {
    // 200 replies that carry the request's headers back, as an error body.
    let s = serve(Act::EchoHeaders).await;
    let p = oauth_openai(&s.url, opts());
    let e = p.chat(&req()).await.unwrap_err();
    assert!(e.message.contains("you sent"), "{e}");
    assert!(!e.message.contains(BEARER), "chat: {e}");
    assert!(e.message.contains("[REDACTED]"), "{e}");
    let e = p.list_models().await.unwrap_err();
    assert!(!format!("{e} {e:?}").contains(BEARER), "models: {e}");
    // A stream whose error event echoes it.
    let echo = format!(
        "data: {{\"error\":{{\"message\":\"token {BEARER} rejected\",\"type\":\"server_error\"}}}}\n\n"
    );
    let st = serve(Act::Send {
        head: "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
            .into(),
        body: echo.into_bytes(),
        times: 1,
        gap: Duration::ZERO,
    })
    .await;
    let e = stream_error(&oauth_openai(&st.url, opts())).await;
    assert!(!format!("{e} {e:?}").contains(BEARER), "stream: {e}");
}

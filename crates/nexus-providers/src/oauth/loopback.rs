//! The one-shot loopback redirect listener (RFC 8252 §7.3): 127.0.0.1, an
//! ephemeral port, a random path; it answers the first request to that
//! path and closes. Requests to any other path get a 404 and are ignored.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::OAuthError;

/// What the redirect carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackResult {
    /// Success: a code and the state.
    Code {
        /// The authorization code.
        code: String,
        /// The state the server echoed.
        state: String,
    },
    /// The server redirected with an error.
    Error {
        /// `access_denied`, ...
        error: String,
        /// The server's description.
        description: Option<String>,
        /// The state, if echoed.
        state: Option<String>,
    },
}

/// A listener waiting for one redirect.
#[derive(Debug)]
pub struct LoopbackServer {
    listener: TcpListener,
    path: String,
}

/// 128 random bits from a CSPRNG, URL-safe: other local processes cannot
/// guess the path to race for the callback.
fn random_path_segment() -> String {
    oauth2::CsrfToken::new_random_len(16).secret().clone()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (decode(k) == key).then(|| decode(v))
    })
}

const PAGE_OK: &str = "<!doctype html><title>Nexus</title><p>Signed in. You can close this window and return to the terminal.</p>";
const PAGE_ERR: &str = "<!doctype html><title>Nexus</title><p>Sign-in did not complete. Return to the terminal for details.</p>";

impl LoopbackServer {
    /// Listens on 127.0.0.1 on an ephemeral port.
    pub async fn bind() -> Result<Self, OAuthError> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| {
            OAuthError::Io(format!(
                "cannot listen on 127.0.0.1 for the sign-in redirect: {e}"
            ))
        })?;
        Ok(LoopbackServer {
            listener,
            path: format!("/callback/{}", random_path_segment()),
        })
    }

    /// The redirect URI to register with the authorization request.
    pub fn redirect_uri(&self) -> String {
        let port = self.listener.local_addr().map(|a| a.port()).unwrap_or(0);
        format!("http://127.0.0.1:{port}{}", self.path)
    }

    /// Waits for the redirect, at most `timeout`.
    pub async fn wait(self, timeout: Duration) -> Result<CallbackResult, OAuthError> {
        tokio::time::timeout(timeout, self.serve())
            .await
            .map_err(|_| OAuthError::Timeout(timeout.as_secs()))?
    }

    async fn serve(self) -> Result<CallbackResult, OAuthError> {
        loop {
            let (mut sock, _) = self
                .listener
                .accept()
                .await
                .map_err(|e| OAuthError::Io(format!("the sign-in listener failed: {e}")))?;
            let mut buf = Vec::new();
            let mut tmp = [0u8; 4096];
            // Only the request line matters; read until the end of the head.
            loop {
                let n = match sock.read(&mut tmp).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&tmp[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 16 * 1024 {
                    break;
                }
            }
            let head = String::from_utf8_lossy(&buf);
            let target = head
                .lines()
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .unwrap_or("")
                .to_string();
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            if path != self.path {
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            let result = if let Some(error) = param(query, "error") {
                CallbackResult::Error {
                    error,
                    description: param(query, "error_description"),
                    state: param(query, "state"),
                }
            } else {
                match (param(query, "code"), param(query, "state")) {
                    (Some(code), Some(state)) => CallbackResult::Code { code, state },
                    (Some(code), None) => CallbackResult::Code {
                        code,
                        state: String::new(),
                    },
                    _ => CallbackResult::Error {
                        error: "invalid_request".into(),
                        description: Some(
                            "the redirect carried neither a code nor an error".into(),
                        ),
                        state: param(query, "state"),
                    },
                }
            };
            let page = if matches!(result, CallbackResult::Code { .. }) {
                PAGE_OK
            } else {
                PAGE_ERR
            };
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\ncache-control: no-store\r\n\r\n{page}",
                page.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            return Ok(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        assert_eq!(
            param("a=1&code=x%2By&state=s+t", "code").as_deref(),
            Some("x+y")
        );
        assert_eq!(param("a=1&state=s+t", "state").as_deref(), Some("s t"));
        assert_eq!(param("error=access_denied", "error_description"), None);
        assert_eq!(decode("100%"), "100%");
    }

    #[tokio::test]
    async fn answers_once_on_its_random_path_only() {
        let s = LoopbackServer::bind().await.unwrap();
        let uri = s.redirect_uri();
        assert!(uri.starts_with("http://127.0.0.1:") && uri.contains("/callback/"));
        let base = uri.rsplit_once("/callback/").unwrap().0.to_string();
        let wait = tokio::spawn(s.wait(Duration::from_secs(5)));
        let c = reqwest::Client::new();
        let miss = c
            .get(format!("{base}/callback/guess?code=x&state=y"))
            .send()
            .await
            .unwrap();
        assert_eq!(miss.status(), 404);
        let hit = c
            .get(format!("{uri}?code=abc&state=xyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(hit.status(), 200);
        assert_eq!(
            wait.await.unwrap().unwrap(),
            CallbackResult::Code {
                code: "abc".into(),
                state: "xyz".into()
            }
        );
    }

    #[tokio::test]
    async fn times_out() {
        let s = LoopbackServer::bind().await.unwrap();
        assert!(matches!(
            s.wait(Duration::from_millis(50)).await,
            Err(OAuthError::Timeout(_))
        ));
    }
}

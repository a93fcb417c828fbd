//! A real OAuth/OIDC server for tests (npm's oidc-provider, installed by
//! `scripts/test` under `crates/nexus-providers/tests/oauth`), and a
//! scripted browser that follows its redirects.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running oidc-provider. Killed when dropped.
#[derive(Debug)]
pub struct Idp {
    /// Its issuer URL (`http://127.0.0.1:PORT`).
    pub issuer: String,
    child: Child,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// The directory of the test server and its `node_modules`.
pub fn server_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../nexus-providers/tests/oauth")
}

/// Starts the server; `None` (with the reason printed) when oidc-provider
/// is not installed, which is a failure under CI.
pub fn start() -> Option<Idp> {
    let dir = server_dir();
    if !dir.join("node_modules/oidc-provider").exists() {
        let msg = "SKIP OAuth end-to-end: oidc-provider is not installed; run ./scripts/test (it runs `npm ci` in crates/nexus-providers/tests/oauth)";
        assert!(std::env::var_os("CI").is_none(), "{msg}");
        println!("{msg}");
        return None;
    }
    let mut child = Command::new("node")
        .arg("server.mjs")
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take()?)
        .read_line(&mut line)
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&line).ok()?;
    Some(Idp {
        issuer: v["issuer"].as_str()?.to_string(),
        child,
    })
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The user's browser: follows redirects by hand, keeping cookies, until
/// the redirect to the loopback callback, which it requests (after
/// `tamper`, when given). Returns the callback page.
pub async fn browse(start: String, tamper: Option<fn(String) -> String>) -> String {
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut jar: HashMap<String, String> = HashMap::new();
    let mut url = reqwest::Url::parse(&start).unwrap();
    for _ in 0..20 {
        if url.path().starts_with("/callback/") {
            let target = match tamper {
                Some(f) => f(url.to_string()),
                None => url.to_string(),
            };
            return c
                .get(&target)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap_or_default();
        }
        let cookie: String = jar
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let r = c
            .get(url.clone())
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        for v in r.headers().get_all("set-cookie") {
            let kv = v
                .to_str()
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default();
            if let Some((k, v)) = kv.split_once('=') {
                jar.insert(k.to_string(), v.to_string());
            }
        }
        let loc = r
            .headers()
            .get("location")
            .unwrap_or_else(|| panic!("no redirect from {url}: {}", r.status()))
            .to_str()
            .unwrap()
            .to_string();
        url = url.join(&loc).unwrap();
    }
    panic!("too many redirects")
}

/// Approves (or denies) a device-flow user code, as the user would.
pub async fn approve_device(issuer: &str, user_code: &str, deny: bool) {
    let r = reqwest::Client::new()
        .post(format!(
            "{issuer}/test/device?user_code={}&deny={}",
            urlencode(user_code),
            u8::from(deny)
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

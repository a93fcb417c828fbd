//! The Rust side of the bindings comparison (`scripts/bench-bindings`):
//! the same synchronous calls and the same stream the Python and Node
//! scripts beside this file make, through `nexus_sdk` directly. Prints one
//! JSON line per measurement.
//!
//! Env: `NEXUS_BENCH_ENV` (the stand-in's env JSON), `NEXUS_BENCH_HOME`,
//! `NEXUS_BENCH_CALLS`, `NEXUS_BENCH_STREAMS`, `NEXUS_BENCH_TEXT_CHARS`.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use nexus_sdk::{ChatOptions, Client, ClientOptions, MemoryVault};

fn var(k: &str, default: usize) -> usize {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let env: HashMap<String, String> =
        serde_json::from_str(&std::env::var("NEXUS_BENCH_ENV").unwrap_or_else(|_| "{}".into()))
            .unwrap_or_default();
    let addr = env.get("ANTHROPIC_BASE_URL").cloned().unwrap_or_default();
    let client = match Client::with_options(ClientOptions {
        home: std::env::var("NEXUS_BENCH_HOME").ok().map(Into::into),
        env,
        vault: Some(std::sync::Arc::new(MemoryVault::new())),
        ..Default::default()
    }) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot build a client: {e}");
            std::process::exit(1);
        }
    };
    let calls = var("NEXUS_BENCH_CALLS", 200_000);
    let prompt = "fix the failing test in the parser module";
    for _ in 0..1000 {
        black_box(client.classify(prompt).ok());
    }
    let t = Instant::now();
    for _ in 0..calls {
        black_box(client.classify(black_box(prompt)).ok());
    }
    let ns = t.elapsed().as_nanos() as f64 / calls as f64;
    println!("{{\"lang\":\"rust\",\"what\":\"classify\",\"ns_per_call\":{ns:.1}}}");
    let route_calls = calls / 10;
    let t = Instant::now();
    for _ in 0..route_calls {
        black_box(client.route(black_box(prompt), Some("coding")).ok());
    }
    let ns = t.elapsed().as_nanos() as f64 / route_calls as f64;
    println!("{{\"lang\":\"rust\",\"what\":\"route\",\"ns_per_call\":{ns:.1}}}");

    let streams = var("NEXUS_BENCH_STREAMS", 5);
    let chars = var("NEXUS_BENCH_TEXT_CHARS", 200_000);
    let text = "word ".repeat(chars / 5);
    let http = format!("{}/_standin/script", addr.trim_end_matches('/'));
    for i in 0..streams {
        script_burst(&http, &text);
        let t = Instant::now();
        let mut s = match client
            .stream("openai/gpt-4o-mini", "go", &ChatOptions::default())
            .await
        {
            Ok(s) => s,
            Err(e) => {
                eprintln!("stream failed: {e}");
                std::process::exit(1);
            }
        };
        let mut events = 0u64;
        let mut bytes = 0usize;
        while let Some(ev) = s.next().await {
            if let Ok(nexus_sdk::StreamEvent::TextDelta { text }) = ev {
                bytes += text.len();
            }
            events += 1;
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{{\"lang\":\"rust\",\"what\":\"stream\",\"run\":{i},\"events\":{events},\"text_bytes\":{bytes},\"events_per_sec\":{:.0}}}",
            events as f64 / secs
        );
        // The same, consumed through `read_ahead` as the bindings do.
        script_burst(&http, &text);
        let t = Instant::now();
        let Ok(s) = client
            .stream("openai/gpt-4o-mini", "go", &ChatOptions::default())
            .await
        else {
            std::process::exit(1);
        };
        let mut ahead = s.read_ahead(8192);
        let mut events = 0u64;
        loop {
            let batch = ahead.next_batch(1024).await;
            if batch.is_empty() {
                break;
            }
            events += batch.len() as u64;
        }
        let secs = t.elapsed().as_secs_f64();
        println!(
            "{{\"lang\":\"rust-read-ahead\",\"what\":\"stream\",\"run\":{i},\"events\":{events},\"events_per_sec\":{:.0}}}",
            events as f64 / secs
        );
    }
}

/// Queues a burst reply at the stand-in (a blocking HTTP/1.1 POST).
fn script_burst(url: &str, text: &str) {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let body = serde_json::json!({"api": "openai", "scripts": [{"burst": text}]}).to_string();
    let Ok(mut sock) = std::net::TcpStream::connect(host) else {
        eprintln!("cannot reach the stand-in at {host}");
        std::process::exit(1);
    };
    let req = format!(
        "POST /{path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(req.as_bytes());
    let mut out = String::new();
    let _ = sock.read_to_string(&mut out);
}

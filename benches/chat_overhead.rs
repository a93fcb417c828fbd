//! Per-call overhead of `Provider::chat()` against the local stand-in,
//! beside a raw reqwest POST of the same body to the same server in the
//! same run (same client settings, same connection reuse).
//!
//! `cargo bench -p nexus-benches --bench chat_overhead`

#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use nexus_core::{ChatRequest, Config};
use nexus_providers::client::build_client;
use nexus_providers::dialect::Dialect;
use nexus_providers::openai::{Flavor, OpenAi};
use nexus_providers::{Credential, HttpOptions, Registry};
use nexus_testkit::{Api, StandIn};

fn bench(c: &mut Criterion) {
    // The server gets its own thread and runtime, so it never competes with
    // the client for the runtime being measured.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let srt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        srt.block_on(async {
            let server = StandIn::start().await;
            tx.send(server.base_url(Api::OpenAi)).unwrap();
            std::future::pending::<()>().await;
        });
    });
    let base = rx.recv().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let env: HashMap<String, String> = [
        ("OPENAI_BASE_URL".to_string(), base.clone()),
        ("OPENAI_API_KEY".to_string(), "sk-bench".to_string()),
    ]
    .into_iter()
    .collect();
    let registry = Registry::new(Config::default(), Arc::new(move |k| env.get(k).cloned()));
    let provider = registry.provider("openai").unwrap();
    let req = ChatRequest::new("gpt-4o-mini", "How fast is the client itself?");

    // The raw baseline: the exact bytes Nexus would send, posted by hand.
    let dialect = OpenAi::new(
        "openai",
        &base,
        Credential::ApiKey(nexus_core::Secret::new("sk-bench")),
        Flavor::OpenAi,
    );
    let http = dialect.chat_request(&req, false).unwrap();
    let client = build_client(&HttpOptions::default()).unwrap();
    let body = bytes::Bytes::from(http.body.clone().unwrap());

    // The translation alone: build the request, parse a response.
    let sample = serde_json::to_vec(&nexus_testkit::wire::response_body(
        Api::OpenAi,
        "gpt-4o-mini",
        &nexus_testkit::Answer::Text("echo: How fast is the client itself?".into()),
        nexus_testkit::wire::Counts {
            input: 6,
            output: 7,
        },
    ))
    .unwrap();
    let meta = nexus_providers::dialect::ResponseMeta::default();
    c.bench_function("translate/openai_build_request", |b| {
        b.iter(|| dialect.chat_request(&req, false).unwrap());
    });
    c.bench_function("translate/openai_parse_response", |b| {
        b.iter(|| dialect.parse_chat(&sample, &meta).unwrap());
    });

    let raw = || async {
        let mut rb = client.post(&http.url);
        for (k, v) in &http.headers {
            rb = rb.header(*k, v);
        }
        let resp = rb.body(body.clone()).send().await.unwrap();
        let bytes = resp.bytes().await.unwrap();
        serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
    };

    let mut g = c.benchmark_group("chat_overhead");
    g.bench_function("nexus_chat", |b| {
        b.to_async(&rt)
            .iter(|| async { provider.chat(&req).await.unwrap() });
    });
    g.bench_function("raw_reqwest_post", |b| b.to_async(&rt).iter(raw));
    g.finish();

    // Paired comparison: alternate blocks of each, so drift on a busy
    // machine hits both equally; report the median of the block ratios.
    let mut ratios = Vec::new();
    let (mut tn, mut tr) = (0.0, 0.0);
    rt.block_on(async {
        for _ in 0..40 {
            let t = std::time::Instant::now();
            for _ in 0..50 {
                provider.chat(&req).await.unwrap();
            }
            let n = t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            for _ in 0..50 {
                raw().await;
            }
            let r = t.elapsed().as_secs_f64();
            tn += n;
            tr += r;
            ratios.push(n / r);
        }
    });
    ratios.sort_by(f64::total_cmp);
    println!(
        "paired: nexus_chat {:.1} µs/call, raw_reqwest_post {:.1} µs/call, median ratio {:.3}",
        tn / 2000.0 * 1e6,
        tr / 2000.0 * 1e6,
        ratios[ratios.len() / 2]
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);

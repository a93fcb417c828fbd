//! Stream decoding throughput per provider format: Nexus's SSE decoder plus
//! the dialect's typed stream decoder, against `eventsource-stream` +
//! `serde_json::Value` over the same bytes in the same chunks.
//!
//! `cargo bench -p nexus-benches --bench stream_decode`

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures_util::StreamExt;
use nexus_core::{ChatRequest, StreamEvent};
use nexus_providers::anthropic::Anthropic;
use nexus_providers::dialect::{Dialect, ResponseMeta};
use nexus_providers::gemini::Gemini;
use nexus_providers::openai::{Flavor, OpenAi};
use nexus_providers::sse::SseDecoder;
use nexus_providers::Credential;
use nexus_testkit::wire::{stream_frames, Answer, Api, Counts};

/// A long answer (about 40 KB of text) in `api`'s stream format, cut into
/// 1,400-byte chunks as TCP would deliver it.
fn sample(api: Api) -> (Vec<bytes::Bytes>, usize) {
    let text: String = (0..2000).map(|i| format!("word{i} ")).collect();
    let frames = stream_frames(
        api,
        api.sample_model(),
        &Answer::Text(text),
        Counts {
            input: 10,
            output: 2000,
        },
    );
    let all: Vec<u8> = frames.concat().into_bytes();
    let len = all.len();
    (
        all.chunks(1400)
            .map(bytes::Bytes::copy_from_slice)
            .collect(),
        len,
    )
}

fn dialect(api: Api) -> Box<dyn Dialect> {
    match api {
        Api::Anthropic => Box::new(Anthropic::new("anthropic", "http://x", Credential::None)),
        Api::Gemini => Box::new(Gemini::new("gemini", "http://x", Credential::None)),
        Api::OpenRouter => Box::new(OpenAi::new(
            "openrouter",
            "http://x",
            Credential::None,
            Flavor::OpenRouter,
        )),
        _ => Box::new(OpenAi::new(
            "openai",
            "http://x",
            Credential::None,
            Flavor::OpenAi,
        )),
    }
}

fn nexus_decode(d: &dyn Dialect, chunks: &[bytes::Bytes]) -> usize {
    let req = ChatRequest::new("m", "x");
    let mut dec = d.stream_decoder(&req, &ResponseMeta::default());
    let mut sse = SseDecoder::new();
    let mut raw = Vec::new();
    let mut out: Vec<StreamEvent> = Vec::new();
    let mut n = 0;
    for c in chunks {
        sse.feed(c, &mut raw).unwrap();
        for ev in raw.drain(..) {
            dec.on_event(&ev, &mut out).unwrap();
        }
        n += out.len();
        out.clear();
    }
    dec.finish(&mut out).unwrap();
    n + out.len()
}

async fn baseline_decode(chunks: &[bytes::Bytes]) -> usize {
    use eventsource_stream::Eventsource;
    let s = futures_util::stream::iter(
        chunks
            .iter()
            .cloned()
            .map(Ok::<_, std::convert::Infallible>),
    );
    let mut es = s.eventsource();
    let mut n = 0;
    while let Some(ev) = es.next().await {
        let ev = ev.unwrap();
        if ev.data == "[DONE]" {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(&ev.data).unwrap();
        n += usize::from(!v.is_null());
    }
    n
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("stream_decode");
    for api in [Api::Anthropic, Api::OpenAi, Api::OpenRouter, Api::Gemini] {
        let (chunks, len) = sample(api);
        let d = dialect(api);
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(
            BenchmarkId::new("nexus_typed", api.provider()),
            &chunks,
            |b, ch| {
                b.iter(|| rt.block_on(async { nexus_decode(&*d, ch) }));
            },
        );
        g.bench_with_input(
            BenchmarkId::new("eventsource_stream_value", api.provider()),
            &chunks,
            |b, ch| b.iter(|| rt.block_on(baseline_decode(ch))),
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

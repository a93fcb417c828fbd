//! Stream grammars on literal wire bytes, as the real APIs send them, and a
//! property test: any split of a stream into chunks yields the same events.

#![allow(clippy::unwrap_used, missing_docs)]

use nexus_core::{ChatRequest, ProviderError, StopReason, StreamAccumulator, StreamEvent};
use nexus_providers::anthropic::Anthropic;
use nexus_providers::dialect::{Dialect, ResponseMeta};
use nexus_providers::gemini::Gemini;
use nexus_providers::openai::{Flavor, OpenAi};
use nexus_providers::sse::SseDecoder;
use nexus_providers::Credential;
use proptest::prelude::*;

fn decode(d: &dyn Dialect, chunks: &[&[u8]]) -> Result<Vec<StreamEvent>, ProviderError> {
    let req = ChatRequest::new("m", "x");
    let mut dec = d.stream_decoder(&req, &ResponseMeta::default());
    let mut sse = SseDecoder::new();
    let mut raw = Vec::new();
    let mut out = Vec::new();
    for c in chunks {
        sse.feed(c, &mut raw).unwrap();
        for ev in raw.drain(..) {
            dec.on_event(&ev, &mut out)?;
        }
    }
    dec.finish(&mut out)?;
    Ok(out)
}

fn fold(evs: &[StreamEvent]) -> nexus_core::ChatResponse {
    let mut acc = StreamAccumulator::new("m");
    evs.iter().for_each(|e| acc.push(e));
    acc.finish().unwrap()
}

const ANTHROPIC: &[u8] = b"event: message_start\n\
data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5-20250929\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":2000,\"output_tokens\":1}}}\n\n\
event: content_block_start\n\
data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me see.\"}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQB\"}}\n\n\
event: content_block_stop\n\
data: {\"type\":\"content_block_stop\",\"index\":0}\n\n\
event: ping\n\
data: {\"type\": \"ping\"}\n\n\
event: content_block_start\n\
data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking \\u00e9t\\u00e9.\"}}\n\n\
event: content_block_stop\n\
data: {\"type\":\"content_block_stop\",\"index\":1}\n\n\
event: content_block_start\n\
data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_01T1x\",\"name\":\"get_weather\",\"input\":{}}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"location\\\": \\\"San Fra\"}}\n\n\
event: content_block_delta\n\
data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ncisco\\\"}\"}}\n\n\
event: content_block_stop\n\
data: {\"type\":\"content_block_stop\",\"index\":2}\n\n\
event: message_delta\n\
data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":89}}\n\n\
event: message_stop\n\
data: {\"type\":\"message_stop\"}\n\n";

#[test]
fn anthropic_thinking_text_and_tool_use() {
    let d = Anthropic::new("anthropic", "http://x", Credential::None);
    let evs = decode(&d, &[ANTHROPIC]).unwrap();
    let r = fold(&evs);
    assert_eq!(r.reasoning, "Let me see.");
    assert_eq!(r.text, "Checking été.");
    assert_eq!(r.tool_calls[0].id, "toolu_01T1x");
    assert_eq!(r.tool_calls[0].arguments["location"], "San Francisco");
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!(r.model, "claude-sonnet-4-5-20250929");
    assert_eq!(
        (
            r.usage.input_tokens,
            r.usage.output_tokens,
            r.usage.cache_read_tokens,
            r.usage.cache_write_tokens
        ),
        (25, 89, 2000, 100)
    );
}

#[test]
fn anthropic_unknown_event_types_are_skipped() {
    let d = Anthropic::new("anthropic", "http://x", Credential::None);
    let mut bytes =
        b"event: some_future_event\ndata: {\"type\":\"some_future_event\",\"x\":1}\n\n".to_vec();
    bytes.extend_from_slice(ANTHROPIC);
    assert!(decode(&d, &[&bytes]).is_ok());
}

const GEMINI: &[u8] = b"data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Pondering\",\"thought\": true}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 12,\"totalTokenCount\": 40,\"thoughtsTokenCount\": 28},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hello\"}],\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 12,\"candidatesTokenCount\": 1,\"totalTokenCount\": 41,\"thoughtsTokenCount\": 28},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n\
data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \", world\"}],\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 12,\"candidatesTokenCount\": 4,\"totalTokenCount\": 44,\"cachedContentTokenCount\": 2,\"thoughtsTokenCount\": 28},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"r1\"}\r\n\r\n";

#[test]
fn gemini_cumulative_usage_counts_once_with_thoughts() {
    let d = Gemini::new("gemini", "http://x", Credential::None);
    let evs = decode(&d, &[GEMINI]).unwrap();
    let usages: Vec<_> = evs
        .iter()
        .filter(|e| matches!(e, StreamEvent::Usage { .. }))
        .collect();
    assert_eq!(
        usages.len(),
        1,
        "cumulative usage is reported once, at the end"
    );
    let r = fold(&evs);
    assert_eq!(r.text, "Hello, world");
    assert_eq!(r.reasoning, "Pondering");
    // output = candidates (4) + thoughts (28); input excludes cached tokens.
    assert_eq!(r.usage.output_tokens, 32);
    assert_eq!(r.usage.reasoning_tokens, 28);
    assert_eq!(r.usage.input_tokens, 10);
    assert_eq!(r.usage.cache_read_tokens, 2);
    assert_eq!(r.request_id.as_deref(), Some("r1"));
}

const OPENAI_REFUSAL: &[u8] = b"data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null,\"refusal\":\"\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{\"refusal\":\"I can't help with that.\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n\
data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o-2024-08-06\",\"choices\":[],\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":7,\"total_tokens\":37,\"prompt_tokens_details\":{\"cached_tokens\":10},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n\
data: [DONE]\n\n";

#[test]
fn openai_refusal_and_cached_tokens() {
    let d = OpenAi::new("openai", "http://x", Credential::None, Flavor::OpenAi);
    let r = fold(&decode(&d, &[OPENAI_REFUSAL]).unwrap());
    assert_eq!(r.stop_reason, StopReason::Refusal);
    assert_eq!(r.text, "I can't help with that.");
    assert_eq!((r.usage.input_tokens, r.usage.cache_read_tokens), (20, 10));
}

const OPENROUTER: &[u8] = b": OPENROUTER PROCESSING\n\n: OPENROUTER PROCESSING\n\n\
data: {\"id\":\"gen-1\",\"provider\":\"Google\",\"model\":\"google/gemini-2.5-flash\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"gen-1\",\"provider\":\"Google\",\"model\":\"google/gemini-2.5-flash\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":\"stop\",\"native_finish_reason\":\"STOP\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6,\"cost\":0.0000045,\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}\n\n\
data: [DONE]\n\n";

#[test]
fn openrouter_comments_usage_on_finish_chunk_and_cost() {
    let d = OpenAi::new(
        "openrouter",
        "http://x",
        Credential::None,
        Flavor::OpenRouter,
    );
    let r = fold(&decode(&d, &[OPENROUTER]).unwrap());
    assert_eq!(r.text, "Hi");
    assert_eq!(r.model, "google/gemini-2.5-flash");
    assert_eq!(
        r.provider_cost,
        Some(nexus_core::Usd::from_dollars(0.0000045))
    );
    assert_eq!(r.usage.output_tokens, 1);
}

#[test]
fn openai_done_without_finish_is_a_protocol_error() {
    let d = OpenAi::new("openai", "http://x", Credential::None, Flavor::OpenAi);
    let bytes = b"data: {\"id\":\"c\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}\n\ndata: [DONE]\n\n";
    let e = decode(&d, &[bytes]).unwrap_err();
    assert_eq!(e.kind, nexus_core::ErrorKind::Protocol);
}

fn split_at(bytes: &[u8], cuts: &[prop::sample::Index]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for p in points {
        out.push(bytes[last..p].to_vec());
        last = p;
    }
    out.push(bytes[last..].to_vec());
    out
}

proptest! {
    #[test]
    fn any_split_of_a_real_stream_yields_identical_events(
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..16),
        which in 0usize..4,
    ) {
        let (d, bytes): (Box<dyn Dialect>, &[u8]) = match which {
            0 => (Box::new(Anthropic::new("a", "http://x", Credential::None)), ANTHROPIC),
            1 => (Box::new(Gemini::new("g", "http://x", Credential::None)), GEMINI),
            2 => (Box::new(OpenAi::new("o", "http://x", Credential::None, Flavor::OpenAi)), OPENAI_REFUSAL),
            _ => (Box::new(OpenAi::new("r", "http://x", Credential::None, Flavor::OpenRouter)), OPENROUTER),
        };
        let whole = decode(&*d, &[bytes]).unwrap();
        let parts = split_at(bytes, &cuts);
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        prop_assert_eq!(decode(&*d, &refs).unwrap(), whole);
    }
}

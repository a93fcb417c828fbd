//! Each API's exact response shapes: bodies, stream events and error bodies.

use serde_json::{json, Value};

/// The API families the stand-in serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// Anthropic Messages.
    Anthropic,
    /// OpenAI Chat Completions.
    OpenAi,
    /// OpenRouter (Chat Completions with its own extras).
    OpenRouter,
    /// xAI.
    Xai,
    /// DeepSeek.
    DeepSeek,
    /// A generic OpenAI-compatible server.
    Compatible,
    /// Google Gemini.
    Gemini,
}

impl Api {
    /// Every family.
    pub const ALL: [Api; 7] = [
        Api::Anthropic,
        Api::OpenAi,
        Api::OpenRouter,
        Api::Xai,
        Api::DeepSeek,
        Api::Compatible,
        Api::Gemini,
    ];

    /// The Nexus provider name that talks to it.
    pub fn provider(self) -> &'static str {
        match self {
            Api::Anthropic => "anthropic",
            Api::OpenAi => "openai",
            Api::OpenRouter => "openrouter",
            Api::Xai => "xai",
            Api::DeepSeek => "deepseek",
            Api::Compatible => "vllm",
            Api::Gemini => "gemini",
        }
    }

    /// The base-URL environment variable of that provider.
    pub fn base_url_env(self) -> &'static str {
        match self {
            Api::Anthropic => "ANTHROPIC_BASE_URL",
            Api::OpenAi => "OPENAI_BASE_URL",
            Api::OpenRouter => "OPENROUTER_BASE_URL",
            Api::Xai => "XAI_BASE_URL",
            Api::DeepSeek => "DEEPSEEK_BASE_URL",
            Api::Compatible => "VLLM_BASE_URL",
            Api::Gemini => "GEMINI_BASE_URL",
        }
    }

    /// The key environment variable of that provider.
    pub fn key_env(self) -> &'static str {
        match self {
            Api::Anthropic => "ANTHROPIC_API_KEY",
            Api::OpenAi => "OPENAI_API_KEY",
            Api::OpenRouter => "OPENROUTER_API_KEY",
            Api::Xai => "XAI_API_KEY",
            Api::DeepSeek => "DEEPSEEK_API_KEY",
            Api::Compatible => "VLLM_API_KEY",
            Api::Gemini => "GEMINI_API_KEY",
        }
    }

    /// The path prefix the stand-in serves this family under.
    pub fn prefix(self) -> &'static str {
        match self {
            Api::Anthropic => "",
            Api::OpenAi => "/v1",
            Api::OpenRouter => "/openrouter/v1",
            Api::Xai => "/xai/v1",
            Api::DeepSeek => "/deepseek",
            Api::Compatible => "/compat/v1",
            Api::Gemini => "",
        }
    }

    /// A model id this family serves, for tests.
    pub fn sample_model(self) -> &'static str {
        match self {
            Api::Anthropic => "claude-sonnet-4-5",
            Api::OpenAi => "gpt-4o-mini",
            Api::OpenRouter => "openrouter/auto",
            Api::Xai => "grok-4",
            Api::DeepSeek => "deepseek-chat",
            Api::Compatible => "llama3.2",
            Api::Gemini => "gemini-2.5-flash",
        }
    }
}

/// What the model says.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Text.
    Text(String),
    /// One tool call.
    Tool {
        /// Tool name.
        name: String,
        /// JSON arguments.
        args: Value,
    },
}

/// Token counts the stand-in reports.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Prompt tokens.
    pub input: u64,
    /// Answer tokens.
    pub output: u64,
}

/// The model the answer claims to come from (OpenRouter's router picks one).
pub fn answering_model(api: Api, requested: &str) -> String {
    match (api, requested) {
        (Api::OpenRouter, "openrouter/auto") => "anthropic/claude-sonnet-4.5".into(),
        (Api::OpenRouter, "openrouter/auto:free") => {
            "meta-llama/llama-3.3-70b-instruct:free".into()
        }
        (Api::Gemini, m) => m.to_string(),
        (_, m) => m.to_string(),
    }
}

/// OpenRouter's reported cost: a fixed $1 per million tokens of each kind.
pub fn openrouter_cost(c: Counts) -> f64 {
    (c.input + c.output) as f64 / 1_000_000.0
}

fn openai_usage(api: Api, c: Counts) -> Value {
    let mut u = json!({
        "prompt_tokens": c.input,
        "completion_tokens": c.output,
        "total_tokens": c.input + c.output,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0}
    });
    match api {
        Api::OpenRouter => u["cost"] = json!(openrouter_cost(c)),
        Api::DeepSeek => {
            u["prompt_cache_hit_tokens"] = json!(0);
            u["prompt_cache_miss_tokens"] = json!(c.input);
        }
        _ => {}
    }
    u
}

/// A whole non-streamed response body.
pub fn response_body(api: Api, model: &str, answer: &Answer, c: Counts) -> Value {
    let model = answering_model(api, model);
    match api {
        Api::Anthropic => {
            let (content, stop) = match answer {
                Answer::Text(t) => (json!([{"type": "text", "text": t}]), "end_turn"),
                Answer::Tool { name, args } => (
                    json!([{"type": "tool_use", "id": "toolu_01A", "name": name, "input": args}]),
                    "tool_use",
                ),
            };
            json!({
                "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
                "model": model, "content": content, "stop_reason": stop, "stop_sequence": null,
                "usage": {"input_tokens": c.input, "output_tokens": c.output,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
            })
        }
        Api::Gemini => {
            let parts = match answer {
                Answer::Text(t) => json!([{"text": t}]),
                Answer::Tool { name, args } => {
                    json!([{"functionCall": {"name": name, "args": args}}])
                }
            };
            json!({
                "candidates": [{"content": {"parts": parts, "role": "model"},
                                "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": c.input, "candidatesTokenCount": c.output,
                                  "totalTokenCount": c.input + c.output},
                "modelVersion": model, "responseId": "resp-standin-1"
            })
        }
        _ => {
            let (message, finish) = match answer {
                Answer::Text(t) => (
                    json!({"role": "assistant", "content": t, "refusal": null}),
                    "stop",
                ),
                Answer::Tool { name, args } => (
                    json!({"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_standin_1", "type": "function",
                         "function": {"name": name, "arguments": args.to_string()}}]}),
                    "tool_calls",
                ),
            };
            json!({
                "id": "chatcmpl-standin-1", "object": "chat.completion", "created": 1_763_700_000,
                "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
                "usage": openai_usage(api, c)
            })
        }
    }
}

/// Splits text into stream-sized pieces (a few characters each).
pub fn pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(n.max(1)).map(|c| c.iter().collect()).collect()
}

fn sse(event: Option<&str>, data: &Value) -> String {
    match event {
        Some(e) => format!("event: {e}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}

/// The stream's events, as SSE text frames, in order. `cut` stops after that
/// many content frames (for truncation and mid-stream errors).
pub fn stream_frames(api: Api, model: &str, answer: &Answer, c: Counts) -> Vec<String> {
    let model = answering_model(api, model);
    let mut f = Vec::new();
    match api {
        Api::Anthropic => {
            f.push(sse(
                Some("message_start"),
                &json!({"type": "message_start", "message": {
                "id": "msg_01StandIn", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": c.input, "output_tokens": 1,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}),
            ));
            let stop = match answer {
                Answer::Text(t) => {
                    f.push(sse(
                        Some("content_block_start"),
                        &json!({"type": "content_block_start",
                        "index": 0, "content_block": {"type": "text", "text": ""}}),
                    ));
                    f.push(sse(Some("ping"), &json!({"type": "ping"})));
                    for p in pieces(t, 5) {
                        f.push(sse(
                            Some("content_block_delta"),
                            &json!({"type": "content_block_delta",
                            "index": 0, "delta": {"type": "text_delta", "text": p}}),
                        ));
                    }
                    "end_turn"
                }
                Answer::Tool { name, args } => {
                    f.push(sse(
                        Some("content_block_start"),
                        &json!({"type": "content_block_start",
                        "index": 0, "content_block": {"type": "tool_use", "id": "toolu_01A",
                        "name": name, "input": {}}}),
                    ));
                    for p in pieces(&args.to_string(), 7) {
                        f.push(sse(
                            Some("content_block_delta"),
                            &json!({"type": "content_block_delta",
                            "index": 0, "delta": {"type": "input_json_delta", "partial_json": p}}),
                        ));
                    }
                    "tool_use"
                }
            };
            f.push(sse(
                Some("content_block_stop"),
                &json!({"type": "content_block_stop", "index": 0}),
            ));
            f.push(sse(
                Some("message_delta"),
                &json!({"type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": null},
                "usage": {"output_tokens": c.output}}),
            ));
            f.push(sse(Some("message_stop"), &json!({"type": "message_stop"})));
        }
        Api::Gemini => {
            let usage = |out: u64| {
                json!({"promptTokenCount": c.input, "candidatesTokenCount": out,
                                          "totalTokenCount": c.input + out})
            };
            match answer {
                Answer::Text(t) => {
                    let ps = pieces(t, 6);
                    let n = ps.len();
                    for (i, p) in ps.into_iter().enumerate() {
                        let last = i + 1 == n;
                        let out = if last {
                            c.output
                        } else {
                            (i as u64 + 1).min(c.output)
                        };
                        let mut cand = json!({"content": {"parts": [{"text": p}], "role": "model"}, "index": 0});
                        if last {
                            cand["finishReason"] = json!("STOP");
                        }
                        f.push(sse(
                            None,
                            &json!({"candidates": [cand], "usageMetadata": usage(out),
                            "modelVersion": model, "responseId": "resp-standin-1"}),
                        ));
                    }
                }
                Answer::Tool { name, args } => {
                    f.push(sse(
                        None,
                        &json!({"candidates": [{"content": {"parts": [
                        {"functionCall": {"name": name, "args": args}}], "role": "model"},
                        "finishReason": "STOP", "index": 0}], "usageMetadata": usage(c.output),
                        "modelVersion": model, "responseId": "resp-standin-1"}),
                    ));
                }
            }
        }
        _ => {
            let chunk = |delta: Value, finish: Value| {
                json!({"id": "chatcmpl-standin-1",
                "object": "chat.completion.chunk", "created": 1_763_700_000, "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
            };
            if api == Api::OpenRouter {
                f.push(": OPENROUTER PROCESSING\n\n".to_string());
                f.push(": OPENROUTER PROCESSING\n\n".to_string());
            }
            f.push(sse(
                None,
                &chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            ));
            let finish = match answer {
                Answer::Text(t) => {
                    for p in pieces(t, 5) {
                        f.push(sse(None, &chunk(json!({"content": p}), Value::Null)));
                    }
                    "stop"
                }
                Answer::Tool { name, args } => {
                    f.push(sse(
                        None,
                        &chunk(
                            json!({"tool_calls": [{"index": 0, "id": "call_standin_1",
                        "type": "function", "function": {"name": name, "arguments": ""}}]}),
                            Value::Null,
                        ),
                    ));
                    for p in pieces(&args.to_string(), 7) {
                        f.push(sse(
                            None,
                            &chunk(
                                json!({"tool_calls": [{"index": 0,
                            "function": {"arguments": p}}]}),
                                Value::Null,
                            ),
                        ));
                    }
                    "tool_calls"
                }
            };
            let mut last = chunk(json!({}), json!(finish));
            if api == Api::OpenRouter {
                // OpenRouter puts usage (with cost) on the finish chunk.
                last["usage"] = openai_usage(api, c);
                f.push(sse(None, &last));
            } else {
                f.push(sse(None, &last));
                // stream_options.include_usage: a last chunk with no choices.
                f.push(sse(
                    None,
                    &json!({"id": "chatcmpl-standin-1", "object": "chat.completion.chunk",
                    "created": 1_763_700_000, "model": model, "choices": [],
                    "usage": openai_usage(api, c)}),
                ));
            }
            f.push("data: [DONE]\n\n".to_string());
        }
    }
    f
}

/// The API's error body for `status`.
pub fn error_body(api: Api, status: u16, message: &str) -> Value {
    match api {
        Api::Anthropic => {
            let t = match status {
                400 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": t, "message": message},
                   "request_id": "req_011CStandIn"})
        }
        Api::Gemini => {
            let s = match status {
                400 => "INVALID_ARGUMENT",
                401 => "UNAUTHENTICATED",
                403 => "PERMISSION_DENIED",
                404 => "NOT_FOUND",
                429 => "RESOURCE_EXHAUSTED",
                503 => "UNAVAILABLE",
                504 => "DEADLINE_EXCEEDED",
                _ => "INTERNAL",
            };
            json!({"error": {"code": status, "message": message, "status": s}})
        }
        Api::OpenRouter => json!({"error": {"code": status, "message": message, "metadata": {}}}),
        _ => {
            let (t, code) = match status {
                401 => ("invalid_request_error", json!("invalid_api_key")),
                429 => ("requests", json!("rate_limit_exceeded")),
                400 | 404 => ("invalid_request_error", Value::Null),
                _ => ("server_error", Value::Null),
            };
            json!({"error": {"message": message, "type": t, "param": null, "code": code}})
        }
    }
}

/// OpenAI's out-of-credit error: a 429 that must never be retried.
pub fn insufficient_quota_body() -> Value {
    json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.",
        "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}})
}

/// An error event in the middle of a stream, in the API's own form.
pub fn stream_error_frame(api: Api) -> String {
    match api {
        Api::Anthropic => sse(
            Some("error"),
            &json!({"type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        ),
        Api::Gemini => sse(
            None,
            &json!({"error": {"code": 503,
            "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}),
        ),
        Api::OpenRouter => sse(
            None,
            &json!({"id": "gen-1", "object": "chat.completion.chunk",
            "created": 1_763_700_000, "model": "x", "error": {"code": 502, "message": "Provider returned error"},
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}),
        ),
        _ => sse(
            None,
            &json!({"error": {"message": "The server had an error while processing your request.",
            "type": "server_error", "param": null, "code": null}}),
        ),
    }
}

/// The models list body.
pub fn models_body(api: Api) -> Value {
    match api {
        Api::Anthropic => json!({"data": [
            {"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"},
            {"type": "model", "id": "claude-haiku-4-5", "display_name": "Claude Haiku 4.5", "created_at": "2025-10-15T00:00:00Z"}],
            "has_more": false, "first_id": "claude-sonnet-4-5", "last_id": "claude-haiku-4-5"}),
        Api::Gemini => json!({"models": [
            {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash", "version": "001"},
            {"name": "models/gemini-2.5-pro", "displayName": "Gemini 2.5 Pro", "version": "001"}]}),
        _ => json!({"object": "list", "data": [
            {"id": "gpt-4o-mini", "object": "model", "created": 1_721_172_741, "owned_by": "system"},
            {"id": "gpt-4o", "object": "model", "created": 1_715_367_049, "owned_by": "system"}]}),
    }
}

//! OpenAI Chat Completions (`POST /chat/completions`), and the servers that
//! speak it: OpenRouter, xAI, DeepSeek, Ollama, vLLM.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use nexus_core::{
    ChatRequest, ChatResponse, ContentPart, ErrorKind, ImageSource, ProviderError, RemoteModel,
    ResponseFormat, Role, StopReason, StreamEvent, ToolCall, Usage, Usd,
};

use crate::auth::Credential;
use crate::dialect::{
    fallback_error, get, parse_data_models, parse_json, protocol, refine_kind, with_meta, Dialect,
    HttpRequest, Method, ResponseMeta, StreamDecoder,
};
use crate::sse::SseEvent;

/// Which server speaks the dialect: they differ in small, documented ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// api.openai.com: `max_completion_tokens`.
    OpenAi,
    /// OpenRouter: `openrouter/auto`, usage accounting with `cost`,
    /// `: OPENROUTER PROCESSING` keep-alive comments.
    OpenRouter,
    /// xAI.
    Xai,
    /// DeepSeek: `reasoning_content`, `prompt_cache_hit_tokens`.
    DeepSeek,
    /// Any other OpenAI-compatible server (Ollama, vLLM, LM Studio...).
    Compatible,
}

/// The Chat Completions dialect.
#[derive(Debug)]
pub struct OpenAi {
    name: String,
    base_url: String,
    credential: Credential,
    flavor: Flavor,
}

impl OpenAi {
    /// A dialect for `base_url` (which includes `/v1` where the server needs it).
    pub fn new(
        name: impl Into<String>,
        base_url: &str,
        credential: Credential,
        flavor: Flavor,
    ) -> Self {
        OpenAi {
            name: name.into(),
            base_url: base_url.trim_end_matches('/').to_string(),
            credential,
            flavor,
        }
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![("content-type", "application/json".to_string())];
        if let Credential::ApiKey(s) | Credential::Bearer(s) = &self.credential {
            h.push(("authorization", format!("Bearer {}", s.expose())));
        }
        if self.flavor == Flavor::OpenRouter {
            h.push(("x-title", "Nexus".to_string()));
        }
        h
    }

    /// The model id on the wire: OpenRouter's `auto` router is `openrouter/auto`.
    fn wire_model(&self, model: &str) -> String {
        if self.flavor == Flavor::OpenRouter && (model == "auto" || model.starts_with("auto:")) {
            format!("openrouter/{model}")
        } else {
            model.to_string()
        }
    }

    /// The request body (public for snapshot tests and benchmarks).
    pub fn request_body(&self, req: &ChatRequest, stream: bool) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), json!(self.wire_model(&req.model)));
        body.insert("messages".into(), Value::Array(messages_json(req)));
        if let Some(n) = req.max_tokens {
            let key = if self.flavor == Flavor::OpenAi {
                "max_completion_tokens"
            } else {
                "max_tokens"
            };
            body.insert(key.into(), json!(n));
        }
        if let Some(t) = req.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if !req.stop.is_empty() {
            body.insert("stop".into(), json!(req.stop));
        }
        if !req.tools.is_empty() {
            let tools: Vec<Value> = req
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": t.input_schema
                    }})
                })
                .collect();
            body.insert("tools".into(), Value::Array(tools));
        }
        match &req.response_format {
            ResponseFormat::Text => {}
            ResponseFormat::JsonObject => {
                body.insert("response_format".into(), json!({"type": "json_object"}));
            }
            ResponseFormat::JsonSchema { name, schema } => {
                body.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": true}}),
                );
            }
        }
        if self.flavor == Flavor::OpenRouter {
            body.insert("usage".into(), json!({"include": true}));
        }
        if stream {
            body.insert("stream".into(), Value::Bool(true));
            body.insert("stream_options".into(), json!({"include_usage": true}));
        }
        Value::Object(body)
    }
}

fn messages_json(req: &ChatRequest) -> Vec<Value> {
    let mut out = Vec::with_capacity(req.messages.len() + 1);
    if let Some(s) = &req.system {
        out.push(json!({"role": "system", "content": s}));
    }
    for m in &req.messages {
        let mut parts = Vec::new();
        let mut calls = Vec::new();
        let mut only_text = true;
        for p in &m.content {
            match p {
                ContentPart::Text { text } => parts.push(json!({"type": "text", "text": text})),
                ContentPart::Image { source } => {
                    only_text = false;
                    let url = match source {
                        ImageSource::Url { url } => url.clone(),
                        ImageSource::Base64 { media_type, data } => {
                            format!("data:{media_type};base64,{data}")
                        }
                    };
                    parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
                }
                ContentPart::ToolCall(c) => calls.push(json!({
                    "id": c.id, "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments.to_string()}
                })),
                ContentPart::ToolResult {
                    call_id, content, ..
                } => out.push(json!({"role": "tool", "tool_call_id": call_id, "content": content})),
            }
        }
        if parts.is_empty() && calls.is_empty() {
            continue;
        }
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let content = if only_text {
            let text: String = m.text();
            if parts.is_empty() {
                Value::Null
            } else {
                Value::String(text)
            }
        } else {
            Value::Array(parts)
        };
        let mut msg = json!({"role": role, "content": content});
        if !calls.is_empty() {
            msg["tool_calls"] = Value::Array(calls);
        }
        out.push(msg);
    }
    out
}

fn finish_reason(s: &str) -> StopReason {
    match s {
        "stop" | "end_turn" => StopReason::EndTurn,
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        other => StopReason::Other(other.to_string()),
    }
}

#[derive(Deserialize, Default, Clone)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
    /// DeepSeek.
    #[serde(default)]
    prompt_cache_hit_tokens: Option<u64>,
    /// OpenRouter usage accounting, in USD (credits).
    #[serde(default)]
    cost: Option<f64>,
}

#[derive(Deserialize, Default, Clone)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    cache_write_tokens: Option<u64>,
}

#[derive(Deserialize, Default, Clone)]
struct CompletionDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl WireUsage {
    fn to_usage(&self) -> Usage {
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .or(self.prompt_cache_hit_tokens)
            .unwrap_or(0);
        let written = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cache_write_tokens)
            .unwrap_or(0);
        Usage {
            // prompt_tokens counts cached tokens too; bill them separately.
            input_tokens: self.prompt_tokens.saturating_sub(cached + written),
            output_tokens: self.completion_tokens,
            cache_read_tokens: cached,
            cache_write_tokens: written,
            reasoning_tokens: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
        }
    }

    fn cost(&self) -> Option<Usd> {
        self.cost.map(Usd::from_dollars)
    }
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
struct WireToolCall {
    #[serde(default)]
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// Reads `{"error": {...}}` (or `{"error": "text"}`) into a typed error.
fn error_from_value(provider: &str, err: &Value, status: u16) -> ProviderError {
    let (message, code, etype) = match err {
        Value::String(s) => (s.clone(), None, None),
        Value::Object(o) => {
            let message = o
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("unknown error")
                .to_string();
            let code = match o.get("code") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) => Some(n.to_string()),
                _ => None,
            };
            let etype = o.get("type").and_then(Value::as_str).map(str::to_string);
            (message, code, etype)
        }
        other => (other.to_string(), None, None),
    };
    // OpenRouter puts the HTTP status in a numeric `code`, also mid-stream.
    let status = match code.as_deref().and_then(|c| c.parse::<u16>().ok()) {
        Some(s) if status == 200 => s,
        _ => status,
    };
    let mut kind = nexus_core::conformance::kind_for_status(status);
    if status == 200 {
        kind = ErrorKind::Server;
    }
    let code_or_type = code.clone().or(etype);
    let kind = refine_kind(kind, code_or_type.as_deref(), &message);
    let mut e = ProviderError::new(kind, provider, message).with_code(code_or_type);
    if status != 200 {
        e.status = Some(status);
    }
    e
}

impl Dialect for OpenAi {
    fn provider(&self) -> &str {
        &self.name
    }

    fn request_id_header(&self) -> &'static str {
        "x-request-id"
    }

    fn chat_request(&self, req: &ChatRequest, stream: bool) -> Result<HttpRequest, ProviderError> {
        let body = serde_json::to_vec(&self.request_body(req, stream))
            .map_err(|e| protocol(&self.name, e))?;
        Ok(HttpRequest {
            method: Method::Post,
            url: format!("{}/chat/completions", self.base_url),
            headers: self.headers(),
            body: Some(body),
        })
    }

    fn parse_chat(&self, body: &[u8], meta: &ResponseMeta) -> Result<ChatResponse, ProviderError> {
        let r: WireResponse = parse_json(&self.name, "chat completion", body)?;
        if let Some(err) = &r.error {
            return Err(with_meta(
                error_from_value(&self.name, err, meta.status),
                meta,
            ));
        }
        let choice = r
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| protocol(&self.name, "chat completion has no choices"))?;
        let m = choice.message;
        let mut stop = finish_reason(choice.finish_reason.as_deref().unwrap_or("stop"));
        let mut text = m.content.unwrap_or_default();
        if let Some(refusal) = m.refusal.filter(|r| !r.is_empty()) {
            text = refusal;
            stop = StopReason::Refusal;
        }
        let mut tool_calls = Vec::with_capacity(m.tool_calls.len());
        for (i, c) in m.tool_calls.into_iter().enumerate() {
            let args = c.function.arguments.unwrap_or_default();
            let arguments = if args.trim().is_empty() {
                Value::Object(Map::new())
            } else {
                serde_json::from_str(&args).map_err(|e| {
                    protocol(
                        &self.name,
                        format!("tool call {i} has invalid JSON arguments: {e}"),
                    )
                })?
            };
            tool_calls.push(ToolCall {
                id: c.id.unwrap_or_else(|| format!("call_{i}")),
                name: c.function.name.unwrap_or_default(),
                arguments,
            });
        }
        let usage = r.usage.unwrap_or_default();
        Ok(ChatResponse {
            text,
            reasoning: m.reasoning_content.or(m.reasoning).unwrap_or_default(),
            tool_calls,
            stop_reason: stop,
            model: r.model.unwrap_or_default(),
            request_id: meta.request_id.clone().or(r.id),
            usage: usage.to_usage(),
            provider_cost: usage.cost(),
        })
    }

    fn stream_decoder(&self, req: &ChatRequest, meta: &ResponseMeta) -> Box<dyn StreamDecoder> {
        Box::new(OpenAiStream {
            provider: self.name.clone(),
            model: self.wire_model(&req.model),
            started: false,
            request_id: meta.request_id.clone(),
            finish: None,
            done: false,
            usage: None,
            cost: None,
            refused: false,
        })
    }

    fn parse_error(&self, body: &[u8], meta: &ResponseMeta) -> ProviderError {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => match v.get("error") {
                Some(err) => with_meta(error_from_value(&self.name, err, meta.status), meta),
                None => fallback_error(&self.name, body, meta),
            },
            Err(_) => fallback_error(&self.name, body, meta),
        }
    }

    fn models_request(&self) -> HttpRequest {
        get(format!("{}/models", self.base_url), self.headers())
    }

    fn parse_models(&self, body: &[u8]) -> Result<Vec<RemoteModel>, ProviderError> {
        parse_data_models(&self.name, body)
    }
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolDelta>,
}

#[derive(Deserialize)]
struct WireToolDelta {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

/// The Chat Completions stream grammar: `data: {chunk}` events, each with
/// deltas in `choices[0]`; `finish_reason` on the last choice chunk; with
/// `stream_options.include_usage`, one more chunk with `choices: []` and the
/// usage; then `data: [DONE]`. OpenRouter sends comment keep-alives and may
/// put usage on the finish chunk; errors arrive as `{"error": ...}` chunks.
struct OpenAiStream {
    provider: String,
    model: String,
    started: bool,
    request_id: Option<String>,
    finish: Option<StopReason>,
    done: bool,
    usage: Option<Usage>,
    cost: Option<Usd>,
    refused: bool,
}

impl OpenAiStream {
    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        self.done = true;
        if let Some(usage) = self.usage {
            out.push(StreamEvent::Usage {
                usage,
                cost: self.cost,
            });
        }
        let reason = if self.refused {
            StopReason::Refusal
        } else {
            self.finish.take().unwrap_or_default()
        };
        out.push(StreamEvent::Stop { reason });
    }
}

impl StreamDecoder for OpenAiStream {
    fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        if ev.data == "[DONE]" {
            if self.finish.is_none() && !self.refused {
                return Err(protocol(
                    &self.provider,
                    "stream ended with [DONE] before any finish_reason",
                ));
            }
            self.close(out);
            return Ok(());
        }
        let chunk: WireChunk = serde_json::from_str(&ev.data)
            .map_err(|e| protocol(&self.provider, format!("malformed stream chunk: {e}")))?;
        if let Some(err) = &chunk.error {
            self.done = true;
            return Err(error_from_value(&self.provider, err, 200));
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                model: chunk.model.clone().unwrap_or_else(|| self.model.clone()),
                request_id: self.request_id.clone().or(chunk.id.clone()),
            });
        }
        for choice in chunk.choices {
            if let Some(d) = choice.delta {
                if let Some(t) = d
                    .reasoning_content
                    .or(d.reasoning)
                    .filter(|t| !t.is_empty())
                {
                    out.push(StreamEvent::ReasoningDelta { text: t });
                }
                if let Some(t) = d.content.filter(|t| !t.is_empty()) {
                    out.push(StreamEvent::TextDelta { text: t });
                }
                if let Some(t) = d.refusal.filter(|t| !t.is_empty()) {
                    self.refused = true;
                    out.push(StreamEvent::TextDelta { text: t });
                }
                for c in d.tool_calls {
                    let (name, arguments) = match c.function {
                        Some(f) => (f.name, f.arguments.unwrap_or_default()),
                        None => (None, String::new()),
                    };
                    out.push(StreamEvent::ToolCallDelta {
                        index: c.index,
                        id: c.id,
                        name,
                        arguments,
                    });
                }
            }
            if let Some(f) = choice.finish_reason {
                if f == "error" {
                    self.done = true;
                    return Err(ProviderError::new(
                        ErrorKind::Server,
                        self.provider.clone(),
                        "the provider ended the stream with finish_reason \"error\"",
                    ));
                }
                self.finish = Some(finish_reason(&f));
            }
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(u.to_usage());
            if u.cost.is_some() {
                self.cost = u.cost();
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        // Some compatible servers omit [DONE]; a stream that reached its
        // finish_reason is complete all the same.
        if self.finish.is_some() {
            self.close(out);
            return Ok(());
        }
        Err(ProviderError::new(
            ErrorKind::Network,
            self.provider.clone(),
            "the stream ended before finish_reason (connection dropped?)",
        ))
    }
}

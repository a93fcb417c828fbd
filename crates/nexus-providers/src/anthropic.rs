//! Anthropic Messages API (`POST /v1/messages`).

use serde::Deserialize;
use serde_json::{json, Map, Value};

use nexus_core::{
    ChatRequest, ChatResponse, ContentPart, ErrorKind, ImageSource, ProviderError, RemoteModel,
    ResponseFormat, Role, StopReason, StreamEvent, ToolCall, Usage,
};

use crate::auth::Credential;
use crate::dialect::{
    fallback_error, get, parse_data_models, parse_json, protocol, refine_kind, with_meta, Dialect,
    HttpRequest, Method, ResponseMeta, StreamDecoder,
};
use crate::sse::SseEvent;

/// The `anthropic-version` header value.
pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` is required by this API; used when the request sets none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The Anthropic Messages dialect.
#[derive(Debug)]
pub struct Anthropic {
    name: String,
    base_url: String,
    credential: Credential,
}

impl Anthropic {
    /// A dialect for `base_url` (without `/v1`).
    pub fn new(name: impl Into<String>, base_url: &str, credential: Credential) -> Self {
        Anthropic {
            name: name.into(),
            base_url: base_url.trim_end_matches('/').to_string(),
            credential,
        }
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![
            ("anthropic-version", API_VERSION.to_string()),
            ("content-type", "application/json".to_string()),
        ];
        match &self.credential {
            Credential::ApiKey(k) => h.push(("x-api-key", k.expose().to_string())),
            Credential::Bearer(t) => {
                h.push(("authorization", format!("Bearer {}", t.expose())));
                h.push(("anthropic-beta", "oauth-2025-04-20".to_string()));
            }
            Credential::None => {}
        }
        h
    }
}

fn content_json(part: &ContentPart) -> Value {
    match part {
        ContentPart::Text { text } => json!({"type": "text", "text": text}),
        ContentPart::Image { source } => match source {
            ImageSource::Base64 { media_type, data } => json!({
                "type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": data}
            }),
            ImageSource::Url { url } => json!({
                "type": "image", "source": {"type": "url", "url": url}
            }),
        },
        ContentPart::ToolCall(c) => json!({
            "type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments
        }),
        ContentPart::ToolResult {
            call_id,
            content,
            is_error,
        } => {
            let mut v = json!({"type": "tool_result", "tool_use_id": call_id, "content": content});
            if *is_error {
                v["is_error"] = Value::Bool(true);
            }
            v
        }
    }
}

/// The request body (public for snapshot tests and benchmarks).
pub fn request_body(req: &ChatRequest, stream: bool) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    body.insert(
        "max_tokens".into(),
        json!(req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
    );
    let mut system = req.system.clone();
    // No native JSON mode: ask for it in the system prompt.
    let json_note = match &req.response_format {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some("Respond with a single JSON object and nothing else.".to_string()),
        ResponseFormat::JsonSchema { schema, .. } => Some(format!(
            "Respond with a single JSON value that follows this JSON Schema, and nothing else: {schema}"
        )),
    };
    if let Some(note) = json_note {
        system = Some(match system {
            Some(s) => format!("{s}\n\n{note}"),
            None => note,
        });
    }
    if let Some(s) = system {
        body.insert("system".into(), json!(s));
    }
    let messages: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            json!({
                "role": match m.role { Role::User => "user", Role::Assistant => "assistant" },
                "content": m.content.iter().map(content_json).collect::<Vec<_>>(),
            })
        })
        .collect();
    body.insert("messages".into(), Value::Array(messages));
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t));
    }
    if !req.stop.is_empty() {
        body.insert("stop_sequences".into(), json!(req.stop));
    }
    if !req.tools.is_empty() {
        let tools: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
            .collect();
        body.insert("tools".into(), Value::Array(tools));
    }
    if stream {
        body.insert("stream".into(), Value::Bool(true));
    }
    Value::Object(body)
}

fn stop_reason(s: Option<&str>) -> StopReason {
    match s {
        None | Some("end_turn") => StopReason::EndTurn,
        Some("max_tokens") => StopReason::MaxTokens,
        Some("stop_sequence") => StopReason::StopSequence,
        Some("tool_use") => StopReason::ToolUse,
        Some("refusal") => StopReason::Refusal,
        Some(other) => StopReason::Other(other.to_string()),
    }
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    fn to_usage(&self) -> Usage {
        Usage {
            input_tokens: self.input_tokens.unwrap_or(0),
            output_tokens: self.output_tokens.unwrap_or(0),
            cache_read_tokens: self.cache_read_input_tokens.unwrap_or(0),
            cache_write_tokens: self.cache_creation_input_tokens.unwrap_or(0),
            reasoning_tokens: 0,
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    id: Option<String>,
    model: String,
    #[serde(default)]
    content: Vec<WireBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
struct WireErrorBody {
    error: WireError,
    #[serde(default)]
    request_id: Option<String>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: String,
}

fn error_kind(t: &str, status: u16) -> ErrorKind {
    match t {
        "authentication_error" | "permission_error" => ErrorKind::Auth,
        "rate_limit_error" => ErrorKind::RateLimited,
        "overloaded_error" => ErrorKind::Overloaded,
        "api_error" => ErrorKind::Server,
        "timeout_error" => ErrorKind::Timeout,
        "request_too_large" => ErrorKind::ContextWindowExceeded,
        "billing_error" => ErrorKind::QuotaExceeded,
        "invalid_request_error" | "not_found_error" => ErrorKind::InvalidRequest,
        _ => nexus_core::conformance::kind_for_status(status),
    }
}

fn wire_error(provider: &str, e: WireError, status: u16) -> ProviderError {
    let kind = refine_kind(error_kind(&e.kind, status), None, &e.message);
    ProviderError::new(kind, provider, e.message).with_code(Some(e.kind))
}

impl Dialect for Anthropic {
    fn provider(&self) -> &str {
        &self.name
    }

    fn request_id_header(&self) -> &'static str {
        "request-id"
    }

    fn chat_request(&self, req: &ChatRequest, stream: bool) -> Result<HttpRequest, ProviderError> {
        let body =
            serde_json::to_vec(&request_body(req, stream)).map_err(|e| protocol(&self.name, e))?;
        Ok(HttpRequest {
            method: Method::Post,
            url: format!("{}/v1/messages", self.base_url),
            headers: self.headers(),
            body: Some(body),
        })
    }

    fn parse_chat(&self, body: &[u8], meta: &ResponseMeta) -> Result<ChatResponse, ProviderError> {
        let m: WireMessage = parse_json(&self.name, "Messages response", body)?;
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut tool_calls = Vec::new();
        for b in m.content {
            match b {
                WireBlock::Text { text: t } => text.push_str(&t),
                WireBlock::Thinking { thinking } => reasoning.push_str(&thinking),
                WireBlock::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: input,
                }),
                WireBlock::Other => {}
            }
        }
        Ok(ChatResponse {
            text,
            reasoning,
            tool_calls,
            stop_reason: stop_reason(m.stop_reason.as_deref()),
            model: m.model,
            request_id: meta.request_id.clone().or(m.id),
            usage: m.usage.to_usage(),
            provider_cost: None,
        })
    }

    fn stream_decoder(&self, req: &ChatRequest, meta: &ResponseMeta) -> Box<dyn StreamDecoder> {
        Box::new(AnthropicStream {
            provider: self.name.clone(),
            request_id: meta.request_id.clone(),
            model: req.model.clone(),
            blocks: Vec::new(),
            tool_count: 0,
            stopped: false,
            stop_reason: None,
            usage: Usage::default(),
        })
    }

    fn parse_error(&self, body: &[u8], meta: &ResponseMeta) -> ProviderError {
        match serde_json::from_slice::<WireErrorBody>(body) {
            Ok(b) => {
                let mut e = wire_error(&self.name, b.error, meta.status);
                e.request_id = b.request_id;
                with_meta(e, meta)
            }
            Err(_) => fallback_error(&self.name, body, meta),
        }
    }

    fn models_request(&self) -> HttpRequest {
        get(
            format!("{}/v1/models?limit=1000", self.base_url),
            self.headers(),
        )
    }

    fn parse_models(&self, body: &[u8]) -> Result<Vec<RemoteModel>, ProviderError> {
        parse_data_models(&self.name, body)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum BlockKind {
    Text,
    Tool(u32),
    Thinking,
    Other,
}

/// The Anthropic stream grammar: `message_start`, then per content block
/// `content_block_start` / `content_block_delta`* / `content_block_stop`,
/// then `message_delta` (stop reason, final output tokens) and
/// `message_stop`. `ping` may come anywhere; `error` ends the stream.
struct AnthropicStream {
    provider: String,
    /// The `request-id` header, preferred over the message id.
    request_id: Option<String>,
    model: String,
    blocks: Vec<BlockKind>,
    tool_count: u32,
    stopped: bool,
    stop_reason: Option<StopReason>,
    usage: Usage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: WireStartMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: WireStartBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: WireDelta,
    },
    ContentBlockStop {
        #[allow(dead_code)]
        index: usize,
    },
    MessageDelta {
        delta: WireMessageDelta,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: WireError,
    },
}

#[derive(Deserialize)]
struct WireStartMessage {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: String,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireStartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireMessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

impl StreamDecoder for AnthropicStream {
    fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.stopped {
            return Ok(());
        }
        let wire: WireEvent = match serde_json::from_str(&ev.data) {
            Ok(w) => w,
            Err(e) => {
                // Unknown event types are allowed by the API's versioning
                // policy; malformed known ones are not.
                let known = matches!(
                    ev.event.as_str(),
                    "message_start"
                        | "content_block_start"
                        | "content_block_delta"
                        | "content_block_stop"
                        | "message_delta"
                        | "message_stop"
                        | "ping"
                        | "error"
                );
                if known || ev.event.is_empty() {
                    return Err(protocol(
                        &self.provider,
                        format!("malformed `{}` stream event: {e}", ev.event),
                    ));
                }
                return Ok(());
            }
        };
        match wire {
            WireEvent::MessageStart { message } => {
                if !message.model.is_empty() {
                    self.model = message.model;
                }
                self.usage = message.usage.to_usage();
                out.push(StreamEvent::Start {
                    model: self.model.clone(),
                    request_id: self.request_id.clone().or(message.id),
                });
            }
            WireEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                let kind = match content_block {
                    WireStartBlock::Text { text } => {
                        if !text.is_empty() {
                            out.push(StreamEvent::TextDelta { text });
                        }
                        BlockKind::Text
                    }
                    WireStartBlock::Thinking { thinking } => {
                        if !thinking.is_empty() {
                            out.push(StreamEvent::ReasoningDelta { text: thinking });
                        }
                        BlockKind::Thinking
                    }
                    WireStartBlock::ToolUse { id, name } => {
                        let i = self.tool_count;
                        self.tool_count += 1;
                        out.push(StreamEvent::ToolCallDelta {
                            index: i,
                            id: Some(id),
                            name: Some(name),
                            arguments: String::new(),
                        });
                        BlockKind::Tool(i)
                    }
                    WireStartBlock::Other => BlockKind::Other,
                };
                if self.blocks.len() <= index {
                    self.blocks.resize(index + 1, BlockKind::Other);
                }
                self.blocks[index] = kind;
            }
            WireEvent::ContentBlockDelta { index, delta } => {
                let kind = self.blocks.get(index).copied().ok_or_else(|| {
                    protocol(
                        &self.provider,
                        format!("content_block_delta for unopened block {index}"),
                    )
                })?;
                match (delta, kind) {
                    (WireDelta::TextDelta { text }, _) => out.push(StreamEvent::TextDelta { text }),
                    (WireDelta::ThinkingDelta { thinking }, _) => {
                        out.push(StreamEvent::ReasoningDelta { text: thinking })
                    }
                    (WireDelta::InputJsonDelta { partial_json }, BlockKind::Tool(i)) => {
                        out.push(StreamEvent::ToolCallDelta {
                            index: i,
                            id: None,
                            name: None,
                            arguments: partial_json,
                        })
                    }
                    (WireDelta::InputJsonDelta { .. }, _) => {
                        return Err(protocol(
                            &self.provider,
                            "input_json_delta outside a tool_use block",
                        ))
                    }
                    (WireDelta::Other, _) => {}
                }
            }
            WireEvent::ContentBlockStop { .. } | WireEvent::Ping => {}
            WireEvent::MessageDelta { delta, usage } => {
                if let Some(u) = usage {
                    self.usage.merge_latest(&u.to_usage());
                }
                if delta.stop_reason.is_some() {
                    self.stop_reason = Some(stop_reason(delta.stop_reason.as_deref()));
                }
            }
            WireEvent::MessageStop => {
                self.stopped = true;
                out.push(StreamEvent::Usage {
                    usage: self.usage,
                    cost: None,
                });
                out.push(StreamEvent::Stop {
                    reason: self.stop_reason.take().unwrap_or_default(),
                });
            }
            WireEvent::Error { error } => {
                self.stopped = true;
                return Err(wire_error(&self.provider, error, 200));
            }
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.stopped {
            Ok(())
        } else {
            Err(ProviderError::new(
                ErrorKind::Network,
                self.provider.clone(),
                "the stream ended before message_stop (connection dropped?)",
            ))
        }
    }
}

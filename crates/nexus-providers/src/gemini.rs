//! Google Gemini (`generateContent` and `streamGenerateContent?alt=sse`).

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use nexus_core::{
    ChatRequest, ChatResponse, ContentPart, ErrorKind, ImageSource, ProviderError, RemoteModel,
    ResponseFormat, Role, StopReason, StreamEvent, ToolCall, Usage,
};

use crate::auth::Credential;
use crate::dialect::{
    fallback_error, parse_json, protocol, refine_kind, with_meta, Dialect, HttpRequest, Method,
    ResponseMeta, StreamDecoder,
};
use crate::sse::SseEvent;

/// The Gemini dialect.
#[derive(Debug)]
pub struct Gemini {
    name: String,
    base_url: String,
    credential: Credential,
}

impl Gemini {
    /// A dialect for `base_url` (without `/v1beta`).
    pub fn new(name: impl Into<String>, base_url: &str, credential: Credential) -> Self {
        Gemini {
            name: name.into(),
            base_url: base_url.trim_end_matches('/').to_string(),
            credential,
        }
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        let mut h = vec![("content-type", "application/json".to_string())];
        match &self.credential {
            Credential::ApiKey(k) => h.push(("x-goog-api-key", k.expose().to_string())),
            Credential::Bearer(t) => h.push(("authorization", format!("Bearer {}", t.expose()))),
            Credential::None => {}
        }
        h
    }
}

/// The request body (public for snapshot tests and benchmarks).
pub fn request_body(req: &ChatRequest) -> Value {
    // Gemini answers tool results by function name, not call id.
    let mut names: HashMap<&str, &str> = HashMap::new();
    for m in &req.messages {
        for p in &m.content {
            if let ContentPart::ToolCall(c) = p {
                names.insert(&c.id, &c.name);
            }
        }
    }
    let contents: Vec<Value> = req
        .messages
        .iter()
        .map(|m| {
            let parts: Vec<Value> = m
                .content
                .iter()
                .map(|p| match p {
                    ContentPart::Text { text } => json!({"text": text}),
                    ContentPart::Image { source } => match source {
                        ImageSource::Base64 { media_type, data } => {
                            json!({"inlineData": {"mimeType": media_type, "data": data}})
                        }
                        ImageSource::Url { url } => json!({"fileData": {"fileUri": url}}),
                    },
                    ContentPart::ToolCall(c) => {
                        json!({"functionCall": {"name": c.name, "args": c.arguments}})
                    }
                    ContentPart::ToolResult {
                        call_id,
                        content,
                        is_error,
                    } => {
                        let name = names.get(call_id.as_str()).copied().unwrap_or(call_id);
                        let key = if *is_error { "error" } else { "content" };
                        json!({"functionResponse": {"name": name, "response": {key: content}}})
                    }
                })
                .collect();
            json!({
                "role": match m.role { Role::User => "user", Role::Assistant => "model" },
                "parts": parts,
            })
        })
        .collect();
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if let Some(s) = &req.system {
        body.insert("systemInstruction".into(), json!({"parts": [{"text": s}]}));
    }
    let mut gen = Map::new();
    if let Some(n) = req.max_tokens {
        gen.insert("maxOutputTokens".into(), json!(n));
    }
    if let Some(t) = req.temperature {
        gen.insert("temperature".into(), json!(t));
    }
    if !req.stop.is_empty() {
        gen.insert("stopSequences".into(), json!(req.stop));
    }
    match &req.response_format {
        ResponseFormat::Text => {}
        ResponseFormat::JsonObject => {
            gen.insert("responseMimeType".into(), json!("application/json"));
        }
        ResponseFormat::JsonSchema { schema, .. } => {
            gen.insert("responseMimeType".into(), json!("application/json"));
            gen.insert("responseJsonSchema".into(), schema.clone());
        }
    }
    if !gen.is_empty() {
        body.insert("generationConfig".into(), Value::Object(gen));
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.input_schema}))
            .collect();
        body.insert("tools".into(), json!([{"functionDeclarations": decls}]));
    }
    Value::Object(body)
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct WireUsage {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    tool_use_prompt_token_count: u64,
}

impl WireUsage {
    fn to_usage(self) -> Usage {
        Usage {
            input_tokens: (self.prompt_token_count + self.tool_use_prompt_token_count)
                .saturating_sub(self.cached_content_token_count),
            // Thinking tokens are billed as output.
            output_tokens: self.candidates_token_count + self.thoughts_token_count,
            cache_read_tokens: self.cached_content_token_count,
            cache_write_tokens: 0,
            reasoning_tokens: self.thoughts_token_count,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse {
    #[serde(default)]
    candidates: Vec<WireCandidate>,
    #[serde(default)]
    usage_metadata: Option<WireUsage>,
    #[serde(default)]
    model_version: Option<String>,
    #[serde(default)]
    response_id: Option<String>,
    #[serde(default)]
    prompt_feedback: Option<WireFeedback>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCandidate {
    #[serde(default)]
    content: Option<WireContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireContent {
    #[serde(default)]
    parts: Vec<WirePart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(default)]
    function_call: Option<WireFunctionCall>,
}

#[derive(Deserialize)]
struct WireFunctionCall {
    #[serde(default)]
    id: Option<String>,
    name: String,
    #[serde(default)]
    args: Value,
}

fn finish_reason(s: &str) -> StopReason {
    match s {
        "STOP" | "FINISH_REASON_UNSPECIFIED" => StopReason::EndTurn,
        "MAX_TOKENS" => StopReason::MaxTokens,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            StopReason::ContentFilter
        }
        "MALFORMED_FUNCTION_CALL" => StopReason::Other("malformed_function_call".into()),
        other => StopReason::Other(other.to_ascii_lowercase()),
    }
}

fn error_from_value(provider: &str, err: &Value, http_status: u16) -> ProviderError {
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("unknown error")
        .to_string();
    let status = err.get("status").and_then(Value::as_str).unwrap_or("");
    let code = err
        .get("code")
        .and_then(Value::as_u64)
        .map_or(http_status, |c| c as u16);
    let details = err.get("details").and_then(Value::as_array);
    let reason = details.and_then(|d| {
        d.iter()
            .find_map(|x| x.get("reason").and_then(Value::as_str))
    });
    let retry = details.and_then(|d| {
        d.iter()
            .find_map(|x| x.get("retryDelay").and_then(Value::as_str))
            .and_then(parse_duration)
    });
    let kind = match (status, reason) {
        (_, Some("API_KEY_INVALID")) | ("UNAUTHENTICATED", _) | ("PERMISSION_DENIED", _) => {
            ErrorKind::Auth
        }
        ("RESOURCE_EXHAUSTED", _) => ErrorKind::RateLimited,
        ("UNAVAILABLE", _) => ErrorKind::Overloaded,
        ("INTERNAL", _) | ("UNKNOWN", _) => ErrorKind::Server,
        ("DEADLINE_EXCEEDED", _) => ErrorKind::Timeout,
        ("FAILED_PRECONDITION", _) => ErrorKind::QuotaExceeded,
        ("INVALID_ARGUMENT", _) | ("NOT_FOUND", _) => ErrorKind::InvalidRequest,
        _ if code == 200 => ErrorKind::Server,
        _ => nexus_core::conformance::kind_for_status(code),
    };
    let kind = refine_kind(kind, None, &message);
    let mut e = ProviderError::new(kind, provider, message)
        .with_code((!status.is_empty()).then(|| status.to_string()))
        .with_retry_after(retry);
    if code != 200 {
        e.status = Some(code);
    }
    e
}

/// Parses a protobuf Duration in JSON form (`"13s"`, `"1.5s"`).
fn parse_duration(s: &str) -> Option<Duration> {
    let secs: f64 = s.strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

fn collect_parts(
    content: Option<WireContent>,
    text: &mut String,
    reasoning: &mut String,
    calls: &mut Vec<ToolCall>,
) {
    for p in content.map(|c| c.parts).unwrap_or_default() {
        if let Some(fc) = p.function_call {
            let n = calls.len();
            calls.push(ToolCall {
                id: fc.id.unwrap_or_else(|| format!("call_{n}")),
                name: fc.name,
                arguments: if fc.args.is_null() {
                    Value::Object(Map::new())
                } else {
                    fc.args
                },
            });
        } else if let Some(t) = p.text {
            if p.thought == Some(true) {
                reasoning.push_str(&t);
            } else {
                text.push_str(&t);
            }
        }
    }
}

impl Dialect for Gemini {
    fn provider(&self) -> &str {
        &self.name
    }

    fn request_id_header(&self) -> &'static str {
        "x-request-id"
    }

    fn chat_request(&self, req: &ChatRequest, stream: bool) -> Result<HttpRequest, ProviderError> {
        let body = serde_json::to_vec(&request_body(req)).map_err(|e| protocol(&self.name, e))?;
        let model = req.model.strip_prefix("models/").unwrap_or(&req.model);
        let url = if stream {
            format!(
                "{}/v1beta/models/{model}:streamGenerateContent?alt=sse",
                self.base_url
            )
        } else {
            format!("{}/v1beta/models/{model}:generateContent", self.base_url)
        };
        Ok(HttpRequest {
            method: Method::Post,
            url,
            headers: self.headers(),
            body: Some(body),
        })
    }

    fn parse_chat(&self, body: &[u8], meta: &ResponseMeta) -> Result<ChatResponse, ProviderError> {
        let r: WireResponse = parse_json(&self.name, "generateContent response", body)?;
        if let Some(err) = &r.error {
            return Err(with_meta(
                error_from_value(&self.name, err, meta.status),
                meta,
            ));
        }
        let mut text = String::new();
        let mut reasoning = String::new();
        let mut tool_calls = Vec::new();
        let mut stop = if let Some(c) = r.candidates.into_iter().next() {
            collect_parts(c.content, &mut text, &mut reasoning, &mut tool_calls);
            finish_reason(c.finish_reason.as_deref().unwrap_or("STOP"))
        } else if r.prompt_feedback.and_then(|f| f.block_reason).is_some() {
            // The prompt itself was blocked: no candidates at all.
            StopReason::ContentFilter
        } else {
            return Err(protocol(&self.name, "response has no candidates"));
        };
        if !tool_calls.is_empty() && stop == StopReason::EndTurn {
            stop = StopReason::ToolUse;
        }
        Ok(ChatResponse {
            text,
            reasoning,
            tool_calls,
            stop_reason: stop,
            model: r.model_version.unwrap_or_default(),
            request_id: meta.request_id.clone().or(r.response_id),
            usage: r.usage_metadata.unwrap_or_default().to_usage(),
            provider_cost: None,
        })
    }

    fn stream_decoder(&self, req: &ChatRequest, meta: &ResponseMeta) -> Box<dyn StreamDecoder> {
        Box::new(GeminiStream {
            provider: self.name.clone(),
            model: req.model.clone(),
            request_id: meta.request_id.clone(),
            started: false,
            usage: None,
            finish: None,
            tools: 0,
            done: false,
        })
    }

    fn parse_error(&self, body: &[u8], meta: &ResponseMeta) -> ProviderError {
        // Errors are `{"error": {...}}`, sometimes wrapped in a one-element array.
        let v: Option<Value> = serde_json::from_slice(body).ok();
        let err = v.as_ref().and_then(|v| match v {
            Value::Array(a) => a.first().and_then(|x| x.get("error")),
            other => other.get("error"),
        });
        match err {
            Some(e) => with_meta(error_from_value(&self.name, e, meta.status), meta),
            None => fallback_error(&self.name, body, meta),
        }
    }

    fn models_request(&self) -> HttpRequest {
        HttpRequest {
            method: Method::Get,
            url: format!("{}/v1beta/models?pageSize=1000", self.base_url),
            headers: self.headers(),
            body: None,
        }
    }

    fn parse_models(&self, body: &[u8]) -> Result<Vec<RemoteModel>, ProviderError> {
        #[derive(Deserialize)]
        struct List {
            #[serde(default)]
            models: Vec<Item>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Item {
            name: String,
            #[serde(default)]
            display_name: Option<String>,
        }
        let l: List = parse_json(&self.name, "models list", body)?;
        Ok(l.models
            .into_iter()
            .map(|i| RemoteModel {
                id: i
                    .name
                    .strip_prefix("models/")
                    .unwrap_or(&i.name)
                    .to_string(),
                display_name: i.display_name,
            })
            .collect())
    }
}

/// The Gemini stream: every `data:` event is a whole `GenerateContentResponse`
/// holding the next parts; `usageMetadata` is cumulative; the last chunk has a
/// `finishReason`. There is no terminal sentinel: the stream just ends.
struct GeminiStream {
    provider: String,
    model: String,
    request_id: Option<String>,
    started: bool,
    usage: Option<Usage>,
    finish: Option<StopReason>,
    tools: u32,
    done: bool,
}

impl StreamDecoder for GeminiStream {
    fn on_event(&mut self, ev: &SseEvent, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        let r: WireResponse = serde_json::from_str(&ev.data)
            .map_err(|e| protocol(&self.provider, format!("malformed stream chunk: {e}")))?;
        if let Some(err) = &r.error {
            self.done = true;
            return Err(error_from_value(&self.provider, err, 200));
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                model: r
                    .model_version
                    .clone()
                    .unwrap_or_else(|| self.model.clone()),
                request_id: self.request_id.clone().or(r.response_id.clone()),
            });
        }
        if let Some(u) = r.usage_metadata {
            self.usage = Some(u.to_usage());
        }
        if r.candidates.is_empty() {
            if r.prompt_feedback.and_then(|f| f.block_reason).is_some() {
                self.finish = Some(StopReason::ContentFilter);
            }
            return Ok(());
        }
        for c in r.candidates.into_iter().take(1) {
            for p in c.content.map(|c| c.parts).unwrap_or_default() {
                if let Some(fc) = p.function_call {
                    let i = self.tools;
                    self.tools += 1;
                    out.push(StreamEvent::ToolCallDelta {
                        index: i,
                        id: Some(fc.id.unwrap_or_else(|| format!("call_{i}"))),
                        name: Some(fc.name),
                        arguments: if fc.args.is_null() {
                            "{}".into()
                        } else {
                            fc.args.to_string()
                        },
                    });
                } else if let Some(t) = p.text.filter(|t| !t.is_empty()) {
                    if p.thought == Some(true) {
                        out.push(StreamEvent::ReasoningDelta { text: t });
                    } else {
                        out.push(StreamEvent::TextDelta { text: t });
                    }
                }
            }
            if let Some(f) = c.finish_reason {
                let mut reason = finish_reason(&f);
                if self.tools > 0 && reason == StopReason::EndTurn {
                    reason = StopReason::ToolUse;
                }
                self.finish = Some(reason);
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        match self.finish.take() {
            Some(reason) => {
                self.done = true;
                if let Some(usage) = self.usage {
                    out.push(StreamEvent::Usage { usage, cost: None });
                }
                out.push(StreamEvent::Stop { reason });
                Ok(())
            }
            None => Err(ProviderError::new(
                ErrorKind::Network,
                self.provider.clone(),
                "the stream ended before a finishReason (connection dropped?)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_is_read_from_details() {
        let e = error_from_value(
            "gemini",
            &json!({"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "13s"}]}),
            429,
        );
        assert_eq!(e.kind, ErrorKind::RateLimited);
        assert_eq!(e.retry_after, Some(Duration::from_secs(13)));
    }

    #[test]
    fn invalid_key_is_auth_even_as_400() {
        let e = error_from_value(
            "gemini",
            &json!({"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}),
            400,
        );
        assert_eq!(e.kind, ErrorKind::Auth);
    }
}

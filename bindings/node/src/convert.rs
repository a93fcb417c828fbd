//! The JavaScript shapes of the SDK's types, and the typed errors.

use std::collections::HashMap;

use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;
use nexus_sdk as sdk;

use crate::vault::ErrorSlot;

/// One turn of a conversation. `content` is text, or (for tool loops) an
/// array of parts: `{type: 'text', text}`, `{type: 'tool_call', id, name,
/// arguments}`, `{type: 'tool_result', call_id, content, is_error?}`.
#[napi(object)]
#[derive(serde::Deserialize)]
pub struct Message {
    /// `user`, `assistant` or `system`.
    pub role: String,
    /// Its text.
    pub content: String,
}

/// Options of `chat` and `stream`.
#[napi(object)]
#[derive(Default)]
pub struct ChatOptions {
    /// The system prompt.
    pub system: Option<String>,
    /// The most tokens the answer may use.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Tools the model may call.
    pub tools: Option<Vec<ToolSpec>>,
    /// A JSON Schema the answer must follow (it arrives parsed as `reply.json`).
    pub schema: Option<serde_json::Value>,
}

/// A tool the model may call.
#[napi(object)]
pub struct ToolSpec {
    pub name: String,
    /// What it does, for the model.
    pub description: Option<String>,
    /// JSON Schema of its arguments.
    pub input_schema: serde_json::Value,
}

impl From<ChatOptions> for sdk::ChatOptions {
    fn from(o: ChatOptions) -> Self {
        sdk::ChatOptions {
            system: o.system,
            max_tokens: o.max_tokens,
            temperature: o.temperature,
            tools: o
                .tools
                .unwrap_or_default()
                .into_iter()
                .map(|t| sdk::Tool {
                    name: t.name,
                    description: t.description.unwrap_or_default(),
                    input_schema: t.input_schema,
                })
                .collect(),
            response_format: o.schema.map(|schema| sdk::ResponseFormat::JsonSchema {
                name: "answer".into(),
                schema,
            }),
        }
    }
}

/// Options of `ask`.
#[napi(object)]
#[derive(Default)]
pub struct AskOptions {
    /// Forces the category: heartbeat, daily, planning, coding or review.
    pub category: Option<String>,
    /// The system prompt.
    pub system: Option<String>,
    /// Validators every answer must pass: `json`, `toml`, `yaml`, `code`.
    pub validate: Option<Vec<String>>,
    /// A shell command that must accept the answer (on stdin).
    pub test_cmd: Option<String>,
    /// Scheduled work (classifies as heartbeat).
    pub scheduled: Option<bool>,
    /// Read-only work (classifies as review).
    pub read_only: Option<bool>,
}

impl From<AskOptions> for sdk::AskOptions {
    fn from(o: AskOptions) -> Self {
        sdk::AskOptions {
            category: o.category,
            system: o.system,
            validate: o.validate.unwrap_or_default(),
            test_cmd: o.test_cmd,
            scheduled: o.scheduled.unwrap_or(false),
            read_only: o.read_only.unwrap_or(false),
        }
    }
}

/// Token counts of one call.
#[napi(object)]
#[derive(Clone)]
pub struct Usage {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
}

fn n(x: u64) -> i64 {
    i64::try_from(x).unwrap_or(i64::MAX)
}

fn usage(u: sdk::Usage) -> Usage {
    Usage {
        input_tokens: n(u.input_tokens),
        output_tokens: n(u.output_tokens),
        cache_read_tokens: n(u.cache_read_tokens),
        cache_write_tokens: n(u.cache_write_tokens),
        reasoning_tokens: n(u.reasoning_tokens),
    }
}

/// A tool call the model made.
#[napi(object)]
#[derive(Clone)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments, as JSON text.
    pub arguments: String,
}

/// A complete answer.
#[napi(object)]
#[derive(Clone)]
pub struct Reply {
    pub text: String,
    pub model: String,
    pub provider: String,
    pub usage: Usage,
    /// Dollars, when the model's prices are known.
    pub cost: Option<f64>,
    pub stop_reason: String,
    pub request_id: Option<String>,
    pub reasoning: String,
    pub tool_calls: Vec<ToolCall>,
    /// The answer parsed as JSON, when `schema` asked for it.
    pub json: Option<serde_json::Value>,
    /// The answer as an assistant message (text and tool calls), to push
    /// onto the conversation before the tool results.
    #[napi(ts_type = "ConversationMessage")]
    pub assistant_message: serde_json::Value,
}

pub(crate) fn reply(r: sdk::Reply) -> Reply {
    let assistant_message = serde_json::to_value(r.assistant_message()).unwrap_or_default();
    Reply {
        json: r.json.clone(),
        assistant_message,
        text: r.text,
        model: r.model,
        provider: r.provider,
        usage: usage(r.usage),
        cost: r.cost.map(|c| c.dollars()),
        stop_reason: r.stop_reason,
        request_id: r.request_id,
        reasoning: r.reasoning,
        tool_calls: r
            .tool_calls
            .into_iter()
            .map(|t| ToolCall {
                id: t.id,
                name: t.name,
                arguments: t.arguments.to_string(),
            })
            .collect(),
    }
}

/// One attempt of an `ask`.
#[napi(object)]
pub struct Attempt {
    pub tier: u32,
    pub model: String,
    /// `success`, `error`, `refusal`, `invalid_output` or `skipped`.
    pub outcome: String,
    pub error_kind: Option<String>,
    pub reason: Option<String>,
    pub escalation: Option<String>,
    pub usage: Usage,
    pub cost: f64,
    pub latency_ms: i64,
}

pub(crate) fn attempt(a: &sdk::AttemptInfo) -> Attempt {
    Attempt {
        tier: a.tier,
        model: a.model.clone(),
        outcome: a.outcome.clone(),
        error_kind: a.error_kind.clone(),
        reason: a.reason.clone(),
        escalation: a.escalation.clone(),
        usage: usage(a.usage),
        cost: a.cost.dollars(),
        latency_ms: n(a.latency_ms),
    }
}

/// An answer the hierarchy accepted.
#[napi(object)]
pub struct AskReply {
    pub text: String,
    pub model: String,
    pub provider: String,
    pub usage: Usage,
    pub cost: Option<f64>,
    pub reply: Reply,
    pub request_id: String,
    pub category: String,
    pub basis: String,
    pub tier: u32,
    pub escalations: u32,
    pub total_cost: f64,
    pub attempts: Vec<Attempt>,
}

pub(crate) fn ask_reply(a: sdk::AskReply) -> AskReply {
    let r = reply(a.reply);
    AskReply {
        text: r.text.clone(),
        model: r.model.clone(),
        provider: r.provider.clone(),
        usage: r.usage.clone(),
        cost: r.cost,
        reply: r,
        request_id: a.request_id,
        category: a.category,
        basis: a.basis,
        tier: a.tier,
        escalations: a.escalations,
        total_cost: a.total_cost.dollars(),
        attempts: a.attempts.iter().map(attempt).collect(),
    }
}

// Built by `fast::Obj` in `Client::route`; declared here for index.d.ts.
/// The router's decision.
#[napi(object)]
#[allow(dead_code)]
pub struct Route {
    pub category: String,
    pub basis: String,
    pub tier: Option<u32>,
    pub model: Option<String>,
    pub estimate: f64,
}

// Built by `fast::Obj` in `Client::classify`; declared here for index.d.ts.
/// A category and why it was chosen.
#[napi(object)]
#[allow(dead_code)]
pub struct Classification {
    pub category: String,
    pub basis: String,
}

/// A built-in preset.
#[napi(object)]
pub struct Preset {
    pub name: String,
    pub description: String,
}

/// One tier of a category.
#[napi(object)]
pub struct TierInfo {
    pub model: String,
    pub max_tokens: Option<u32>,
    pub max_cost: Option<f64>,
}

/// The hierarchy in effect.
#[napi(object)]
pub struct Hierarchy {
    pub preset: String,
    pub saved: bool,
    pub categories: HashMap<String, Vec<TierInfo>>,
}

impl From<sdk::HierarchyInfo> for Hierarchy {
    fn from(h: sdk::HierarchyInfo) -> Self {
        Hierarchy {
            preset: h.preset,
            saved: h.saved,
            categories: h
                .categories
                .into_iter()
                .map(|(c, ts)| {
                    (
                        c,
                        ts.into_iter()
                            .map(|t| TierInfo {
                                model: t.model,
                                max_tokens: t.max_tokens,
                                max_cost: t.max_cost.map(|c| c.dollars()),
                            })
                            .collect(),
                    )
                })
                .collect(),
        }
    }
}

/// Escalation behaviour of one category.
#[napi(object)]
pub struct CategoryStats {
    pub category: String,
    pub requests: i64,
    pub escalated: i64,
    pub escalation_rate: f64,
    pub failed: i64,
}

/// Success of one tier.
#[napi(object)]
pub struct TierStats {
    pub tier: u32,
    pub attempts: i64,
    pub successes: i64,
    pub success_rate: f64,
}

/// `stats()`.
#[napi(object)]
pub struct Stats {
    pub categories: Vec<CategoryStats>,
    pub tiers: Vec<TierStats>,
}

impl From<sdk::Stats> for Stats {
    fn from(s: sdk::Stats) -> Self {
        Stats {
            categories: s
                .categories
                .into_iter()
                .map(|c| CategoryStats {
                    category: c.category,
                    requests: n(c.requests),
                    escalated: n(c.escalated),
                    escalation_rate: c.escalation_rate,
                    failed: n(c.failed),
                })
                .collect(),
            tiers: s
                .tiers
                .into_iter()
                .map(|t| TierStats {
                    tier: t.tier,
                    attempts: n(t.attempts),
                    successes: n(t.successes),
                    success_rate: t.success_rate,
                })
                .collect(),
        }
    }
}

/// One event of a stream. `type` is `start`, `text`, `reasoning`,
/// `tool_call`, `usage` or `stop`; the other fields are set by type.
#[napi(object)]
pub struct StreamEvent {
    #[napi(js_name = "type")]
    pub kind: String,
    pub text: Option<String>,
    pub model: Option<String>,
    pub index: Option<u32>,
    pub id: Option<String>,
    pub name: Option<String>,
    pub arguments: Option<String>,
    pub usage: Option<Usage>,
    pub stop_reason: Option<String>,
}

pub(crate) fn event(e: sdk::StreamEvent) -> StreamEvent {
    let f = sdk::FlatEvent::from(e);
    StreamEvent {
        kind: f.kind.to_string(),
        text: f.text,
        model: f.model,
        index: f.index,
        id: f.id,
        name: f.name,
        arguments: f.arguments,
        usage: f.usage.map(usage),
        stop_reason: f.stop_reason,
    }
}

/// A prompt string, or an array of `{role, content}`.
pub(crate) fn input(v: Unknown<'_>) -> Result<sdk::Input> {
    match v.get_type()? {
        ValueType::String => Ok(sdk::Input::Prompt(String::from_unknown(v)?)),
        ValueType::Object => {
            let value = serde_json::Value::from_unknown(v)?;
            let rich = value.as_array().is_some_and(|l| {
                l.iter()
                    .any(|m| m.get("content").is_some_and(|c| !c.is_string()))
            });
            if rich {
                return sdk::Input::from_json(&value)
                    .map_err(|e| Error::new(Status::InvalidArg, e.message().to_string()));
            }
            let msgs: Vec<Message> = serde_json::from_value(value).map_err(|_| {
                Error::new(
                    Status::InvalidArg,
                    "prompt must be a string or an array of {role, content}",
                )
            })?;
            Ok(sdk::Input::Messages(
                msgs.into_iter().map(|m| (m.role, m.content)).collect(),
            ))
        }
        _ => Err(Error::new(
            Status::InvalidArg,
            "prompt must be a string or an array of {role, content}",
        )),
    }
}

fn error_object<'env>(env: &'env Env, e: &sdk::Error, slot: &ErrorSlot) -> Result<Object<'env>> {
    let mut obj = env.create_error(Error::new(Status::GenericFailure, e.message()))?;
    obj.set_named_property("name", e.code().class_name())?;
    obj.set_named_property("code", e.code().as_str())?;
    obj.set_named_property("provider", e.provider())?;
    obj.set_named_property("status", e.status())?;
    obj.set_named_property("requestId", e.request_id())?;
    obj.set_named_property("retryAfter", e.retry_after().map(|d| d.as_secs_f64()))?;
    let attempts: Vec<Attempt> = e.attempts().iter().map(attempt).collect();
    obj.set_named_property("attempts", attempts)?;
    match e.code() {
        sdk::ErrorCode::NoAcceptableAnswer => {
            if let Some(pe) = e.provider_error() {
                let cause = error_object(env, &sdk::Error::from(pe.clone()), slot)?;
                obj.set_named_property("cause", cause)?;
            }
        }
        sdk::ErrorCode::Vault => {
            if let Some(cause) = slot.take() {
                obj.set_named_property("cause", JsError::from(cause).into_unknown(*env))?;
            }
        }
        _ => {}
    }
    Ok(obj)
}

/// The SDK error as a JavaScript `Error` with `name`, `code`, details and
/// `cause`.
pub(crate) fn js_err(env: &Env, e: sdk::Error, slot: &ErrorSlot) -> Error {
    match error_object(env, &e, slot) {
        Ok(obj) => Error::from(obj.to_unknown()),
        Err(other) => other,
    }
}

//! What the SDK takes and returns. Plain data: bindings convert each field.

use std::collections::BTreeMap;

use nexus_core::{
    ChatResponse, ContentPart, Message, ResponseFormat, Role, StopReason, Tool, ToolCall, Usage,
    Usd,
};
use nexus_hierarchy::engine::{Attempt, Outcome};
use serde::Serialize;

/// A prompt, or a whole conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// One user message.
    Prompt(String),
    /// A conversation: `(role, text)` pairs, role `user`, `assistant` or
    /// `system` (system turns become the system prompt).
    Messages(Vec<(String, String)>),
    /// A conversation with tool calls and their results: what a tool loop
    /// sends back ([`Reply::assistant_message`], [`tool_result`]).
    Conversation(Vec<Message>),
}

impl From<Vec<Message>> for Input {
    fn from(v: Vec<Message>) -> Self {
        Input::Conversation(v)
    }
}

impl Input {
    /// A conversation from JSON, as the bindings receive it: a list of
    /// `{"role": "user" | "assistant", "content": TEXT | [PART, ...]}` where a
    /// part is `{"type": "text", "text"}`, `{"type": "tool_call", "id",
    /// "name", "arguments"}` or `{"type": "tool_result", "call_id",
    /// "content", "is_error"?}`.
    pub fn from_json(v: &serde_json::Value) -> crate::Result<Input> {
        let bad = |why: String| {
            crate::Error::new(
                crate::ErrorCode::InvalidRequest,
                format!("the conversation: {why}"),
            )
        };
        let list = v
            .as_array()
            .ok_or_else(|| bad("expected a list of messages".into()))?;
        let mut out = Vec::with_capacity(list.len());
        for (i, m) in list.iter().enumerate() {
            let mut m = m.clone();
            if let Some(obj) = m.as_object_mut() {
                if obj.get("role").and_then(serde_json::Value::as_str) == Some("system") {
                    return Err(bad(format!(
                        "message {i} has role `system`; pass the system prompt as the `system` option"
                    )));
                }
                if let Some(serde_json::Value::String(text)) = obj.get("content").cloned() {
                    obj.insert(
                        "content".into(),
                        serde_json::json!([{ "type": "text", "text": text }]),
                    );
                }
            }
            out.push(
                serde_json::from_value::<Message>(m)
                    .map_err(|e| bad(format!("message {i}: {e}")))?,
            );
        }
        Ok(Input::Conversation(out))
    }
}

/// A user message carrying a tool's output for the call `call_id`.
pub fn tool_result(
    call_id: impl Into<String>,
    content: impl Into<String>,
    is_error: bool,
) -> Message {
    Message {
        role: Role::User,
        content: vec![ContentPart::ToolResult {
            call_id: call_id.into(),
            content: content.into(),
            is_error,
        }],
    }
}

impl From<&str> for Input {
    fn from(s: &str) -> Self {
        Input::Prompt(s.to_string())
    }
}

impl From<String> for Input {
    fn from(s: String) -> Self {
        Input::Prompt(s)
    }
}

impl From<Vec<(String, String)>> for Input {
    fn from(v: Vec<(String, String)>) -> Self {
        Input::Messages(v)
    }
}

impl Input {
    /// The messages and the system text found among them.
    pub(crate) fn into_messages(self) -> crate::Result<(Vec<Message>, Option<String>)> {
        match self {
            Input::Prompt(p) => Ok((vec![Message::user(p)], None)),
            Input::Conversation(list) => {
                if list.is_empty() {
                    return Err(crate::Error::new(
                        crate::ErrorCode::InvalidRequest,
                        "the conversation has no message",
                    ));
                }
                Ok((list, None))
            }
            Input::Messages(list) => {
                let mut system: Option<String> = None;
                let mut out = Vec::with_capacity(list.len());
                for (role, text) in list {
                    let role = match role.as_str() {
                        "user" => Role::User,
                        "assistant" => Role::Assistant,
                        "system" => {
                            match &mut system {
                                Some(s) => {
                                    s.push_str("\n\n");
                                    s.push_str(&text);
                                }
                                None => system = Some(text),
                            }
                            continue;
                        }
                        other => {
                            return Err(crate::Error::new(
                                crate::ErrorCode::InvalidRequest,
                                format!(
                                    "unknown message role `{other}`; use user, assistant or system"
                                ),
                            ))
                        }
                    };
                    out.push(Message {
                        role,
                        content: vec![ContentPart::text(text)],
                    });
                }
                if out.is_empty() {
                    return Err(crate::Error::new(
                        crate::ErrorCode::InvalidRequest,
                        "the conversation has no user or assistant message",
                    ));
                }
                Ok((out, system))
            }
        }
    }
}

/// Options of `chat` and `stream`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChatOptions {
    /// The system prompt.
    pub system: Option<String>,
    /// The most tokens the answer may use.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Tools the model may call, each with a JSON Schema for its arguments.
    pub tools: Vec<Tool>,
    /// The shape the answer must take: JSON, or JSON following a schema.
    /// Sent natively where the provider supports it (OpenAI, Gemini and the
    /// OpenAI-compatible APIs), asked for in the prompt elsewhere, and
    /// checked on every answer: one that does not parse or follow the schema
    /// is an error ([`crate::ErrorCode::NoAcceptableAnswer`]).
    pub response_format: Option<ResponseFormat>,
}

/// A complete answer, with what it cost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    /// The answer's text.
    pub text: String,
    /// The model that answered (as the provider named it).
    pub model: String,
    /// The model asked for, as the provider knows it (`gpt-4o-mini`).
    pub requested_model: String,
    /// The provider that answered.
    pub provider: String,
    /// Token counts.
    pub usage: Usage,
    /// What it cost, when the model's prices are known.
    pub cost: Option<Usd>,
    /// Why the model stopped: `end_turn`, `max_tokens`, `tool_use`, ...
    pub stop_reason: String,
    /// The provider's request id.
    pub request_id: Option<String>,
    /// Reasoning text, where the provider returns it.
    pub reasoning: String,
    /// Tool calls the model made.
    pub tool_calls: Vec<ToolCall>,
    /// The answer parsed as JSON, when a JSON response format was asked for.
    pub json: Option<serde_json::Value>,
}

impl Reply {
    pub(crate) fn new(
        provider: &str,
        requested: &str,
        r: ChatResponse,
        cost: Option<Usd>,
    ) -> Reply {
        Reply {
            requested_model: requested.to_string(),
            stop_reason: stop_reason_str(&r.stop_reason),
            text: r.text,
            model: r.model,
            provider: provider.to_string(),
            usage: r.usage,
            cost,
            request_id: r.request_id,
            reasoning: r.reasoning,
            tool_calls: r.tool_calls,
            json: None,
        }
    }

    /// The answer as an assistant message (text and tool calls), to append
    /// to the conversation before sending tool results back.
    pub fn assistant_message(&self) -> Message {
        let mut content = Vec::new();
        if !self.text.is_empty() {
            content.push(ContentPart::text(self.text.clone()));
        }
        content.extend(self.tool_calls.iter().cloned().map(ContentPart::ToolCall));
        Message {
            role: Role::Assistant,
            content,
        }
    }

    /// Checks the answer against `format` and keeps the parsed JSON.
    pub(crate) fn check_format(&mut self, format: Option<&ResponseFormat>) -> crate::Result<()> {
        let schema = match format {
            None | Some(ResponseFormat::Text) => return Ok(()),
            Some(ResponseFormat::JsonObject) => None,
            Some(ResponseFormat::JsonSchema { schema, .. }) => Some(schema),
        };
        // A tool call is not the final answer; it carries no JSON yet.
        if !self.tool_calls.is_empty() && self.text.trim().is_empty() {
            return Ok(());
        }
        let bad = |why: String| {
            crate::Error::new(
                crate::ErrorCode::NoAcceptableAnswer,
                format!(
                    "{}/{} answered, but not in the requested format: {why}",
                    self.provider, self.requested_model
                ),
            )
        };
        let text = nexus_hierarchy::validate::payload(&self.text).trim();
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| bad(format!("the answer is not JSON ({e})")))?;
        match schema {
            Some(s) => nexus_core::schema::validate(s, &value)
                .map_err(|e| bad(format!("it does not follow the schema: {e}")))?,
            None if !value.is_object() => {
                return Err(bad("the answer is not a JSON object".into()))
            }
            None => {}
        }
        self.json = Some(value);
        Ok(())
    }
}

/// The stable snake_case name of a stop reason (`end_turn`, `max_tokens`, ...).
pub fn stop_reason_str(r: &StopReason) -> String {
    match r {
        StopReason::Other(s) => s.clone(),
        other => serde_json::to_value(other)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
    }
}

pub(crate) fn label<T: Serialize>(x: &T) -> String {
    serde_json::to_value(x)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Options of `ask`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AskOptions {
    /// Forces the category: heartbeat, daily, planning, coding or review.
    pub category: Option<String>,
    /// The system prompt.
    pub system: Option<String>,
    /// Validators every answer must pass: `json`, `toml`, `yaml`, `code`.
    pub validate: Vec<String>,
    /// A shell command that must accept the answer (on stdin) with exit 0.
    pub test_cmd: Option<String>,
    /// The request is scheduled work (classifies as heartbeat).
    pub scheduled: bool,
    /// The request only reads (classifies as review).
    pub read_only: bool,
}

/// One attempt of an `ask`, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptInfo {
    /// The tier, 1-based.
    pub tier: u32,
    /// The model as configured.
    pub model: String,
    /// `success`, `error`, `refusal`, `invalid_output` or `skipped`.
    pub outcome: String,
    /// For errors, the provider error class (`rate_limited`, ...).
    pub error_kind: Option<String>,
    /// Why it failed, was rejected or skipped.
    pub reason: Option<String>,
    /// Why the engine moved on (or stopped) after it.
    pub escalation: Option<String>,
    /// The model that actually answered (a provider may name it otherwise).
    pub answered_by: Option<String>,
    /// Tokens.
    pub usage: Usage,
    /// What the router estimated before the call.
    pub estimate: Usd,
    /// What it cost.
    pub cost: Usd,
    /// Wall time of the call, in milliseconds.
    pub latency_ms: u64,
}

impl From<&Attempt> for AttemptInfo {
    fn from(a: &Attempt) -> Self {
        let (outcome, error_kind, reason) = match &a.outcome {
            Outcome::Success => ("success", None, None),
            Outcome::Error { kind, message } => (
                "error",
                Some(kind.as_str().to_string()),
                Some(message.clone()),
            ),
            Outcome::Refusal => ("refusal", None, None),
            Outcome::InvalidOutput { reason } => ("invalid_output", None, Some(reason.clone())),
            Outcome::Skipped { reason } => ("skipped", None, Some(reason.clone())),
        };
        AttemptInfo {
            tier: a.tier,
            model: a.model.clone(),
            outcome: outcome.to_string(),
            error_kind,
            reason,
            escalation: a.escalation.clone(),
            answered_by: a.answered_by.clone(),
            estimate: a.estimate,
            usage: a.usage,
            cost: a.cost,
            latency_ms: a.latency_ms,
        }
    }
}

/// An answer accepted by the hierarchy, and how it was reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AskReply {
    /// The accepted answer (its `cost` is that attempt's).
    pub reply: Reply,
    /// The request's id in the ledger.
    pub request_id: String,
    /// The category it ran in.
    pub category: String,
    /// Why that category: `explicit`, `tag`, `context`, `keywords`, `default`.
    pub basis: String,
    /// The tier that answered, 1-based.
    pub tier: u32,
    /// How many times it escalated.
    pub escalations: u32,
    /// Every attempt's cost, summed.
    pub total_cost: Usd,
    /// Every attempt, skips included.
    pub attempts: Vec<AttemptInfo>,
}

/// The router's decision for a prompt, made without calling any model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    /// The category.
    pub category: String,
    /// Why that category.
    pub basis: String,
    /// The first tier the budget admits (1-based), if any.
    pub tier: Option<u32>,
    /// Its model.
    pub model: Option<String>,
    /// Its estimated cost.
    pub estimate: Usd,
}

/// A built-in preset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PresetInfo {
    /// Its name (`balanced`).
    pub name: String,
    /// What it favours.
    pub description: String,
}

/// One tier of a category.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TierInfo {
    /// The model.
    pub model: String,
    /// The answer-length cap at this tier.
    pub max_tokens: Option<u32>,
    /// The per-request cost cap at this tier.
    pub max_cost: Option<Usd>,
}

/// The hierarchy in effect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HierarchyInfo {
    /// The preset it came from, or `custom`.
    pub preset: String,
    /// Whether it is saved in config.toml (otherwise computed on the fly
    /// for the providers that have keys).
    pub saved: bool,
    /// Each category's tiers, cheapest first.
    pub categories: BTreeMap<String, Vec<TierInfo>>,
}

pub use nexus_hierarchy::ledger::{CategoryStats, HierarchyStats as Stats, TierStats};

/// A stream event as flat fields, the shape every binding exposes: `kind`
/// (`start`, `text`, `reasoning`, `tool_call`, `usage` or `stop`) and the
/// fields that kind sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlatEvent {
    /// What happened.
    pub kind: &'static str,
    /// Text of `text` and `reasoning`.
    pub text: Option<String>,
    /// The answering model, on `start`.
    pub model: Option<String>,
    /// Which tool call, on `tool_call`.
    pub index: Option<u32>,
    /// The tool call's id, on its first delta.
    pub id: Option<String>,
    /// The tool's name, on its first delta.
    pub name: Option<String>,
    /// A fragment of the tool call's JSON arguments.
    pub arguments: Option<String>,
    /// Usage so far, on `usage`.
    pub usage: Option<Usage>,
    /// Why it stopped, on `stop`.
    pub stop_reason: Option<String>,
}

impl From<nexus_core::StreamEvent> for FlatEvent {
    fn from(e: nexus_core::StreamEvent) -> Self {
        use nexus_core::StreamEvent as E;
        match e {
            E::Start { model, .. } => FlatEvent {
                kind: "start",
                model: Some(model),
                ..Default::default()
            },
            E::TextDelta { text } => FlatEvent {
                kind: "text",
                text: Some(text),
                ..Default::default()
            },
            E::ReasoningDelta { text } => FlatEvent {
                kind: "reasoning",
                text: Some(text),
                ..Default::default()
            },
            E::ToolCallDelta {
                index,
                id,
                name,
                arguments,
            } => FlatEvent {
                kind: "tool_call",
                index: Some(index),
                id,
                name,
                arguments: Some(arguments),
                ..Default::default()
            },
            E::Usage { usage, .. } => FlatEvent {
                kind: "usage",
                usage: Some(usage),
                ..Default::default()
            },
            E::Stop { reason } => FlatEvent {
                kind: "stop",
                stop_reason: Some(stop_reason_str(&reason)),
                ..Default::default()
            },
        }
    }
}

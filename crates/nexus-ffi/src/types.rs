//! The records the facade passes across the FFI, and their conversions.

use std::collections::HashMap;

use nexus_sdk as sdk;

/// How to build a client.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct ClientOptions {
    /// The state root; default `NEXUS_HOME`, else `~/.nexus`.
    #[uniffi(default = None)]
    pub home: Option<String>,
    /// Variables consulted before the process environment.
    pub env: HashMap<String, String>,
}

/// One turn of a conversation.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Message {
    /// `user`, `assistant` or `system`.
    pub role: String,
    /// Its text.
    pub content: String,
}

/// Options of `chat` and `stream`.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct ChatOptions {
    /// The system prompt.
    #[uniffi(default = None)]
    pub system: Option<String>,
    /// The most tokens the answer may use.
    #[uniffi(default = None)]
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    #[uniffi(default = None)]
    pub temperature: Option<f64>,
    /// Tools the model may call.
    #[uniffi(default = [])]
    pub tools: Vec<crate::tools::ToolSpec>,
    /// A JSON Schema (as JSON text) the answer must follow; the parsed
    /// answer arrives as `Reply.json`.
    #[uniffi(default = None)]
    pub schema_json: Option<String>,
}

fn json(text: &str, what: &str) -> Result<serde_json::Value, crate::NexusError> {
    serde_json::from_str(text).map_err(|e| crate::NexusError::InvalidRequest {
        message: format!("{what} is not JSON: {e}"),
    })
}

/// The SDK's options; JSON in them must parse.
pub(crate) fn chat_options(o: ChatOptions) -> Result<sdk::ChatOptions, crate::NexusError> {
    Ok(sdk::ChatOptions {
        system: o.system,
        max_tokens: o.max_tokens,
        temperature: o.temperature,
        tools: o
            .tools
            .into_iter()
            .map(|t| {
                Ok(sdk::Tool {
                    input_schema: json(
                        &t.input_schema_json,
                        &format!("the schema of tool `{}`", t.name),
                    )?,
                    name: t.name,
                    description: t.description,
                })
            })
            .collect::<Result<_, crate::NexusError>>()?,
        response_format: o
            .schema_json
            .map(|s| {
                json(&s, "schema_json").map(|schema| sdk::ResponseFormat::JsonSchema {
                    name: "answer".into(),
                    schema,
                })
            })
            .transpose()?,
    })
}

/// Options of `ask`.
#[derive(Debug, Clone, Default, uniffi::Record)]
pub struct AskOptions {
    /// Forces the category.
    #[uniffi(default = None)]
    pub category: Option<String>,
    /// The system prompt.
    #[uniffi(default = None)]
    pub system: Option<String>,
    /// Validators: `json`, `toml`, `yaml`, `code`.
    #[uniffi(default = [])]
    pub validate: Vec<String>,
    /// A shell command that must accept the answer.
    #[uniffi(default = None)]
    pub test_cmd: Option<String>,
    /// Scheduled work.
    #[uniffi(default = false)]
    pub scheduled: bool,
    /// Read-only work.
    #[uniffi(default = false)]
    pub read_only: bool,
}

impl From<AskOptions> for sdk::AskOptions {
    fn from(o: AskOptions) -> Self {
        sdk::AskOptions {
            category: o.category,
            system: o.system,
            validate: o.validate,
            test_cmd: o.test_cmd,
            scheduled: o.scheduled,
            read_only: o.read_only,
        }
    }
}

/// Token counts.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Usage {
    /// Prompt tokens at the input rate.
    pub input_tokens: u64,
    /// Answer tokens.
    pub output_tokens: u64,
    /// Prompt tokens read from cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to cache.
    pub cache_write_tokens: u64,
    /// Reasoning tokens (part of output).
    pub reasoning_tokens: u64,
}

fn usage(u: sdk::Usage) -> Usage {
    Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cache_read_tokens: u.cache_read_tokens,
        cache_write_tokens: u.cache_write_tokens,
        reasoning_tokens: u.reasoning_tokens,
    }
}

/// A tool call.
#[derive(Debug, Clone, uniffi::Record)]
pub struct ToolCall {
    /// The provider's id.
    pub id: String,
    /// The tool.
    pub name: String,
    /// The arguments, as JSON text.
    pub arguments: String,
}

/// A complete answer.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Reply {
    /// The text.
    pub text: String,
    /// The model that answered.
    pub model: String,
    /// The provider.
    pub provider: String,
    /// Token counts.
    pub usage: Usage,
    /// Dollars, when prices are known.
    pub cost: Option<f64>,
    /// Why it stopped.
    pub stop_reason: String,
    /// The provider's request id.
    pub request_id: Option<String>,
    /// Reasoning text.
    pub reasoning: String,
    /// Tool calls.
    pub tool_calls: Vec<ToolCall>,
    /// The answer as JSON text, when a schema asked for JSON.
    pub json: Option<String>,
    /// The answer as an assistant message (JSON), to append to the
    /// conversation before the tool results.
    pub assistant_message_json: String,
}

pub(crate) fn reply(r: sdk::Reply) -> Reply {
    let assistant_message_json = serde_json::to_string(&r.assistant_message()).unwrap_or_default();
    Reply {
        json: r.json.as_ref().map(ToString::to_string),
        assistant_message_json,
        text: r.text,
        model: r.model,
        provider: r.provider,
        usage: usage(r.usage),
        cost: r.cost.map(|c| c.dollars()),
        stop_reason: r.stop_reason,
        request_id: r.request_id,
        reasoning: r.reasoning,
        tool_calls: r.tool_calls.into_iter().map(tool_call).collect(),
    }
}

/// A tool call across the FFI (arguments as JSON text).
pub(crate) fn tool_call(t: sdk::ToolCall) -> ToolCall {
    ToolCall {
        id: t.id,
        name: t.name,
        arguments: t.arguments.to_string(),
    }
}

/// One attempt of an `ask`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Attempt {
    /// The tier, 1-based.
    pub tier: u32,
    /// The model.
    pub model: String,
    /// `success`, `error`, `refusal`, `invalid_output` or `skipped`.
    pub outcome: String,
    /// The provider error class, for errors.
    pub error_kind: Option<String>,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    /// Why the engine moved on.
    pub escalation: Option<String>,
    /// Tokens.
    pub usage: Usage,
    /// Dollars.
    pub cost: f64,
    /// Milliseconds.
    pub latency_ms: u64,
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
        latency_ms: a.latency_ms,
    }
}

/// An answer the hierarchy accepted.
#[derive(Debug, Clone, uniffi::Record)]
pub struct AskReply {
    /// The answer.
    pub reply: Reply,
    /// The ledger's request id.
    pub request_id: String,
    /// The category.
    pub category: String,
    /// Why that category.
    pub basis: String,
    /// The tier that answered.
    pub tier: u32,
    /// Escalations.
    pub escalations: u32,
    /// Dollars across every attempt.
    pub total_cost: f64,
    /// Every attempt.
    pub attempts: Vec<Attempt>,
}

pub(crate) fn ask_reply(a: sdk::AskReply) -> AskReply {
    AskReply {
        reply: reply(a.reply),
        request_id: a.request_id,
        category: a.category,
        basis: a.basis,
        tier: a.tier,
        escalations: a.escalations,
        total_cost: a.total_cost.dollars(),
        attempts: a.attempts.iter().map(attempt).collect(),
    }
}

/// The router's decision.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Route {
    /// The category.
    pub category: String,
    /// Why.
    pub basis: String,
    /// The first admitted tier.
    pub tier: Option<u32>,
    /// Its model.
    pub model: Option<String>,
    /// Estimated dollars.
    pub estimate: f64,
}

pub(crate) fn route(r: sdk::Route) -> Route {
    Route {
        category: r.category,
        basis: r.basis,
        tier: r.tier,
        model: r.model,
        estimate: r.estimate.dollars(),
    }
}

/// A category and why.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Classification {
    /// The category.
    pub category: String,
    /// Why.
    pub basis: String,
}

/// A preset.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Preset {
    /// Its name.
    pub name: String,
    /// What it favours.
    pub description: String,
}

/// One tier.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TierInfo {
    /// The model.
    pub model: String,
    /// Answer-length cap.
    pub max_tokens: Option<u32>,
    /// Per-request cost cap, dollars.
    pub max_cost: Option<f64>,
}

/// The hierarchy in effect.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Hierarchy {
    /// The preset, or `custom`.
    pub preset: String,
    /// Whether it is saved.
    pub saved: bool,
    /// Each category's tiers.
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
                    let tiers = ts
                        .into_iter()
                        .map(|t| TierInfo {
                            model: t.model,
                            max_tokens: t.max_tokens,
                            max_cost: t.max_cost.map(|c| c.dollars()),
                        })
                        .collect();
                    (c, tiers)
                })
                .collect(),
        }
    }
}

/// One category's escalation behaviour.
#[derive(Debug, Clone, uniffi::Record)]
pub struct CategoryStats {
    /// The category.
    pub category: String,
    /// Requests.
    pub requests: u64,
    /// Requests that escalated.
    pub escalated: u64,
    /// `escalated / requests`.
    pub escalation_rate: f64,
    /// Requests with no answer.
    pub failed: u64,
}

/// One tier's success.
#[derive(Debug, Clone, uniffi::Record)]
pub struct TierStats {
    /// The tier.
    pub tier: u32,
    /// Calls.
    pub attempts: u64,
    /// Accepted answers.
    pub successes: u64,
    /// `successes / attempts`.
    pub success_rate: f64,
}

/// Statistics.
#[derive(Debug, Clone, uniffi::Record)]
pub struct Stats {
    /// Per category.
    pub categories: Vec<CategoryStats>,
    /// Per tier.
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
                    requests: c.requests,
                    escalated: c.escalated,
                    escalation_rate: c.escalation_rate,
                    failed: c.failed,
                })
                .collect(),
            tiers: s
                .tiers
                .into_iter()
                .map(|t| TierStats {
                    tier: t.tier,
                    attempts: t.attempts,
                    successes: t.successes,
                    success_rate: t.success_rate,
                })
                .collect(),
        }
    }
}

/// One event of a stream; `kind` is `start`, `text`, `reasoning`,
/// `tool_call`, `usage` or `stop`.
#[derive(Debug, Clone, uniffi::Record)]
pub struct StreamEvent {
    /// The kind.
    pub kind: String,
    /// Text of `text` and `reasoning`.
    pub text: Option<String>,
    /// The model, on `start`.
    pub model: Option<String>,
    /// Tool call index.
    pub index: Option<u32>,
    /// Tool call id.
    pub id: Option<String>,
    /// Tool name.
    pub name: Option<String>,
    /// Tool arguments fragment.
    pub arguments: Option<String>,
    /// Usage so far.
    pub usage: Option<Usage>,
    /// Why it stopped.
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

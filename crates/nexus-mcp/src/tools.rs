//! The tools `nexus mcp serve` offers: each with its JSON Schema, each a
//! thin call into [`nexus_sdk`], and every failure in one error schema:
//! `{"error": {"code": ErrorCode name, "message": what to do next}}`.
//!
//! Delivery is at-least-once: `mesh_inbox` returns what the local inbox
//! holds unacknowledged, with ids; only `mesh_ack` marks them done. A session
//! that ends before it acks sees the same messages again next time.

use nexus_sdk::mesh::InboxItem;
use nexus_sdk::{AskOptions, ChatOptions, Client, ErrorCode};
use serde_json::{json, Map, Value};

/// One tool: name, description, input schema.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The tool's name.
    pub name: &'static str,
    /// What it does, for the model.
    pub description: &'static str,
    /// Its arguments' JSON Schema.
    pub schema: Value,
}

fn mesh_prop() -> Value {
    json!({"type": "string", "description": "The mesh (default: the current one)."})
}

fn object(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

/// Every tool, in the order they are listed.
pub fn specs() -> Vec<Spec> {
    vec![
        Spec {
            name: "mesh_peers",
            description: "List the mesh's members: name, id, online, status and summary.",
            schema: object(json!({"mesh": mesh_prop()}), &[]),
        },
        Spec {
            name: "mesh_send",
            description: "Send a direct, end-to-end encrypted message to a peer (name or id). Returns once the broker stored it.",
            schema: object(
                json!({"to": {"type": "string", "minLength": 1}, "text": {"type": "string", "minLength": 1}, "mesh": mesh_prop()}),
                &["to", "text"],
            ),
        },
        Spec {
            name: "mesh_inbox",
            description: "Messages received and not yet acknowledged, oldest first, each with an id. Call mesh_ack with the ids once handled: until then they are returned again (also after a restart).",
            schema: object(
                json!({
                    "cursor": {"type": "integer", "minimum": 0, "description": "Only ids above this (next_cursor of the previous page)."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 100},
                    "mesh": mesh_prop()
                }),
                &[],
            ),
        },
        Spec {
            name: "mesh_ack",
            description: "Acknowledge handled messages by id, so mesh_inbox no longer returns them.",
            schema: object(
                json!({"ids": {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 1000}, "mesh": mesh_prop()}),
                &["ids"],
            ),
        },
        Spec {
            name: "mesh_topic_send",
            description: "Publish a message to a topic of the mesh.",
            schema: object(
                json!({"topic": {"type": "string", "minLength": 1}, "text": {"type": "string", "minLength": 1}, "mesh": mesh_prop()}),
                &["topic", "text"],
            ),
        },
        Spec {
            name: "mesh_topic_history",
            description: "A page of a topic's history, newest first.",
            schema: object(
                json!({
                    "topic": {"type": "string", "minLength": 1},
                    "before": {"type": "integer", "minimum": 0, "description": "Only messages before this sequence number."},
                    "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50},
                    "mesh": mesh_prop()
                }),
                &["topic"],
            ),
        },
        Spec {
            name: "set_status",
            description: "Set your status as the mesh shows it (e.g. 'reviewing PR 12').",
            schema: object(json!({"text": {"type": "string"}, "mesh": mesh_prop()}), &["text"]),
        },
        Spec {
            name: "set_summary",
            description: "Set your summary: what you work on, for other peers to read.",
            schema: object(json!({"text": {"type": "string"}, "mesh": mesh_prop()}), &["text"]),
        },
        Spec {
            name: "ask",
            description: "Ask through the model hierarchy: the cheapest tier first, escalating on failure, within the budget. Returns the answer, the tier and the cost.",
            schema: object(
                json!({
                    "prompt": {"type": "string", "minLength": 1},
                    "category": {"type": "string", "enum": ["heartbeat", "daily", "planning", "coding", "review"]},
                    "system": {"type": "string"}
                }),
                &["prompt"],
            ),
        },
        Spec {
            name: "chat",
            description: "One call to one model (provider/model, an alias, or the default), with its cost.",
            schema: object(
                json!({
                    "prompt": {"type": "string", "minLength": 1},
                    "model": {"type": "string", "description": "provider/model or an alias; empty: the default"},
                    "system": {"type": "string"},
                    "max_tokens": {"type": "integer", "minimum": 1}
                }),
                &["prompt"],
            ),
        },
    ]
}

/// A failed tool call: the error schema's two fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    /// An [`ErrorCode`] name (`invalid_request`, `mesh`, ...).
    pub code: &'static str,
    /// What went wrong and what to do next.
    pub message: String,
}

impl ToolError {
    fn invalid(message: impl Into<String>) -> ToolError {
        ToolError {
            code: ErrorCode::InvalidRequest.as_str(),
            message: message.into(),
        }
    }

    /// The error schema's JSON.
    pub fn to_json(&self) -> Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }
}

impl From<nexus_sdk::Error> for ToolError {
    fn from(e: nexus_sdk::Error) -> ToolError {
        ToolError {
            code: e.code().as_str(),
            message: e.to_string(),
        }
    }
}

/// What tool `name` does, for the action policy: resource, verb, peer.
pub fn action_of<'a>(
    name: &str,
    args: &'a Map<String, Value>,
) -> (&'static str, &'static str, Option<&'a str>) {
    match name {
        "mesh_peers" => ("peers", "read", None),
        "mesh_send" => ("messages", "send", opt_text(args, "to")),
        "mesh_inbox" | "mesh_ack" => ("messages", "read", None),
        "mesh_topic_send" => ("topics", "send", None),
        "mesh_topic_history" => ("topics", "read", None),
        "set_status" | "set_summary" => ("presence", "write", None),
        "ask" => ("models", "ask", None),
        "chat" => ("models", "chat", None),
        _ => ("tools", "call", None),
    }
}

/// Checks tool `name` against the action policy under `mode`, writing the
/// decision to the audit log; the refusal, in the error schema.
pub fn allowed(
    client: &Client,
    mode: nexus_core::policy::ApprovalMode,
    name: &str,
    args: &Map<String, Value>,
) -> Result<(), ToolError> {
    let home = nexus_core::NexusHome::at(client.home());
    let policies = nexus_sdk::policy::Policies::load(&home).map_err(|e| ToolError {
        code: ErrorCode::Config.as_str(),
        message: format!("the policy cannot be read, so nothing is allowed: {e}"),
    })?;
    let (resource, verb, peer) = action_of(name, args);
    let mesh = opt_text(args, "mesh");
    let action = nexus_core::policy::Action {
        resource,
        verb,
        mesh,
        peer,
    };
    let (v, _) = nexus_sdk::policy::check_unattended(&home, &policies, mode, "mcp", &action);
    if v.decision == nexus_core::policy::Decision::Allow {
        Ok(())
    } else {
        Err(ToolError {
            code: ErrorCode::Auth.as_str(),
            message: format!("the policy denies `{name}`: {}", v.reason),
        })
    }
}

/// The error schema, as the tools' output schema for failures.
pub fn error_schema() -> Value {
    let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
    json!({
        "type": "object",
        "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "string", "enum": codes},
            "message": {"type": "string"}
        }, "required": ["code", "message"]}},
        "required": ["error"]
    })
}

fn text<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a str, ToolError> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ToolError::invalid(format!("`{key}` (a string) is required")))
}

fn opt_text<'a>(args: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    args.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn uint(args: &Map<String, Value>, key: &str, default: u64, max: u64) -> Result<u64, ToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v.as_u64().filter(|n| *n <= max).ok_or_else(|| {
            ToolError::invalid(format!("`{key}` must be a whole number up to {max}"))
        }),
    }
}

pub use nexus_sdk::mesh::item_json as message_json;

/// Runs tool `name` with `args` on `client`, after checking the arguments
/// against the tool's schema.
pub async fn call(
    client: &Client,
    name: &str,
    args: &Map<String, Value>,
) -> Result<Value, ToolError> {
    if let Some(spec) = specs().into_iter().find(|s| s.name == name) {
        nexus_core::schema::validate(&spec.schema, &Value::Object(args.clone()))
            .map_err(|why| ToolError::invalid(format!("arguments of `{name}`: {why}")))?;
    }
    let mesh_name = opt_text(args, "mesh");
    match name {
        "mesh_peers" => {
            let peers = client.mesh()?.peers(mesh_name).await?;
            let rows: Vec<Value> = peers
                .iter()
                .map(|p| json!({"name": p.name, "id": p.peer, "online": p.online, "status": p.status, "summary": p.summary}))
                .collect();
            Ok(json!({ "peers": rows }))
        }
        "mesh_send" => {
            let id = client
                .mesh()?
                .send(mesh_name, text(args, "to")?, text(args, "text")?)
                .await?;
            Ok(json!({ "sent": id }))
        }
        "mesh_inbox" => {
            let cursor = uint(args, "cursor", 0, i64::MAX as u64)? as i64;
            let limit = uint(args, "limit", 100, 500)? as usize;
            let mesh = client.mesh()?;
            let items = mesh.inbox(mesh_name).await?;
            // Notices have no id: said once, so they are acknowledged here.
            let messages: Vec<Value> = items
                .iter()
                .filter(|i| i.seq.is_none_or(|s| s > cursor))
                .take(limit)
                .map(message_json)
                .collect();
            let next = messages
                .iter()
                .filter_map(|m| m["id"].as_i64())
                .max()
                .unwrap_or(cursor);
            Ok(json!({ "messages": messages, "next_cursor": next }))
        }
        "mesh_ack" => {
            let ids: Vec<i64> = args
                .get("ids")
                .and_then(Value::as_array)
                .ok_or_else(|| ToolError::invalid("`ids` (a list of message ids) is required"))?
                .iter()
                .map(|v| {
                    v.as_i64()
                        .ok_or_else(|| ToolError::invalid("ids are whole numbers"))
                })
                .collect::<Result<_, _>>()?;
            if ids.is_empty() || ids.len() > 1000 {
                return Err(ToolError::invalid("ack 1 to 1000 ids at a time"));
            }
            client.mesh()?.mark_read(mesh_name, &ids).await?;
            Ok(json!({ "acked": ids.len() }))
        }
        "mesh_topic_send" => {
            let id = client
                .mesh()?
                .publish(mesh_name, text(args, "topic")?, text(args, "text")?)
                .await?;
            Ok(json!({ "sent": id }))
        }
        "mesh_topic_history" => {
            let before = match args.get("before") {
                None | Some(Value::Null) => None,
                Some(_) => Some(uint(args, "before", 0, u64::MAX)?),
            };
            let limit = uint(args, "limit", 50, 200)? as u32;
            let entries = client
                .mesh()?
                .history(mesh_name, text(args, "topic")?, before, limit)
                .await?;
            let rows: Vec<Value> = entries
                .iter()
                .map(|e| {
                    let mut m = message_json(&InboxItem {
                        seq: None,
                        message: e.message.clone(),
                    });
                    m["id"] = json!(e.seq);
                    m
                })
                .collect();
            Ok(json!({ "messages": rows }))
        }
        "set_status" => {
            client
                .mesh()?
                .set_status(mesh_name, text(args, "text")?)
                .await?;
            Ok(json!({ "ok": true }))
        }
        "set_summary" => {
            client
                .mesh()?
                .set_summary(mesh_name, text(args, "text")?)
                .await?;
            Ok(json!({ "ok": true }))
        }
        "ask" => {
            let options = AskOptions {
                category: opt_text(args, "category").map(str::to_string),
                system: opt_text(args, "system").map(str::to_string),
                ..AskOptions::default()
            };
            let a = client.ask(text(args, "prompt")?, &options).await?;
            Ok(json!({
                "text": a.reply.text,
                "model": a.reply.model,
                "tier": a.tier,
                "category": a.category,
                "escalations": a.escalations,
                "cost_usd": a.total_cost.to_string(),
            }))
        }
        "chat" => {
            let options = ChatOptions {
                system: opt_text(args, "system").map(str::to_string),
                max_tokens: match args.get("max_tokens") {
                    None | Some(Value::Null) => None,
                    Some(_) => Some(uint(args, "max_tokens", 0, u32::MAX as u64)? as u32),
                },
                ..ChatOptions::default()
            };
            let r = client
                .chat(
                    opt_text(args, "model").unwrap_or(""),
                    text(args, "prompt")?,
                    &options,
                )
                .await?;
            Ok(json!({
                "text": r.text,
                "model": r.model,
                "cost_usd": r.cost.map(|c| c.to_string()),
                "input_tokens": r.usage.input_tokens,
                "output_tokens": r.usage.output_tokens,
            }))
        }
        other => Err(ToolError {
            code: ErrorCode::InvalidRequest.as_str(),
            message: format!("no tool `{other}`; tools/list names them"),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_is_an_object_schema_and_names_are_unique() {
        let specs = specs();
        let mut names: Vec<&str> = specs.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), specs.len());
        for s in &specs {
            assert_eq!(s.schema["type"], "object", "{}", s.name);
            for r in s.schema["required"].as_array().unwrap() {
                assert!(
                    s.schema["properties"].get(r.as_str().unwrap()).is_some(),
                    "{}",
                    s.name
                );
            }
        }
        let codes = error_schema()["properties"]["error"]["properties"]["code"]["enum"].clone();
        assert!(codes.as_array().unwrap().iter().any(|c| c == "mesh"));
    }
}

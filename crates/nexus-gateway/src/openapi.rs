//! The OpenAPI 3.1 document of `/api/v1`, built from the same route table
//! the router uses ([`ROUTES`]), served at `/api/v1/openapi.json`.

use serde_json::{json, Map, Value};

/// One documented route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// `get`, `post`, `patch`.
    pub method: &'static str,
    /// The path, axum style (`{name}`).
    pub path: &'static str,
    /// The scope it needs (`None`: no key).
    pub scope: Option<&'static str>,
    /// What it does.
    pub summary: &'static str,
    /// The request body's schema name, if any.
    pub body: Option<&'static str>,
    /// The success status.
    pub ok: u16,
    /// The success response's schema name (`sse` for a stream).
    pub response: &'static str,
}

/// Every route of `/api/v1`.
pub const ROUTES: &[Route] = &[
    Route {
        method: "get",
        path: "/api/v1/health",
        scope: None,
        summary: "Whether the gateway answers",
        body: None,
        ok: 200,
        response: "Health",
    },
    Route {
        method: "get",
        path: "/api/v1/peers",
        scope: Some("read"),
        summary: "The mesh's members",
        body: None,
        ok: 200,
        response: "Peers",
    },
    Route {
        method: "get",
        path: "/api/v1/topics",
        scope: Some("read"),
        summary: "Topics with unread counts",
        body: None,
        ok: 200,
        response: "Topics",
    },
    Route {
        method: "get",
        path: "/api/v1/topics/{name}/messages",
        scope: Some("read"),
        summary: "A page of a topic's history, newest first",
        body: None,
        ok: 200,
        response: "Messages",
    },
    Route {
        method: "post",
        path: "/api/v1/topics/{name}/messages",
        scope: Some("send"),
        summary: "Publish to a topic",
        body: Some("Text"),
        ok: 201,
        response: "Sent",
    },
    Route {
        method: "patch",
        path: "/api/v1/topics/{name}/read",
        scope: Some("read"),
        summary: "Mark a topic's stored messages read",
        body: None,
        ok: 200,
        response: "Marked",
    },
    Route {
        method: "get",
        path: "/api/v1/topics/{name}/stream",
        scope: Some("read"),
        summary: "A topic's messages as server-sent events (resume with Last-Event-ID)",
        body: None,
        ok: 200,
        response: "sse",
    },
    Route {
        method: "get",
        path: "/api/v1/messages",
        scope: Some("read"),
        summary: "Direct messages not yet read",
        body: None,
        ok: 200,
        response: "Messages",
    },
    Route {
        method: "post",
        path: "/api/v1/messages",
        scope: Some("send"),
        summary: "Send a direct message",
        body: Some("Direct"),
        ok: 201,
        response: "Sent",
    },
    Route {
        method: "get",
        path: "/api/v1/events",
        scope: Some("read"),
        summary: "Everything stored, as server-sent events (resume with Last-Event-ID)",
        body: None,
        ok: 200,
        response: "sse",
    },
    Route {
        method: "post",
        path: "/api/v1/chat",
        scope: Some("admin"),
        summary: "One model call",
        body: Some("Prompt"),
        ok: 200,
        response: "Chat",
    },
    Route {
        method: "post",
        path: "/api/v1/ask",
        scope: Some("admin"),
        summary: "Ask through the model hierarchy",
        body: Some("Prompt"),
        ok: 200,
        response: "Ask",
    },
    Route {
        method: "get",
        path: "/api/v1/openapi.json",
        scope: None,
        summary: "This document",
        body: None,
        ok: 200,
        response: "Object",
    },
];

fn schemas() -> Value {
    let codes: Vec<&str> = nexus_sdk::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    let message = json!({"type": "object", "required": ["id", "kind", "from", "text"], "properties": {
        "id": {"type": ["integer", "null"]},
        "kind": {"type": "string", "enum": ["dm", "topic", "notice"]},
        "from": {"type": "string"},
        "from_id": {"type": ["string", "null"]},
        "topic": {"type": ["string", "null"]},
        "text": {"type": "string"},
        "bridged": {"type": "object", "required": ["origin_mesh", "origin_from", "origin_id", "hops"], "properties": {
            "origin_mesh": {"type": "string"},
            "origin_from": {"type": "string"},
            "origin_id": {"type": "string"},
            "hops": {"type": "integer", "minimum": 1}
        }}
    }});
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string", "enum": codes},
                "message": {"type": "string"},
                "retry_after": {"type": "integer", "minimum": 0}
            }}}},
        "Health": {"type": "object", "required": ["ok", "version"], "properties": {"ok": {"type": "boolean"}, "version": {"type": "string"}}},
        "Peers": {"type": "object", "required": ["peers"], "properties": {"peers": {"type": "array", "items": {"type": "object", "required": ["id", "name", "online"], "properties": {
            "id": {"type": "string"}, "name": {"type": "string"}, "online": {"type": "boolean"},
            "status": {"type": "string"}, "summary": {"type": "string"}, "type": {"type": "string"},
            "caps": {"type": "array", "items": {"type": "string"}}, "blocked": {"type": "boolean"}}}}}},
        "Topics": {"type": "object", "required": ["topics"], "properties": {
            "topics": {"type": "array", "items": {"type": "object", "required": ["name", "unread"], "properties": {"name": {"type": "string"}, "unread": {"type": "integer"}}}},
            "direct_unread": {"type": "integer"}}},
        "Message": message,
        "Messages": {"type": "object", "required": ["messages"], "properties": {"messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}}}},
        "Text": {"type": "object", "required": ["text"], "additionalProperties": false, "properties": {"text": {"type": "string", "minLength": 1}}},
        "Direct": {"type": "object", "required": ["to", "text"], "additionalProperties": false, "properties": {"to": {"type": "string", "minLength": 1}, "text": {"type": "string", "minLength": 1}}},
        "Sent": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}},
        "Marked": {"type": "object", "required": ["marked"], "properties": {"marked": {"type": "integer"}}},
        "Prompt": {"type": "object", "required": ["prompt"], "additionalProperties": false, "properties": {
            "prompt": {"type": "string"}, "model": {"type": "string"}, "system": {"type": "string"}}},
        "Chat": {"type": "object", "required": ["text", "model"], "properties": {"text": {"type": "string"}, "model": {"type": "string"}}},
        "Ask": {"type": "object", "required": ["text", "tier"], "properties": {"text": {"type": "string"}, "tier": {"type": "integer"}}},
        "Whoami": {"type": "object", "required": ["id", "mesh", "scopes"], "properties": {
            "id": {"type": "string"}, "mesh": {"type": "string"},
            "scopes": {"type": "array", "items": {"type": "string", "enum": ["read", "send", "admin"]}},
            "topics": {"type": "array", "items": {"type": "string"}}, "label": {"type": "string"},
            "expires_ms": {"type": "integer"}}},
        "AskRun": {"type": "object", "required": ["prompt"], "additionalProperties": false, "properties": {
            "prompt": {"type": "string"}, "system": {"type": "string"},
            "category": {"type": "string", "enum": ["heartbeat", "daily", "planning", "coding", "review"]}}},
        "Stopped": {"type": "object", "required": ["stopped"], "properties": {"stopped": {"type": "boolean"}}},
        "Object": {"type": "object"}
    })
}

fn error_response(what: &str) -> Value {
    json!({"description": what, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The document.
pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for r in ROUTES {
        let mut op = json!({
            "summary": r.summary,
            "operationId": format!("{}_{}", r.method, r.path.trim_start_matches("/api/v1/").replace(['/', '{', '}', '.'], "_")),
            "responses": {}
        });
        let ok = if r.response == "bytes" {
            json!({"description": "the file's bytes, or {\"entries\": [...]} for a directory", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}, "application/json": {"schema": {"type": "object", "properties": {"entries": {"type": "array", "items": {"type": "string"}}}}}}})
        } else if r.response == "none" {
            json!({"description": "done"})
        } else if r.response == "ws" {
            json!({"description": "switching to the WebSocket protocol: one JSON text frame per message"})
        } else if r.response == "sse" {
            json!({"description": "server-sent events", "content": {"text/event-stream": {"schema": {"type": "string"}}}})
        } else {
            json!({"description": "done", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", r.response)}}}})
        };
        op["responses"][r.ok.to_string()] = ok;
        for (code, what) in [
            ("400", "a bad request"),
            ("404", "not found"),
            ("413", "too large"),
            ("500", "an internal failure"),
            ("502", "an upstream failure"),
        ] {
            op["responses"][code] = error_response(what);
        }
        if let Some(scope) = r.scope {
            op["security"] = json!([{"bearer": []}]);
            op["description"] = json!(if scope == "any" {
                "Needs a valid API key.".to_string()
            } else {
                format!("Needs an API key with the `{scope}` scope.")
            });
            op["responses"]["401"] = error_response("no valid API key");
            op["responses"]["403"] = error_response("the key lacks the scope or topic");
            op["responses"]["409"] = error_response("the mesh refused");
        }
        if r.path.contains("{path}") {
            op["parameters"] = json!([{"name": "path", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 1024}}]);
        }
        if r.path.contains("{run}") {
            op["parameters"] = json!([{"name": "run", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 64}}]);
        }
        if r.path.contains("{name}") {
            op["parameters"] = json!([{"name": "name", "in": "path", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 128}}]);
        }
        if r.path.ends_with("/messages") && r.method == "get" && r.path.contains("topics") {
            op["parameters"].as_array_mut().into_iter().for_each(|a| {
                a.push(json!({"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 0}}));
                a.push(json!({"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}}));
            });
        }
        if r.body == Some("bytes") {
            op["requestBody"] = json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}});
        } else if let Some(b) = r.body {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{b}")}}}});
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Nexus gateway", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Nexus over local HTTP: the mesh, streams and the models. See docs/GATEWAY.md."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API key from `nexus apikey create`"}}
        }
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn every_route_is_documented_once_with_its_schemas() {
        let d = super::document();
        let mut n = 0;
        for (_, ops) in d["paths"].as_object().unwrap() {
            n += ops.as_object().unwrap().len();
        }
        assert_eq!(n, super::ROUTES.len());
        let text = d.to_string();
        for cap in regex_refs(&text) {
            assert!(
                d["components"]["schemas"].get(&cap).is_some(),
                "missing schema {cap}"
            );
        }
    }

    fn regex_refs(text: &str) -> Vec<String> {
        text.split("#/components/schemas/")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().to_string())
            .collect()
    }
}

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
        method: "patch",
        path: "/api/v1/messages/read",
        scope: Some("read"),
        summary: "Marks the stored direct messages read (from one sender with ?from=NAME, or all)",
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
    Route {
        method: "get",
        path: "/api/v1/status",
        scope: Some("admin"),
        summary: "The daemon's status: meshes, services, heartbeat, extensions",
        body: None,
        ok: 200,
        response: "Object",
    },
    Route {
        method: "get",
        path: "/api/v1/providers",
        scope: Some("admin"),
        summary: "Providers, where their credentials come from, and OAuth state (never a secret)",
        body: None,
        ok: 200,
        response: "Providers",
    },
    Route {
        method: "put",
        path: "/api/v1/providers/{name}/key",
        scope: Some("admin"),
        summary: "Stores a provider's API key in the vault",
        body: Some("KeyBody"),
        ok: 200,
        response: "Providers",
    },
    Route {
        method: "delete",
        path: "/api/v1/providers/{name}/key",
        scope: Some("admin"),
        summary: "Removes a provider's API key from the vault",
        body: None,
        ok: 200,
        response: "Providers",
    },
    Route {
        method: "put",
        path: "/api/v1/providers/{name}/oauth",
        scope: Some("admin"),
        summary: "Sets a provider's OAuth client (id, secret, endpoints)",
        body: Some("OAuthClient"),
        ok: 200,
        response: "Object",
    },
    Route {
        method: "delete",
        path: "/api/v1/providers/{name}/oauth",
        scope: Some("admin"),
        summary: "Signs out of a provider's OAuth",
        body: None,
        ok: 200,
        response: "Object",
    },
    Route {
        method: "post",
        path: "/api/v1/providers/{name}/oauth/authorize",
        scope: Some("admin"),
        summary: "Starts an OAuth sign-in: the URL to open",
        body: None,
        ok: 200,
        response: "Object",
    },
    Route {
        method: "post",
        path: "/api/v1/providers/{name}/oauth/refresh",
        scope: Some("admin"),
        summary: "Refreshes a provider's OAuth token now",
        body: None,
        ok: 200,
        response: "Object",
    },
    Route {
        method: "get",
        path: "/api/v1/hierarchy",
        scope: Some("admin"),
        summary: "The model hierarchy, presets, escalation policy and the models to pick from",
        body: None,
        ok: 200,
        response: "Hierarchy",
    },
    Route {
        method: "post",
        path: "/api/v1/hierarchy/preset",
        scope: Some("admin"),
        summary: "Applies a preset",
        body: Some("PresetBody"),
        ok: 200,
        response: "Hierarchy",
    },
    Route {
        method: "put",
        path: "/api/v1/hierarchy/policy",
        scope: Some("admin"),
        summary: "Changes the escalation policy and budgets",
        body: Some("PolicyBody"),
        ok: 200,
        response: "Hierarchy",
    },
    Route {
        method: "get",
        path: "/api/v1/hierarchy/stats",
        scope: Some("admin"),
        summary: "Escalation and spend statistics of the last days",
        body: None,
        ok: 200,
        response: "Object",
    },
    Route {
        method: "put",
        path: "/api/v1/hierarchy/categories/{name}",
        scope: Some("admin"),
        summary: "Edits one category's tiers",
        body: Some("EditsBody"),
        ok: 200,
        response: "Hierarchy",
    },
    Route {
        method: "get",
        path: "/api/v1/services",
        scope: Some("admin"),
        summary: "Supervised services and their state",
        body: None,
        ok: 200,
        response: "Object",
    },
    Route {
        method: "post",
        path: "/api/v1/services/{name}/restart",
        scope: Some("admin"),
        summary: "Restarts a service",
        body: None,
        ok: 200,
        response: "Object",
    },
    Route {
        method: "post",
        path: "/api/v1/services/{name}/start",
        scope: Some("admin"),
        summary: "Starts a service",
        body: None,
        ok: 200,
        response: "Object",
    },
    Route {
        method: "post",
        path: "/api/v1/services/{name}/stop",
        scope: Some("admin"),
        summary: "Stops a service",
        body: None,
        ok: 200,
        response: "Object",
    },
    Route {
        method: "get",
        path: "/api/v1/logs",
        scope: Some("admin"),
        summary: "Every log, filtered by level, source, text and time",
        body: None,
        ok: 200,
        response: "Logs",
    },
    Route {
        method: "delete",
        path: "/api/v1/logs",
        scope: Some("admin"),
        summary: "Removes every log file",
        body: None,
        ok: 200,
        response: "Object",
    },
    Route {
        method: "get",
        path: "/api/v1/heartbeat",
        scope: Some("admin"),
        summary: "The heartbeat's schedule and recent results",
        body: None,
        ok: 200,
        response: "Object",
    },
    Route {
        method: "put",
        path: "/api/v1/heartbeat",
        scope: Some("admin"),
        summary: "Turns the heartbeat on or off and sets its interval",
        body: Some("HeartbeatBody"),
        ok: 200,
        response: "Object",
    },
    Route {
        method: "post",
        path: "/api/v1/heartbeat/run",
        scope: Some("admin"),
        summary: "Runs the heartbeat now",
        body: None,
        ok: 200,
        response: "Object",
    },
    Route {
        method: "get",
        path: "/api/v1/extensions",
        scope: Some("admin"),
        summary: "Installed extensions, their permissions and state",
        body: None,
        ok: 200,
        response: "Object",
    },
    Route {
        method: "get",
        path: "/api/v1/approvals",
        scope: Some("admin"),
        summary: "Questions extensions are waiting on",
        body: None,
        ok: 200,
        response: "Object",
    },
    Route {
        method: "post",
        path: "/api/v1/approvals/{name}",
        scope: Some("admin"),
        summary: "Answers an extension's question (by its number)",
        body: Some("AnswerBody"),
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
    let mut v = json!({
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
    });
    if let (Some(all), Value::Object(more)) = (v.as_object_mut(), settings_schemas()) {
        all.extend(more);
    }
    v
}

/// The settings and daemon routes' schemas.
fn settings_schemas() -> Value {
    json!({
        "Providers": {"type": "object", "required": ["providers"], "properties": {
            "providers": {"type": "array", "items": {"type": "object", "required": ["name", "ready", "credential"], "properties": {
                "name": {"type": "string"}, "kind": {"type": "string"}, "ready": {"type": "boolean"},
                "credential": {"type": "string"}, "key_in_vault": {"type": "boolean"},
                "base_url": {"type": "string"}, "default_model": {"type": "string"},
                "oauth": {"type": ["object", "null"]}, "oauth_flow": {"type": ["string", "null"]}}}},
            "vault": {"type": ["string", "null"]}}},
        "KeyBody": {"type": "object", "required": ["key"], "additionalProperties": false, "properties": {"key": {"type": "string", "minLength": 1, "maxLength": 4096}}},
        "OAuthClient": {"type": "object", "required": ["client_id"], "additionalProperties": false, "properties": {
            "client_id": {"type": "string", "minLength": 1}, "client_secret": {"type": "string"},
            "auth_url": {"type": "string"}, "token_url": {"type": "string"}, "revoke_url": {"type": "string"},
            "scopes": {"type": "string"}}},
        "Hierarchy": {"type": "object", "required": ["preset", "categories", "presets", "policy", "models"], "properties": {
            "preset": {"type": "string"}, "saved": {"type": "boolean"}, "problem": {"type": ["string", "null"]},
            "categories": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "object", "properties": {
                "model": {"type": "string"}, "max_tokens": {"type": ["integer", "null"]}, "max_cost": {}}}}},
            "presets": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "description": {"type": "string"}}}},
            "policy": {"type": "object"},
            "models": {"type": "array", "items": {"type": "object", "properties": {"id": {"type": "string"}, "ready": {"type": "boolean"}}}}}},
        "PresetBody": {"type": "object", "required": ["name"], "additionalProperties": false, "properties": {"name": {"type": "string", "minLength": 1}}},
        "EditsBody": {"type": "object", "required": ["edits"], "additionalProperties": false, "properties": {"edits": {"type": "array", "minItems": 1, "maxItems": 32, "items": {"type": "string"}}}},
        "PolicyBody": {"type": "object", "required": ["assignments"], "additionalProperties": false, "properties": {"assignments": {"type": "array", "maxItems": 32, "items": {"type": "string"}}}},
        "HeartbeatBody": {"type": "object", "required": ["enabled"], "additionalProperties": false, "properties": {"enabled": {"type": "boolean"}, "interval": {"type": "string"}}},
        "AnswerBody": {"type": "object", "required": ["answer"], "additionalProperties": false, "properties": {"answer": {"type": "string", "enum": ["allow", "allow_always", "deny", "deny_always"]}}},
        "Logs": {"type": "object", "required": ["lines", "sources"], "properties": {
            "lines": {"type": "array", "items": {"type": "object", "required": ["ts_ms", "level", "source", "msg"], "properties": {
                "ts_ms": {"type": "integer"}, "level": {"type": "string"}, "source": {"type": "string"}, "msg": {"type": "string"}}}},
            "truncated": {"type": "boolean"}, "sources": {"type": "array", "items": {"type": "string"}}, "newest_ms": {"type": "integer"}}}
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
        if r.path == "/api/v1/logs" && r.method == "get" {
            op["parameters"] = json!([
                {"name": "level", "in": "query", "schema": {"type": "string", "enum": ["debug", "info", "warn", "error"]}},
                {"name": "source", "in": "query", "schema": {"type": "string"}},
                {"name": "grep", "in": "query", "schema": {"type": "string"}},
                {"name": "since_ms", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 5000}}]);
        }
        if r.path == "/api/v1/messages/read" {
            op["parameters"] = json!([{"name": "from", "in": "query", "schema": {"type": "string", "maxLength": 128}}]);
        }
        if r.path.ends_with("/stats") {
            op["parameters"] = json!([{"name": "days", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 366}}]);
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

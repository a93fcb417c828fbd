//! `nexus mcp serve`: Nexus as a stdio MCP server (rmcp), for Claude Code
//! and any MCP client. It speaks every protocol version rmcp knows: the
//! `initialize` handshake up to 2025-11-25, and 2026-07-28's per-request
//! lifecycle.
//!
//! New mesh messages are pushed as they are stored in the local inbox: as
//! `notifications/claude/channel` (the experimental capability Claude Code
//! listens to) and as `notifications/resources/updated` of
//! `nexus://mesh/inbox` for clients that subscribed. Pushing is a
//! courtesy: only `mesh_ack` settles a message, so a push that was lost (or
//! a session killed before its ack) costs nothing: `mesh_inbox` returns the
//! message again.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_sdk::Client;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CustomNotification, Implementation,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ServerCapabilities,
    ServerConfig, ServerNotification, SubscribeRequestParams, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, Peer, RoleServer, ServerHandler, ServiceExt as _};
use serde_json::{json, Value};

use crate::tools;

/// The resource that changes when a message arrives.
pub const INBOX_URI: &str = "nexus://mesh/inbox";

/// The server: the SDK client and what was pushed.
#[derive(Clone)]
pub struct NexusServer {
    client: Client,
    mode: nexus_core::policy::ApprovalMode,
    tools: Arc<Vec<Tool>>,
    push: Arc<Push>,
}

#[derive(Default)]
struct Push {
    /// Inbox ids already pushed this session.
    sent: Mutex<BTreeSet<i64>>,
    /// Whether the client subscribed to the inbox resource.
    subscribed: AtomicBool,
}

fn rmcp_tools() -> Vec<Tool> {
    tools::specs()
        .into_iter()
        .map(|s| {
            let schema = match s.schema {
                Value::Object(m) => m,
                _ => serde_json::Map::new(),
            };
            Tool::new(s.name, s.description, Arc::new(schema))
        })
        .collect()
}

impl NexusServer {
    /// A server over `client`, its tools bounded by `mode` and the policy.
    pub fn new(client: Client, mode: nexus_core::policy::ApprovalMode) -> NexusServer {
        NexusServer {
            client,
            mode,
            tools: Arc::new(rmcp_tools()),
            push: Arc::new(Push::default()),
        }
    }
}

impl ServerHandler for NexusServer {
    fn get_info(&self) -> ServerConfig {
        let mut caps = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_resources_subscribe()
            .build();
        let mut experimental = std::collections::BTreeMap::new();
        experimental.insert("claude/channel".to_string(), serde_json::Map::new());
        caps.experimental = Some(experimental);
        let mut info = ServerConfig::new(caps).with_instructions(
            "Nexus: the agent mesh (peers, direct and topic messages, end-to-end encrypted) and \
             the model hierarchy. mesh_inbox returns unacknowledged messages with ids; call \
             mesh_ack with the ids once handled, or they come back. New messages are also pushed \
             as channel notifications.",
        );
        info.server_info = Implementation::new("nexus", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(self.tools.to_vec()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if !self.tools.iter().any(|t| t.name == request.name) {
            return Err(McpError::invalid_params(
                format!("no tool `{}`; tools/list names them", request.name),
                None,
            ));
        }
        let args = request.arguments.unwrap_or_default();
        let outcome = match tools::allowed(&self.client, self.mode, &request.name, &args) {
            Ok(()) => tools::call(&self.client, &request.name, &args).await,
            Err(e) => Err(e),
        };
        let result = match outcome {
            Ok(v) => CallToolResult::structured(v),
            Err(e) => {
                tracing::info!(tool = %request.name, code = e.code, "tool failed: {}", e.message);
                CallToolResult::structured_error(e.to_json())
            }
        };
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let mut r = Resource::new(INBOX_URI, "mesh inbox")
            .with_description("Mesh messages received and not yet acknowledged (JSON).");
        r.mime_type = Some("application/json".into());
        Ok(ListResourcesResult::with_all_items(vec![r]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        if request.uri != INBOX_URI {
            return Err(McpError::resource_not_found(
                format!("no resource `{}`", request.uri),
                None,
            ));
        }
        let v = tools::call(&self.client, "mesh_inbox", &serde_json::Map::new())
            .await
            .unwrap_or_else(|e| e.to_json());
        Ok(ReadResourceResult::new(vec![ResourceContents::text(v.to_string(), INBOX_URI)]).into())
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), McpError> {
        if request.uri != INBOX_URI {
            return Err(McpError::resource_not_found(
                format!("no resource `{}`", request.uri),
                None,
            ));
        }
        self.push.subscribed.store(true, Ordering::Relaxed);
        Ok(())
    }
}

/// Pushes messages as they are stored, until the session ends.
async fn push_loop(client: Client, push: Arc<Push>, peer: Peer<RoleServer>) {
    let home = nexus_core::NexusHome::at(client.home());
    let mut seen = 0u64;
    loop {
        // Wait for the daemon's stored-message counter to move; without a
        // daemon, look every 5 s.
        match nexus_sdk::daemon::call_with(
            &home,
            "mesh.wait",
            json!({"seen": seen, "timeout_ms": 25_000}),
            Duration::from_secs(40),
        )
        .await
        {
            Ok(v) => seen = v["stored"].as_u64().unwrap_or(seen),
            Err(_) => tokio::time::sleep(Duration::from_secs(5)).await,
        }
        let Ok(page) = tools::call(&client, "mesh_inbox", &serde_json::Map::new()).await else {
            continue;
        };
        for m in page["messages"].as_array().into_iter().flatten() {
            let Some(id) = m["id"].as_i64() else { continue };
            if !push
                .sent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id)
            {
                continue;
            }
            let content = match m["topic"].as_str() {
                Some(t) => format!(
                    "[#{t}] {}: {}",
                    m["from"].as_str().unwrap_or("?"),
                    m["text"].as_str().unwrap_or("")
                ),
                None => format!(
                    "{}: {}",
                    m["from"].as_str().unwrap_or("?"),
                    m["text"].as_str().unwrap_or("")
                ),
            };
            let meta = json!({
                "id": id.to_string(),
                "kind": m["kind"],
                "from": m["from"],
                "topic": m["topic"],
            });
            let note = CustomNotification::new(
                "notifications/claude/channel",
                Some(json!({"content": content, "meta": meta})),
            );
            if peer
                .send_notification(ServerNotification::CustomNotification(note))
                .await
                .is_err()
            {
                return;
            }
        }
        if push.subscribed.load(Ordering::Relaxed) {
            let _ = peer
                .notify_resource_updated(rmcp::model::ResourceUpdatedNotificationParam::new(
                    INBOX_URI,
                ))
                .await;
        }
    }
}

/// Serves MCP on stdin/stdout until the client goes away (stdin closes).
pub async fn serve_stdio(
    client: Client,
    mode: nexus_core::policy::ApprovalMode,
) -> Result<(), String> {
    let server = NexusServer::new(client.clone(), mode);
    let push = server.push.clone();
    let running = server
        .serve((tokio::io::stdin(), tokio::io::stdout()))
        .await
        .map_err(|e| format!("the MCP session did not start: {e}"))?;
    let pusher = tokio::spawn(push_loop(client, push, running.peer().clone()));
    let end = running.waiting().await;
    pusher.abort();
    tracing::info!("MCP session ended: {end:?}");
    Ok(())
}

//! The gateway: Nexus over local HTTP for browsers, scripts and humans,
//! `axum` over the SDK, holding no business logic of its own. nexusd runs
//! it as a service on `127.0.0.1:18789` (`[gateway]` in `config.toml`).
//!
//! - [`keys`]: API keys (hash + prefix index, scopes, topics, expiry);
//! - [`guard`]: `Host`/`Origin` checks and the bearer key on every route;
//! - [`routes`]: REST under `/api/v1`;
//! - [`stream`]: server-sent events with `Last-Event-ID` replay;
//! - [`error`]: the one error schema.
//!
//! The broker still sees only ciphertext: the gateway runs on the user's
//! machine, holds the user's keys, and serves plaintext to local callers.

pub mod control;
pub mod error;
pub mod files;
pub mod guard;
pub mod keys;
pub mod openapi;
pub mod routes;
pub mod runs;
pub mod settings;
pub mod stream;
pub mod ui;
pub mod ws;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, patch, post, put};
use axum::Router;
use nexus_core::{Clock, NexusHome, SystemClock};

/// The default address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:18789";
/// The default largest request body, bytes.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// Capability flags: what the gateway may expose beyond the mesh. All off
/// unless `config.toml` turns them on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The extension store (`/api/v1/store`).
    pub extensions: bool,
    /// MCP servers.
    pub mcp: bool,
    /// Running commands.
    pub exec: bool,
    /// Files under the workspace root.
    pub files: bool,
}

/// How the gateway runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The port `Host` headers must name (the listening port).
    pub port: u16,
    /// More `Host` values to accept (`nexus.lan:18789`).
    pub allowed_hosts: Vec<String>,
    /// More `Origin` values to accept (`https://app.example`).
    pub allowed_origins: Vec<String>,
    /// The largest request body.
    pub max_body: usize,
    /// Capability flags.
    pub capabilities: Capabilities,
    /// Whether it runs at all.
    pub enabled: bool,
    /// The root of `/api/v1/files` (the `files` capability).
    pub workspace: std::path::PathBuf,
    /// Served on the daemon's control socket, which SSH tunnels reach from
    /// any local port: a loopback `Host` on any port is this gateway (a
    /// rebinding name still is not), and an `Origin` must be that host.
    pub any_loopback_port: bool,
}

impl Default for Config {
    fn default() -> Config {
        let listen: SocketAddr = DEFAULT_LISTEN
            .parse()
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 18789)));
        Config {
            listen,
            port: listen.port(),
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            max_body: DEFAULT_MAX_BODY,
            capabilities: Capabilities::default(),
            enabled: true,
            workspace: std::path::PathBuf::from("workspace"),
            any_loopback_port: false,
        }
    }
}

fn strings(t: &toml::Table, k: &str) -> Vec<String> {
    t.get(k)
        .and_then(toml::Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Config {
    /// `[gateway]` of `home`'s `config.toml`: `enabled`, `listen`,
    /// `allowed_hosts`, `allowed_origins`, `max_body`, and
    /// `[gateway.capabilities]` `extensions`, `mcp`, `exec`, `files`. A
    /// non-loopback `listen` needs `allow_remote = true`.
    pub fn load(home: &NexusHome) -> Result<Config, String> {
        let mut c = Config {
            workspace: home.join("workspace"),
            ..Config::default()
        };
        let config = nexus_core::Config::load(home).map_err(|e| e.to_string())?;
        let Some(t) = config.other.get("gateway").and_then(toml::Value::as_table) else {
            return Ok(c);
        };
        if let Some(e) = t.get("enabled").and_then(toml::Value::as_bool) {
            c.enabled = e;
        }
        if let Some(l) = t.get("listen").and_then(toml::Value::as_str) {
            c.listen = l.parse().map_err(|_| {
                format!("[gateway] listen = {l:?} is not an address like 127.0.0.1:18789")
            })?;
            c.port = c.listen.port();
        }
        let remote = t
            .get("allow_remote")
            .and_then(toml::Value::as_bool)
            .unwrap_or(false);
        if !c.listen.ip().is_loopback() && !remote {
            return Err(format!(
                "[gateway] listen = {} is not loopback; the gateway serves plaintext, so this needs allow_remote = true",
                c.listen
            ));
        }
        if let Some(w) = t.get("workspace").and_then(toml::Value::as_str) {
            c.workspace = std::path::PathBuf::from(w);
        }
        c.allowed_hosts = strings(t, "allowed_hosts");
        c.allowed_origins = strings(t, "allowed_origins");
        if let Some(n) = t.get("max_body").and_then(toml::Value::as_integer) {
            c.max_body = usize::try_from(n)
                .unwrap_or(DEFAULT_MAX_BODY)
                .clamp(1024, 64 << 20);
        }
        if let Some(caps) = t.get("capabilities").and_then(toml::Value::as_table) {
            let on = |k: &str| caps.get(k).and_then(toml::Value::as_bool).unwrap_or(false);
            c.capabilities = Capabilities {
                extensions: on("extensions"),
                mcp: on("mcp"),
                exec: on("exec"),
                files: on("files"),
            };
        }
        Ok(c)
    }
}

/// What every handler shares.
pub struct Shared {
    /// The SDK.
    pub client: nexus_sdk::Client,
    /// The API keys.
    pub keys: keys::KeyStore,
    /// The configuration.
    pub config: Config,
    clock: Arc<dyn Clock>,
    /// People using API keys: when each key was last seen, and its open
    /// streams (shown in `peers` as humans).
    sessions: std::sync::Mutex<std::collections::BTreeMap<String, Session>>,
    /// Streamed `ask` runs.
    pub runs: runs::Runs,
}

/// What the gateway knows of one key's use.
#[derive(Debug, Clone, Default)]
struct Session {
    mesh: String,
    name: String,
    last_ms: u64,
    streams: u32,
}

/// How long a key counts as online after its last request.
pub const HUMAN_ONLINE_MS: u64 = 60_000;

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// Over `client`, with the keys of `home`.
    pub fn new(client: nexus_sdk::Client, home: &NexusHome, config: Config) -> Arc<Shared> {
        Shared::with_clock(client, home, config, Arc::new(SystemClock))
    }

    /// [`Shared::new`] with a clock (tests).
    pub fn with_clock(
        client: nexus_sdk::Client,
        home: &NexusHome,
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            client,
            keys: keys::KeyStore::at(key_file(home)),
            config,
            clock,
            sessions: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            runs: runs::Runs::default(),
        })
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Session>> {
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes a request by `key`.
    pub fn seen(&self, key: &keys::Key) {
        let now = self.now_ms();
        let mut s = self.sessions();
        let e = s.entry(key.id.clone()).or_default();
        e.mesh.clone_from(&key.mesh);
        e.name = if key.label.is_empty() {
            format!("api key {}", key.id)
        } else {
            key.label.clone()
        };
        e.last_ms = now;
    }

    /// A stream of `key` opened (`+1`) or closed (`-1`).
    pub fn stream(&self, key: &keys::Key, opened: bool) {
        self.seen(key);
        let mut s = self.sessions();
        if let Some(e) = s.get_mut(&key.id) {
            e.streams = if opened {
                e.streams + 1
            } else {
                e.streams.saturating_sub(1)
            };
        }
    }

    /// The humans of `mesh`: keys seen lately or with a stream open.
    pub fn humans(&self, mesh: &str) -> Vec<serde_json::Value> {
        let now = self.now_ms();
        self.sessions()
            .iter()
            .filter(|(_, s)| s.mesh == mesh)
            .map(|(id, s)| {
                let online = s.streams > 0 || now.saturating_sub(s.last_ms) < HUMAN_ONLINE_MS;
                serde_json::json!({"id": format!("apikey:{id}"), "name": s.name, "online": online,
                    "status": if s.streams > 0 { "watching" } else { "" }, "summary": "",
                    "caps": [], "blocked": false, "type": "human", "last_seen_ms": s.last_ms})
            })
            .collect()
    }

    /// Now, ms since the epoch.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_millis()
    }
}

/// Where `home`'s API keys live.
pub fn key_file(home: &NexusHome) -> std::path::PathBuf {
    home.join("gateway").join("keys.json")
}

/// The gateway's routes, guarded. `extra` (the daemon's store API) is
/// merged in when the `extensions` capability is on.
pub fn router(s: Arc<Shared>, extra: Option<Router>) -> Router {
    let mut api = Router::new()
        .route("/api/v1/health", get(routes::health))
        .route("/api/v1/whoami", get(routes::whoami))
        .route("/api/v1/peers", get(routes::peers))
        .route("/api/v1/topics", get(routes::topics))
        .route(
            "/api/v1/topics/{name}/messages",
            get(routes::history).post(routes::publish),
        )
        .route("/api/v1/topics/{name}/read", patch(routes::mark_read))
        .route("/api/v1/topics/{name}/stream", get(stream::topic_stream))
        .route("/api/v1/messages", get(routes::inbox).post(routes::send))
        .route("/api/v1/messages/read", patch(routes::mark_messages_read))
        .route("/api/v1/events", get(stream::inbox_stream))
        .route("/api/v1/ws", get(ws::events_ws))
        .route("/api/v1/files/{*path}", get(files::read).put(files::write))
        .route("/api/v1/chat", post(routes::chat))
        .route("/api/v1/ask", post(routes::ask))
        .route("/api/v1/ask/runs", post(runs::start))
        .route("/api/v1/ask/runs/{run}/events", get(runs::events))
        .route("/api/v1/ask/runs/{run}", axum::routing::delete(runs::stop))
        .route("/api/v1/status", get(control::status))
        .route("/api/v1/providers", get(settings::providers))
        .route(
            "/api/v1/providers/{name}/key",
            put(settings::set_key).delete(settings::delete_key),
        )
        .route(
            "/api/v1/providers/{name}/oauth",
            put(settings::set_oauth).delete(settings::logout),
        )
        .route(
            "/api/v1/providers/{name}/oauth/authorize",
            post(settings::authorize),
        )
        .route(
            "/api/v1/providers/{name}/oauth/refresh",
            post(settings::refresh),
        )
        .route("/api/v1/hierarchy", get(settings::hierarchy))
        .route("/api/v1/hierarchy/preset", post(settings::preset))
        .route("/api/v1/hierarchy/policy", put(settings::set_policy))
        .route("/api/v1/hierarchy/stats", get(settings::stats))
        .route(
            "/api/v1/hierarchy/categories/{name}",
            put(settings::set_tiers),
        )
        .route("/api/v1/services", get(control::services))
        .route("/api/v1/services/{name}/restart", post(control::restart))
        .route("/api/v1/services/{name}/start", post(control::start))
        .route("/api/v1/services/{name}/stop", post(control::stop))
        .route(
            "/api/v1/logs",
            get(control::logs).delete(control::clear_logs),
        )
        .route(
            "/api/v1/heartbeat",
            get(control::heartbeat).put(control::set_heartbeat),
        )
        .route("/api/v1/heartbeat/run", post(control::run_heartbeat))
        .route("/api/v1/extensions", get(control::extensions))
        .route("/api/v1/approvals", get(control::approvals))
        .route("/api/v1/approvals/{name}", post(control::answer))
        .route(
            "/api/v1/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
        .fallback(|| async { error::ApiError::not_found("no such route under /api/v1") })
        .with_state(s.clone());
    if s.config.capabilities.extensions {
        if let Some(extra) = extra {
            api = api.merge(extra);
        }
    }
    api.merge(ui::routes())
        .layer(DefaultBodyLimit::max(s.config.max_body))
        .layer(axum::middleware::from_fn(guard::one_error_schema))
        .layer(axum::middleware::from_fn_with_state(s, guard::check_host))
}

/// Serves `router` on `listener` until `stop` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tower::ServiceExt as _;

    /// The document and the router agree: every documented route exists.
    #[tokio::test]
    async fn every_documented_route_is_routed() {
        let d = tempfile::tempdir().unwrap();
        let home = NexusHome::at(d.path());
        let client = nexus_sdk::Client::with_options(nexus_sdk::ClientOptions {
            home: Some(d.path().to_path_buf()),
            ..Default::default()
        })
        .unwrap();
        let router = router(Shared::new(client, &home, Config::default()), None);
        for r in openapi::ROUTES {
            let path = r
                .path
                .replace("{name}", "general")
                .replace("{path}", "notes/a.txt");
            let req = axum::http::Request::builder()
                .method(r.method.to_uppercase().as_str())
                .uri(&path)
                .header("host", "127.0.0.1:18789")
                .body(axum::body::Body::empty())
                .unwrap();
            let res = router.clone().oneshot(req).await.unwrap();
            let want = if r.scope.is_some() { 401 } else { 200 };
            assert_eq!(res.status().as_u16(), want, "{} {path}", r.method);
        }
    }
}

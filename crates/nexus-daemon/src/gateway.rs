//! The gateway as a daemon service: `[gateway]` of `config.toml` (on by
//! default, `127.0.0.1:18789`). The address it listens on is written to
//! `NEXUS_HOME/gateway/addr` (useful with `listen = "127.0.0.1:0"`) and
//! shown by `status`. A port already taken is logged and leaves the rest of
//! the daemon running.

use std::net::SocketAddr;
use std::sync::Arc;

use nexus_core::NexusHome;
use tokio::sync::oneshot;

use crate::extensions::Extensions;

/// A running gateway.
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// The address file.
pub(crate) fn addr_file(home: &NexusHome) -> std::path::PathBuf {
    home.join("gateway").join("addr")
}

/// Starts the gateway if `config.toml` wants it.
/// Where the local user's own key lives in the vault.
pub(crate) const LOCAL_KEY: &str = "gateway/local-key";

/// The local user's own admin key (for the CLI, scripts and the desktop):
/// kept in the vault, made on first start, remade when it no longer works
/// or the current mesh changed.
fn local_key(
    home: &NexusHome,
    vault: &dyn nexus_core::Vault,
    keys: &nexus_gateway::keys::KeyStore,
) -> Result<(), String> {
    use nexus_core::Clock as _;
    let now = nexus_core::SystemClock.now_millis();
    let mesh = nexus_mesh::peer::current_mesh(home).unwrap_or_else(|_| "local".into());
    if let Some(secret) = vault.get(LOCAL_KEY).map_err(|e| e.to_string())? {
        if let Ok(k) = keys.verify(secret.expose(), now) {
            if k.mesh == mesh {
                return Ok(());
            }
            let _ = keys.revoke(&k.id);
        }
    }
    let (secret, _) = keys
        .create(
            &nexus_gateway::keys::NewKey {
                mesh,
                scopes: vec![nexus_gateway::keys::Scope::Admin],
                topics: Vec::new(),
                ttl_ms: Some(10 * 365 * 24 * 3600 * 1000),
                label: "local (vault)".into(),
            },
            now,
        )
        .map_err(|e| e.to_string())?;
    vault
        .set(LOCAL_KEY, &nexus_core::Secret::new(secret))
        .map_err(|e| e.to_string())
}

pub(crate) async fn start(
    home: &NexusHome,
    client: nexus_sdk::Client,
    ext: Arc<Extensions>,
    vault: Arc<dyn nexus_core::Vault>,
) -> Result<Option<Running>, String> {
    let mut config = nexus_gateway::Config::load(home)?;
    if !config.enabled {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| {
            format!(
                "cannot listen on {}: {e}; set [gateway] listen in config.toml",
                config.listen
            )
        })?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    config.port = addr.port();
    nexus_core::private_dir(&home.join("gateway")).map_err(|e| e.to_string())?;
    nexus_core::atomic_write(
        &addr_file(home),
        addr.to_string().as_bytes(),
        nexus_core::FileMode::Secret,
    )
    .map_err(|e| e.to_string())?;
    let shared = nexus_gateway::Shared::new(client, home, config);
    if let Err(e) = local_key(home, &*vault, &shared.keys) {
        crate::log(&format!("gateway: no local key in the vault: {e}"));
    }
    let router = nexus_gateway::router(shared, Some(crate::http::store_routes(ext)));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stop = async move {
            let _ = stopped.await;
        };
        if let Err(e) = nexus_gateway::serve(listener, router, stop).await {
            crate::log(&format!("gateway stopped: {e}"));
        }
    });
    crate::log(&format!("gateway listening on http://{addr}"));
    Ok(Some(Running { addr, stop, task }))
}

impl Running {
    /// Stops it (open streams end), waiting at most 2 s.
    pub(crate) async fn stop(self, home: &NexusHome) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), self.task).await;
        let _ = std::fs::remove_file(addr_file(home));
    }
}

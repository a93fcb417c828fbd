//! Talking to a registered MCP server: started as the leader of its own
//! process group (stderr to `NEXUS_HOME/logs/mcp-<name>.log`), spoken to
//! with rmcp's client over its stdio, and stopped by the extension host's
//! rule (close stdin, 2 s, SIGTERM to the group, 2 s, SIGKILL), so an
//! `npx`-wrapped tree leaves nothing behind.
//!
//! Every step is bounded: starting and `initialize` together within
//! [`CONNECT_TIMEOUT`], a call within [`CALL_TIMEOUT`]. A server that
//! writes garbage on stdout fails the handshake with the reason, never
//! hangs it.

use std::path::Path;
use std::time::{Duration, Instant};

use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt as _};
use serde_json::{Map, Value};
use tokio::process::{Child, Command};

use crate::registry::{Server, Transport};

/// The longest start plus `initialize`: with the half second a refused
/// server gets to go, `test` fails within 10 s.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(9);
/// The longest tool call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be started.
    #[error("could not start `{name}`: {why}")]
    Start {
        /// The server.
        name: String,
        /// Why.
        why: String,
    },
    /// The handshake failed or timed out.
    #[error("`{name}` did not complete initialize: {why}")]
    Initialize {
        /// The server.
        name: String,
        /// Why.
        why: String,
    },
    /// The deny (or allow) list refuses the tool.
    #[error("tool `{tool}` of `{name}` is denied by your policy; `nexus mcp allow {name} {tool}` permits it")]
    Denied {
        /// The server.
        name: String,
        /// The tool.
        tool: String,
    },
    /// A request failed.
    #[error("`{name}`: {why}")]
    Call {
        /// The server.
        name: String,
        /// Why.
        why: String,
    },
}

/// A connected server.
pub struct Connection {
    server: Server,
    link: Link,
    /// How long the start and `initialize` took.
    pub initialize: Duration,
}

enum Link {
    Stdio {
        service: RunningService<RoleClient, ()>,
        child: Child,
    },
    Http(tokio::sync::Mutex<crate::http::HttpSession>),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("server", &self.server.name)
            .finish_non_exhaustive()
    }
}

/// The longest line read from a server, bytes.
const MAX_LINE: usize = 4 << 20;

/// Passes the JSON lines of a server's stdout on, and tells of the first
/// line that is not JSON (logged, like every later one, and dropped): a
/// server that prints garbage fails the handshake at once, with the line.
fn filter_stdout(
    stdout: tokio::process::ChildStdout,
    log: std::path::PathBuf,
) -> (tokio::io::DuplexStream, tokio::sync::mpsc::Receiver<String>) {
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
    let (mut into, out) = tokio::io::duplex(64 * 1024);
    let (tell, told) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stdout);
        let mut line = Vec::new();
        loop {
            line.clear();
            let mut limited = (&mut lines).take(MAX_LINE as u64 + 1);
            match limited.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let json = line.len() <= MAX_LINE
                && serde_json::from_slice::<serde::de::IgnoredAny>(&line).is_ok();
            if json {
                if into.write_all(&line).await.is_err() {
                    return;
                }
                continue;
            }
            let shown = String::from_utf8_lossy(&line[..line.len().min(500)])
                .trim_end()
                .to_string();
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
            {
                use std::io::Write as _;
                let _ = writeln!(f, "[nexus] not JSON-RPC on stdout, dropped: {shown}");
            }
            let _ = tell.try_send(shown);
            if line.len() > MAX_LINE {
                // The rest of an overlong line.
                let _ = lines.read_until(b'\n', &mut Vec::new()).await;
            }
        }
    });
    (out, told)
}

/// What `nexus mcp test` reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TestReport {
    /// The server.
    pub name: String,
    /// The protocol version agreed in `initialize`.
    pub protocol_version: String,
    /// The server's own name and version.
    pub server: String,
    /// Start plus `initialize`, ms.
    pub initialize_ms: u64,
    /// Tools it lists.
    pub tools: usize,
}

/// Starts `server` and completes `initialize`, logging its stderr under
/// `logs`.
pub async fn connect(server: &Server, logs: &Path) -> Result<Connection, ClientError> {
    let name = server.name.clone();
    let (command, args, env) = match &server.transport {
        Transport::Stdio { command, args, env } => (command, args, env),
        Transport::Http { url } => {
            let began = Instant::now();
            let session =
                match tokio::time::timeout(CONNECT_TIMEOUT, crate::http::HttpSession::connect(url))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(why)) => return Err(ClientError::Initialize { name, why }),
                    Err(_) => {
                        return Err(ClientError::Initialize {
                            name,
                            why: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                        })
                    }
                };
            return Ok(Connection {
                server: server.clone(),
                link: Link::Http(tokio::sync::Mutex::new(session)),
                initialize: began.elapsed(),
            });
        }
    };
    let start = |why: String| ClientError::Start {
        name: name.clone(),
        why,
    };
    nexus_core::private_dir(logs).map_err(|e| start(e.to_string()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(logs.join(format!("mcp-{}.log", server.name)))
        .map_err(|e| start(e.to_string()))?;
    let began = Instant::now();
    let mut child = Command::new(command)
        .args(args)
        .envs(env)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| start(format!("`{command}`: {e}")))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(start("no pipes".into()));
    };
    let (stdout, mut garbage) =
        filter_stdout(stdout, logs.join(format!("mcp-{}.log", server.name)));
    let handshake = tokio::time::timeout(CONNECT_TIMEOUT, async {
        tokio::select! {
            s = ().serve((stdout, stdin)) => s.map_err(|e| e.to_string()),
            Some(line) = garbage.recv() => Err(format!(
                "it wrote something that is not JSON-RPC on stdout: {:?}",
                line.chars().take(120).collect::<String>()
            )),
        }
    })
    .await;
    let service = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            nexus_ext::process::kill_group_now(&mut child).await;
            return Err(ClientError::Initialize { name, why: e });
        }
        Err(_) => {
            nexus_ext::process::kill_group_now(&mut child).await;
            return Err(ClientError::Initialize {
                name,
                why: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            });
        }
    };
    Ok(Connection {
        server: server.clone(),
        link: Link::Stdio { service, child },
        initialize: began.elapsed(),
    })
}

impl Connection {
    fn call_err(&self, why: impl std::fmt::Display) -> ClientError {
        ClientError::Call {
            name: self.server.name.clone(),
            why: why.to_string(),
        }
    }

    /// The protocol version and server name `initialize` agreed on.
    pub async fn agreed(&self) -> (String, String) {
        let service = match &self.link {
            Link::Stdio { service, .. } => service,
            Link::Http(s) => {
                let info = s.lock().await.info.clone();
                let name = format!(
                    "{} {}",
                    info["serverInfo"]["name"].as_str().unwrap_or(""),
                    info["serverInfo"]["version"].as_str().unwrap_or("")
                );
                return (
                    info["protocolVersion"].as_str().unwrap_or("").to_string(),
                    name.trim().to_string(),
                );
            }
        };
        match service.peer_info() {
            Some(info) => (
                info.protocol_version.to_string(),
                info.server_info
                    .as_ref()
                    .map(|i| format!("{} {}", i.name, i.version).trim().to_string())
                    .unwrap_or_default(),
            ),
            None => (String::new(), String::new()),
        }
    }

    /// Every tool the server lists.
    pub async fn tools(&self) -> Result<Vec<Tool>, ClientError> {
        let service = match &self.link {
            Link::Stdio { service, .. } => service,
            Link::Http(s) => {
                let mut s = s.lock().await;
                let mut out = Vec::new();
                let mut cursor: Option<String> = None;
                for _ in 0..100 {
                    let params = match &cursor {
                        Some(c) => serde_json::json!({"cursor": c}),
                        None => serde_json::json!({}),
                    };
                    let page = s
                        .request("tools/list", params)
                        .await
                        .map_err(|e| self.call_err(e))?;
                    let tools: Vec<Tool> = serde_json::from_value(page["tools"].clone())
                        .map_err(|e| self.call_err(format!("its tool list does not parse: {e}")))?;
                    out.extend(tools);
                    match page["nextCursor"].as_str() {
                        Some(c) => cursor = Some(c.to_string()),
                        None => break,
                    }
                }
                return Ok(out);
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, service.peer().list_all_tools())
            .await
            .map_err(|_| self.call_err("tools/list timed out"))?
            .map_err(|e| self.call_err(e))
    }

    /// Calls `tool` with `args`, unless the policy denies it (checked
    /// before anything is sent).
    pub async fn call(
        &self,
        tool: &str,
        args: Map<String, Value>,
    ) -> Result<CallToolResult, ClientError> {
        if !self.server.permits(tool) {
            return Err(ClientError::Denied {
                name: self.server.name.clone(),
                tool: tool.to_string(),
            });
        }
        let service = match &self.link {
            Link::Stdio { service, .. } => service,
            Link::Http(s) => {
                let v = s
                    .lock()
                    .await
                    .request(
                        "tools/call",
                        serde_json::json!({"name": tool, "arguments": args}),
                    )
                    .await
                    .map_err(|e| self.call_err(e))?;
                return serde_json::from_value(v)
                    .map_err(|e| self.call_err(format!("its result does not parse: {e}")));
            }
        };
        let params = CallToolRequestParams::new(tool.to_string()).with_arguments(args);
        tokio::time::timeout(CALL_TIMEOUT, service.peer().call_tool(params))
            .await
            .map_err(|_| self.call_err(format!("no answer within {} s", CALL_TIMEOUT.as_secs())))?
            .map_err(|e| self.call_err(e))
    }

    /// Ends the session and stops the server's whole process group.
    pub async fn close(self) {
        match self.link {
            Link::Stdio {
                mut service,
                mut child,
            } => {
                // Closing the transport closes the server's stdin.
                let _ = tokio::time::timeout(Duration::from_secs(1), service.close()).await;
                nexus_ext::process::stop_group(&mut child).await;
            }
            Link::Http(s) => s.into_inner().close().await,
        }
    }
}

/// `nexus mcp test`: start, `initialize`, list tools, stop. Fails within
/// [`CONNECT_TIMEOUT`] (plus the stop) whatever the server does.
pub async fn test(server: &Server, logs: &Path) -> Result<TestReport, ClientError> {
    let conn = connect(server, logs).await?;
    let tools = conn.tools().await;
    let (protocol_version, name) = conn.agreed().await;
    let initialize_ms = conn.initialize.as_millis() as u64;
    conn.close().await;
    Ok(TestReport {
        name: server.name.clone(),
        protocol_version,
        server: name,
        initialize_ms,
        tools: tools?.len(),
    })
}

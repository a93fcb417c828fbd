//! `nexus desktop [--ssh user@host]`: opens the desktop UI that nexusd's
//! gateway serves, with a session key in the URL's fragment (never sent to
//! a server, dropped from the address bar by the page). Remote: asks the
//! other machine's `nexus desktop --json` for a session, tunnels a local
//! port to its control socket with `ssh -L`, and keeps the tunnel open.

use std::time::{Duration, Instant};

use nexus_core::{Clock, NexusHome, SystemClock};
use serde_json::{json, Value};

use crate::cli::DesktopArgs;
use crate::exit::{Class, CliError};
use crate::output;

/// A new session key.
fn session_key(args: &DesktopArgs, home: &NexusHome) -> Result<String, CliError> {
    let ttl = nexus_gateway::keys::parse_ttl(&args.session).map_err(CliError::config)?;
    let mesh = nexus_mesh::peer::current_mesh(home).unwrap_or_else(|_| "local".into());
    let store = nexus_gateway::keys::KeyStore::at(nexus_gateway::key_file(home));
    store
        .desktop_session(&mesh, ttl, SystemClock.now_millis())
        .map_err(|e| CliError::internal(format!("cannot make a session key: {e}")))
}

/// What `nexus desktop --json` prints.
fn session(args: &DesktopArgs, home: &NexusHome, addr: &str) -> Result<Value, CliError> {
    let key = session_key(args, home)?;
    Ok(json!({
        "url": format!("http://{addr}/#key={key}&mode=local"),
        "key": key,
        "mode": "local",
        "addr": addr,
        "socket": nexus_sdk::daemon::Paths::of(home).socket,
    }))
}

/// Where the gateway listens, once the daemon wrote it (≤ 10 s).
async fn gateway_addr(home: &NexusHome) -> Result<String, CliError> {
    let file = home.join("gateway").join("addr");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(a) = std::fs::read_to_string(&file) {
            return Ok(a.trim().to_string());
        }
        if Instant::now() > deadline {
            let why = nexus_sdk::daemon::call(home, "status")
                .await
                .ok()
                .and_then(|s| s["gateway"]["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| "it is turned off ([gateway] enabled = false)".into());
            return Err(CliError::config(format!(
                "nexusd runs, but its gateway does not: {why}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn run(args: DesktopArgs) -> Result<(), CliError> {
    if let Some(host) = args.ssh.clone() {
        return remote(&args, &host).await;
    }
    let home = NexusHome::from_env()?;
    super::daemon::ensure_running(&home).await?;
    if args.session_only {
        let key = session_key(&args, &home)?;
        return output::json(&json!({
            "key": key,
            "socket": nexus_sdk::daemon::Paths::of(&home).socket,
            "version": env!("CARGO_PKG_VERSION"),
        }));
    }
    let addr = gateway_addr(&home).await?;
    let s = session(&args, &home, &addr)?;
    show(&args, &s, &format!("Nexus desktop at http://{addr}/"))
}

fn show(args: &DesktopArgs, s: &Value, what: &str) -> Result<(), CliError> {
    let url = s["url"].as_str().unwrap_or_default();
    if args.json {
        return output::json(s);
    }
    if args.print_url {
        return output::print_str(&format!("{url}\n"));
    }
    if super::config::open_browser(url) {
        eprintln!("{what} (opened in your browser)");
    } else {
        eprintln!("{what}; open this in a browser (it carries a session key):\n{url}");
    }
    Ok(())
}

/// The ssh command: `NEXUS_SSH` (split on spaces, for options such as
/// `-p 2222 -i KEY`), else `ssh`.
fn ssh_command() -> Vec<String> {
    let s = std::env::var("NEXUS_SSH").unwrap_or_else(|_| "ssh".into());
    let parts: Vec<String> = s.split_whitespace().map(str::to_string).collect();
    if parts.is_empty() {
        vec!["ssh".into()]
    } else {
        parts
    }
}

fn ssh(extra: &[&str]) -> tokio::process::Command {
    let cmd = ssh_command();
    let mut c = tokio::process::Command::new(&cmd[0]);
    c.args(&cmd[1..])
        .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"])
        .args(extra)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    c
}

fn missing_nexus(host: &str, remote_nexus: &str) -> CliError {
    CliError::new(
        Class::Config,
        format!(
            "`{remote_nexus}` is not installed on {host} (or not on the PATH of a non-interactive shell there). \
             Install it there (`cargo install --git <nexus repository> nexus-cli`, or copy the `nexus` binary to ~/.local/bin), \
             or say where it is: `nexus desktop --ssh {host} --remote-nexus ~/.cargo/bin/nexus`"
        ),
    )
}

async fn remote(args: &DesktopArgs, host: &str) -> Result<(), CliError> {
    if host.starts_with('-') || host.chars().any(char::is_whitespace) {
        return Err(CliError::config(format!("`{host}` is not a host")));
    }
    // 1. A session from the remote nexus (which starts its daemon).
    let remote_cmd = format!("{} desktop --session-only", args.remote_nexus);
    let out = tokio::time::timeout(Duration::from_secs(60), bounded(ssh(&[host, &remote_cmd])))
        .await
        .map_err(|_| {
            CliError::new(
                Class::Network,
                format!("ssh {host} did not answer within 60 s"),
            )
        })?
        .map_err(|e| {
            CliError::config(format!("cannot run ssh ({e}); install an OpenSSH client"))
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(127)
        || stderr.contains("command not found")
        || stderr.contains("No such file")
    {
        return Err(missing_nexus(host, &args.remote_nexus));
    }
    if out.status.code() == Some(255) {
        return Err(CliError::new(
            Class::Network,
            format!(
                "ssh could not reach {host}: {}; check that `ssh {host}` works without a password prompt",
                stderr.trim()
            ),
        ));
    }
    let s: Value = serde_json::from_slice(&out.stdout).map_err(|_| {
        CliError::config(format!(
            "nexus on {host} answered something else than a session ({}); is it the same version as this one ({})?",
            stderr.trim().lines().last().unwrap_or("no message"),
            env!("CARGO_PKG_VERSION")
        ))
    })?;
    let (Some(key), Some(socket)) = (s["key"].as_str(), s["socket"].as_str()) else {
        return Err(CliError::config(match s["error"]["message"].as_str() {
            Some(m) => format!("nexus on {host}: {m}"),
            None => format!(
                "nexus on {host} gave no session key; upgrade it to {}",
                env!("CARGO_PKG_VERSION")
            ),
        }));
    };
    // 2. A local port forwarded to the remote control socket.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| CliError::internal(format!("no free local port: {e}")))?
        .port();
    let forward = format!("127.0.0.1:{port}:{socket}");
    let mut tunnel = ssh(&[
        "-N",
        "-o",
        "ExitOnForwardFailure=yes",
        "-o",
        "ServerAliveInterval=15",
        "-L",
        &forward,
        host,
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .map_err(|e| CliError::config(format!("cannot run ssh: {e}")))?;
    let addr = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if health(&addr).await {
            break;
        }
        if let Ok(Some(st)) = tunnel.try_wait() {
            let mut err = String::new();
            if let Some(mut e) = tunnel.stderr.take() {
                let _ = tokio::io::AsyncReadExt::read_to_string(&mut e, &mut err).await;
            }
            return Err(CliError::new(
                Class::Network,
                format!("the SSH tunnel to {host} closed ({st}): {}", err.trim()),
            ));
        }
        if Instant::now() > deadline {
            return Err(CliError::new(
                Class::Network,
                format!("the SSH tunnel to {host} did not answer within 20 s"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = format!("http://{addr}/#key={key}&mode=ssh&host={}", encode(host));
    let s = json!({"url": url, "mode": "ssh", "host": host, "addr": addr, "socket": socket});
    if args.json || args.print_url {
        show(args, &s, "")?;
    } else {
        show(
            args,
            &s,
            &format!("Nexus desktop of {host} at http://{addr}/"),
        )?;
    }
    eprintln!("Connected (SSH) to {host}; the tunnel stays open until Ctrl-C.");
    tokio::select! {
        st = tunnel.wait() => Err(CliError::new(
            Class::Network,
            format!("the SSH tunnel to {host} closed ({})", st.map_or_else(|e| e.to_string(), |s| s.to_string())),
        )),
        _ = tokio::signal::ctrl_c() => {
            let _ = tunnel.kill().await;
            Ok(())
        }
    }
}

/// Runs `cmd`, keeping at most 1 MiB of each of its outputs: what the
/// other machine prints is read, not trusted to be small.
async fn bounded(mut cmd: tokio::process::Command) -> std::io::Result<std::process::Output> {
    use tokio::io::AsyncReadExt as _;
    const LIMIT: u64 = 1 << 20;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (o, e) = (child.stdout.take(), child.stderr.take());
    let read_out = async {
        if let Some(o) = o {
            let _ = o.take(LIMIT).read_to_end(&mut out).await;
        }
    };
    let read_err = async {
        if let Some(e) = e {
            let _ = e.take(LIMIT).read_to_end(&mut err).await;
        }
    };
    tokio::join!(read_out, read_err);
    let _ = child.start_kill();
    let status = child.wait().await?;
    Ok(std::process::Output {
        status,
        stdout: out,
        stderr: err,
    })
}

/// Whether a gateway answers `GET /api/v1/health` at `addr`.
async fn health(addr: &str) -> bool {
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await
    else {
        return false;
    };
    let req = format!("GET /api/v1/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if tokio::io::AsyncWriteExt::write_all(&mut s, req.as_bytes())
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::io::AsyncReadExt::read_to_end(
            &mut tokio::io::AsyncReadExt::take(&mut s, 64 * 1024),
            &mut buf,
        ),
    )
    .await;
    read.is_ok() && buf.starts_with(b"HTTP/1.1 200")
}

/// Percent-encodes a URL fragment value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

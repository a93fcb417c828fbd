//! The process side of supervision: a child in a process group of its
//! own, its output appended to its log, stopped with SIGTERM to the whole
//! group and SIGKILL after the grace period, so no grandchild is left
//! behind; and the health probes.

use std::path::Path;
use std::sync::Arc;

use tokio::io::AsyncReadExt as _;

use crate::logs::Writer;
use std::time::Duration;

use tokio::process::{Child, Command};

use super::{Exit, Probe, Spec};

/// Starts `spec`'s command in a new process group; its output goes to
/// `log`, a line at a time (stdout as `info`, stderr as `warn`).
pub(super) fn spawn(spec: &Spec, log: &Arc<Writer>) -> Result<Child, String> {
    let mut c = Command::new(&spec.argv[0]);
    c.args(&spec.argv[1..])
        .envs(&spec.env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = c.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("`{}` does not exist (or is not on PATH)", spec.argv[0])
        }
        _ => e.to_string(),
    })?;
    if let Some(out) = child.stdout.take() {
        tokio::spawn(pump(out, log.clone(), "info"));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(pump(err, log.clone(), "warn"));
    }
    Ok(child)
}

/// Copies a pipe into the log, a line at a time (lines capped at 64 KiB).
async fn pump(from: impl tokio::io::AsyncRead + Unpin, log: Arc<Writer>, level: &'static str) {
    use tokio::io::AsyncBufReadExt;
    let mut r = tokio::io::BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut r).take(64 * 1024).read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => log.write(level, &String::from_utf8_lossy(&line)),
        }
    }
}

fn signal_group(pid: u32, signal: rustix::process::Signal) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    let _ = rustix::process::kill_process_group(pid, signal);
}

/// Stops `child` and its whole process group: SIGTERM, then SIGKILL after
/// `grace`. Returns once the child has been reaped and the group is gone.
pub(super) async fn stop(child: &mut Child, grace: Duration) {
    let Some(pid) = child.id() else {
        let _ = child.wait().await;
        return;
    };
    signal_group(pid, rustix::process::Signal::TERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        signal_group(pid, rustix::process::Signal::KILL);
        let _ = child.wait().await;
    }
    // Grandchildren that outlived the leader are in the group too; wait
    // (a little) until none is left running.
    signal_group(pid, rustix::process::Signal::KILL);
    for _ in 0..100 {
        if !group_alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether any process of group `pgid` still runs (zombies, which only
/// wait to be reaped, do not count). Linux reads `/proc`; elsewhere any
/// process of the group counts.
fn group_alive(pgid: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return i32::try_from(pgid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .is_some_and(|p| rustix::process::test_kill_process_group(p).is_ok());
    };
    dir.flatten().any(|e| {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split_whitespace().collect();
        f.first() != Some(&"Z") && f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid)
    })
}

/// How a wait ended.
pub(super) fn exit_of(st: std::io::Result<std::process::ExitStatus>) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match st {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => Exit::Code { code },
            (None, Some(signal)) => Exit::Signal { signal },
            (None, None) => Exit::Code { code: -1 },
        },
        Err(e) => Exit::Spawn {
            error: e.to_string(),
        },
    }
}

/// Whether `probe` passes now (each check bounded by a second).
pub(super) async fn probe(probe: &Probe) -> bool {
    let limit = Duration::from_secs(1);
    match probe {
        Probe::Process => true,
        Probe::Tcp(addr) => matches!(
            tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr.as_str())).await,
            Ok(Ok(_))
        ),
        Probe::Http(url) => tokio::time::timeout(limit, http_ok(url))
            .await
            .unwrap_or(false),
    }
}

/// A plain HTTP/1.0 GET: whether the status is 2xx or 3xx.
async fn http_ok(url: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let Ok(mut s) = tokio::net::TcpStream::connect(host).await else {
        return false;
    };
    let req = format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    let Ok(n) = s.read(&mut head).await else {
        return false;
    };
    let line = String::from_utf8_lossy(&head[..n]);
    let code = line.split_whitespace().nth(1).unwrap_or("");
    code.starts_with('2') || code.starts_with('3')
}

/// Records the pid of a service's process group and its program (or,
/// with `None`, that none runs).
pub(super) fn record(file: &Path, pid: Option<u32>, program: &str) {
    match pid {
        Some(pid) => {
            if let Some(dir) = file.parent() {
                let _ = nexus_core::private_dir(dir);
            }
            let _ = nexus_core::atomic_write(
                file,
                format!("{pid}\n{program}\n").as_bytes(),
                nexus_core::FileMode::Secret,
            );
        }
        None => {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// Ends process group `pid` if it still exists and its leader still runs
/// `program` (a pid reused by something else is left alone): SIGTERM,
/// then SIGKILL after two seconds. Whether there was one.
pub(super) async fn end_group(pid: u32, program: &str) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let first = cmdline.split(|b| *b == 0).next().unwrap_or_default();
    if first != program.as_bytes() {
        return false;
    }
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    let alive = || rustix::process::test_kill_process_group(p).is_ok();
    if !alive() {
        return false;
    }
    signal_group(pid, rustix::process::Signal::TERM);
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !alive() {
            return true;
        }
    }
    signal_group(pid, rustix::process::Signal::KILL);
    true
}

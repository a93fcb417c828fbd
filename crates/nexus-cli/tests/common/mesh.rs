//! Helpers for tests that run a broker and peers in their own homes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use super::{stdout, Run};

/// A broker (`nexus up`), killed when dropped.
pub struct Up(pub Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

pub fn peer() -> Run {
    let mut r = Run::new();
    r.env.push((
        "NEXUS_VAULT_PASSPHRASE".into(),
        "mesh test passphrase".into(),
    ));
    r
}

/// Starts `nexus up` on an ephemeral port; returns its URL.
pub fn up(r: &Run) -> (Up, String) {
    up_on(r, "127.0.0.1:0")
}

/// Starts `nexus up` listening on `listen`; returns its URL.
pub fn up_on(r: &Run, listen: &str) -> (Up, String) {
    let mut c = r.cmd(&["up", "--no-daemon", "--listen", listen]);
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("ws://"))
        .unwrap()
        .to_string();
    (Up(child), url)
}

/// Stops a home's daemon when a test ends, passed or not.
pub struct DaemonGuard(pub std::path::PathBuf);

impl Drop for DaemonGuard {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.0.join("nexusd.pid")) {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", pid.trim()])
                .status();
        }
    }
}

/// An owner who created `team` on a fresh broker, and members who joined
/// it (the owner's inbox has sent them the key).
pub async fn team(members: &[&str]) -> (Up, String, Run, Vec<Run>) {
    team_at("127.0.0.1:0", members).await
}

/// [`team`] with the broker listening on `listen`.
pub async fn team_at(listen: &str, members: &[&str]) -> (Up, String, Run, Vec<Run>) {
    let owner = peer();
    let (broker, url) = up_on(&owner, listen);
    let o = owner
        .run(&[
            "mesh", "create", "team", "--broker", &url, "--name", "owner",
        ])
        .await;
    assert!(o.status.success(), "{}", super::stderr(&o));
    let mut joined = Vec::new();
    for name in members {
        let r = peer();
        let o = owner.run(&["mesh", "invite", "--json"]).await;
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let link = v["link"].as_str().unwrap().to_string();
        let o = r.run(&["mesh", "join", &link, "--name", name]).await;
        assert!(o.status.success(), "{}", super::stderr(&o));
        joined.push(r);
    }
    let o = owner.run(&["mesh", "inbox"]).await;
    assert!(o.status.success(), "{}", stdout(&o));
    for r in &joined {
        let o = r.run(&["mesh", "inbox"]).await;
        assert!(
            stdout(&o).contains("received the team key"),
            "{}",
            stdout(&o)
        );
    }
    (broker, url, owner, joined)
}

/// Waits until `r`'s daemon says it is connected to every mesh.
pub async fn connected(r: &Run) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let o = r.run(&["daemon", "status", "--json"]).await;
        let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        let meshes = s["meshes"].as_array().cloned().unwrap_or_default();
        if !meshes.is_empty() && meshes.iter().all(|m| m["connected"] == true) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "never connected: {s}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Starts `r`'s daemon; stopped when the guard drops.
pub async fn daemon(r: &Run) -> DaemonGuard {
    let o = r.run(&["daemon", "start"]).await;
    assert!(o.status.success(), "{}", super::stderr(&o));
    DaemonGuard(r.home.path().join("nexus"))
}

/// The lines a child prints, read on a thread of their own.
pub struct Lines(std::sync::mpsc::Receiver<String>);

impl Lines {
    /// Reads `out` a line at a time.
    pub fn of(out: impl std::io::Read + Send + 'static) -> Lines {
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines(rx)
    }

    /// Waits up to `secs` for a line containing `want`; returns the lines
    /// read meanwhile (that one last), or panics with them.
    pub fn wait_for(&self, want: &str, secs: u64) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        let mut seen = Vec::new();
        while std::time::Instant::now() < deadline {
            if let Ok(l) = self.0.recv_timeout(std::time::Duration::from_millis(200)) {
                let hit = l.contains(want);
                seen.push(l);
                if hit {
                    return seen;
                }
            }
        }
        panic!("no `{want}` in {seen:?}");
    }
}

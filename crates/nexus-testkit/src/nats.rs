//! Real `nats-server`s with JetStream on loopback, for the broker-cluster
//! tests and benchmarks: one server, or a cluster routed to itself, each
//! server with a store directory of its own. Killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Running servers.
#[derive(Debug)]
pub struct Nats {
    children: Vec<Child>,
    /// Their client URLs, in order.
    pub urls: Vec<String>,
    /// Their store directories, in order.
    pub stores: Vec<PathBuf>,
}

impl Nats {
    /// The client URLs, comma-separated (what `--nats` takes).
    pub fn servers(&self) -> String {
        self.urls.join(",")
    }

    /// SIGKILLs server `i` (its store stays).
    pub fn kill(&mut self, i: usize) {
        let _ = Command::new("kill")
            .args(["-KILL", &self.children[i].id().to_string()])
            .status();
        let _ = self.children[i].wait();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Whether `nats-server` is installed. Without it a test says SKIP on a
/// developer machine and fails under CI (`CI` set): the test command
/// installs it.
pub fn available() -> bool {
    if Command::new("nats-server")
        .arg("--version")
        .output()
        .is_ok()
    {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "nats-server is missing; scripts/test installs it (apt-get install nats-server)"
    );
    eprintln!("SKIP: no nats-server (apt-get install nats-server)");
    false
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// `n` JetStream servers under `dir` (clustered as `nexus`, named `n0`...,
/// when `n` > 1), each answering before this returns; `None` if
/// `nats-server` is missing (see [`available`]) or does not start.
pub fn start(n: usize, dir: &Path) -> Option<Nats> {
    if !available() {
        return None;
    }
    let client: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let route: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let routes = route
        .iter()
        .map(|p| format!("nats://127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut nats = Nats {
        children: Vec::new(),
        urls: client
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect(),
        stores: Vec::new(),
    };
    for i in 0..n {
        let store = dir.join(format!("n{i}"));
        std::fs::create_dir_all(&store).ok()?;
        let mut c = Command::new("nats-server");
        c.args([
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            &client[i].to_string(),
            "--store_dir",
        ])
        .arg(&store);
        if n > 1 {
            c.args(["--cluster_name", "nexus", "--cluster"])
                .arg(format!("nats://127.0.0.1:{}", route[i]))
                .args(["--routes", &routes, "--server_name", &format!("n{i}")]);
        }
        nats.children
            .push(c.stdout(Stdio::null()).stderr(Stdio::null()).spawn().ok()?);
        nats.stores.push(store);
    }
    for p in &client {
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", *p)).is_err() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Some(nats)
}

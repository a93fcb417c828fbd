//! `nexus-verbs`: what a mesh verb costs through a running daemon against
//! the same verb opening its own connection, and how fast an inbox takes in
//! queued messages with store-before-acknowledge (each message committed to
//! the local SQLite inbox before the broker is told).
//!
//! It runs a broker in this process on loopback, three homes (owner, alice,
//! bob) driven through the `nexus` binary, and `nexusd` for alice:
//!
//! 1. `nexus mesh send bob ...` as a user types it, interleaved: through
//!    alice's daemon, and with `NEXUS_MESH_ROUTE=in_process` (its own
//!    connection: WebSocket, hello, member list, send, ack);
//! 2. the same two through the SDK in this process (no process start);
//! 3. bob's inbox taking in `--inbox` queued direct messages in-process,
//!    and bob's daemon taking in as many live.
//!
//! `cargo build --release -p nexus-cli -p nexus-daemon && cargo run --release -p nexus-benches --bin nexus-verbs`

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Timed runs of each verb path.
    #[arg(long, default_value_t = 40)]
    runs: usize,
    /// Direct messages queued for the inbox measurement.
    #[arg(long, default_value_t = 2000)]
    inbox: usize,
    /// The `nexus` binary (default: next to this one).
    #[arg(long)]
    nexus: Option<PathBuf>,
}

const PASSPHRASE: &str = "bench passphrase";

struct Home {
    dir: PathBuf,
    nexus: PathBuf,
}

impl Home {
    fn new(root: &Path, name: &str, nexus: &Path) -> Home {
        let dir = root.join(name);
        std::fs::create_dir_all(dir.join("nexus")).unwrap();
        std::fs::write(
            dir.join("nexus/config.toml"),
            "[vault]\nbackend = \"file\"\n",
        )
        .unwrap();
        Home {
            dir,
            nexus: nexus.to_path_buf(),
        }
    }

    fn home(&self) -> PathBuf {
        self.dir.join("nexus")
    }

    fn cmd(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(&self.nexus);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.dir)
            .env("NEXUS_HOME", self.home())
            .env("NEXUS_VAULT_PASSPHRASE", PASSPHRASE)
            .args(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c
    }

    fn run(&self, args: &[&str]) -> String {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let o = self.cmd(args, env).output().unwrap();
        assert!(
            o.status.success(),
            "nexus {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn client(&self, route: nexus_sdk::MeshRoute) -> nexus_sdk::Mesh {
        let env = [("NEXUS_VAULT_PASSPHRASE".to_string(), PASSPHRASE.to_string())]
            .into_iter()
            .collect();
        nexus_sdk::Client::with_options(nexus_sdk::ClientOptions {
            home: Some(self.home()),
            env,
            ..Default::default()
        })
        .unwrap()
        .mesh_routed(route)
        .unwrap()
    }
}

fn stats(name: &str, mut ms: Vec<f64>) -> f64 {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    println!(
        "{name:<46} p50 {:>7.2} ms  p90 {:>7.2} ms  mean {:>7.2} ms  (n={})",
        at(0.5),
        at(0.9),
        mean,
        ms.len()
    );
    at(0.5)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let nexus = args.nexus.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .unwrap()
            .parent()
            .unwrap()
            .join("nexus")
    });
    assert!(
        nexus.exists(),
        "{} is not built: cargo build --release -p nexus-cli",
        nexus.display()
    );
    let root = tempfile::tempdir().unwrap();
    let limits = nexus_mesh::broker::Limits {
        rate_per_sec: 1_000_000,
        burst: 1_000_000,
        ..Default::default()
    };
    let (url, _broker) = nexus_mesh::server::start(
        "127.0.0.1:0",
        &root.path().join("broker.db"),
        limits,
        Default::default(),
    )
    .await
    .unwrap();
    let owner = Home::new(root.path(), "owner", &nexus);
    let alice = Home::new(root.path(), "alice", &nexus);
    let bob = Home::new(root.path(), "bob", &nexus);
    owner.run(&[
        "mesh", "create", "team", "--broker", &url, "--name", "owner",
    ]);
    for (h, name) in [(&alice, "alice"), (&bob, "bob")] {
        let v: serde_json::Value =
            serde_json::from_str(&owner.run(&["mesh", "invite", "--json"])).unwrap();
        h.run(&["mesh", "join", v["link"].as_str().unwrap(), "--name", name]);
    }
    owner.run(&["mesh", "inbox"]);
    alice.run(&["mesh", "inbox"]);
    bob.run(&["mesh", "inbox"]);
    alice.run(&["daemon", "start"]);
    let stop = |h: &Home| {
        let _ = h.cmd(&["daemon", "stop"], &[]).output();
    };
    // Connected, and warm.
    for _ in 0..3 {
        alice.run(&["mesh", "send", "bob", "warm-up"]);
    }

    println!(
        "a CLI verb (`nexus mesh send bob TEXT`, process start included), {} runs each, interleaved",
        args.runs
    );
    let (mut daemon, mut direct) = (Vec::new(), Vec::new());
    for i in 0..args.runs {
        let text = format!("verb {i}");
        let t = Instant::now();
        alice.run(&["mesh", "send", "bob", &text]);
        daemon.push(ms(t.elapsed()));
        let t = Instant::now();
        alice.run_env(
            &["mesh", "send", "bob", &text],
            &[("NEXUS_MESH_ROUTE", "in_process")],
        );
        direct.push(ms(t.elapsed()));
    }
    let d = stats("  through the daemon", daemon);
    let o = stats("  its own connection (NEXUS_MESH_ROUTE=in_process)", direct);
    println!(
        "  the daemon path, minus the direct one, at p50: {:+.2} ms",
        d - o
    );

    println!("the same verb through the SDK in one process (no process start)");
    let via_daemon = alice.client(nexus_sdk::MeshRoute::Daemon);
    let in_process = alice.client(nexus_sdk::MeshRoute::InProcess);
    let (mut daemon, mut direct) = (Vec::new(), Vec::new());
    for i in 0..args.runs * 5 {
        let text = format!("sdk {i}");
        let t = Instant::now();
        via_daemon.send(None, "bob", &text).await.unwrap();
        daemon.push(ms(t.elapsed()));
        let t = Instant::now();
        in_process.send(None, "bob", &text).await.unwrap();
        direct.push(ms(t.elapsed()));
    }
    let d = stats("  Mesh::send through the daemon", daemon);
    let o = stats("  Mesh::send on its own connection", direct);
    println!("  difference at p50: {:+.2} ms", d - o);

    // Clear bob's queue, then queue `inbox` more for him.
    let bob_mesh = bob.client(nexus_sdk::MeshRoute::InProcess);
    let items = bob_mesh.inbox(None).await.unwrap();
    let seqs: Vec<i64> = items.iter().filter_map(|i| i.seq).collect();
    bob_mesh.mark_read(None, &seqs).await.unwrap();
    let n = args.inbox;
    let t = Instant::now();
    for i in 0..n {
        via_daemon
            .send(None, "bob", &format!("queued {i}"))
            .await
            .unwrap();
    }
    let sent = t.elapsed();
    println!(
        "inbox throughput, {n} direct messages of ~10 bytes (each stored in the local inbox, then acknowledged)"
    );
    println!(
        "  sending them through alice's daemon: {:.0} msgs/s",
        n as f64 / sent.as_secs_f64()
    );
    let t = Instant::now();
    let items = bob_mesh.inbox(None).await.unwrap();
    let took = t.elapsed();
    let dms = items
        .iter()
        .filter(|i| matches!(i.message, nexus_sdk::mesh::MeshEvent::Dm { .. }))
        .count();
    assert_eq!(dms, n, "every queued message arrives");
    println!(
        "  bob's inbox in-process (connect, take in, store, ack, open, list): {:.0} msgs/s ({:.0} ms)",
        n as f64 / took.as_secs_f64(),
        ms(took)
    );
    let seqs: Vec<i64> = items.iter().filter_map(|i| i.seq).collect();
    bob_mesh.mark_read(None, &seqs).await.unwrap();

    bob.run(&["daemon", "start"]);
    let bob_daemon = bob.client(nexus_sdk::MeshRoute::Daemon);
    while bob_daemon.unread(None).await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t = Instant::now();
    for i in 0..n {
        via_daemon
            .send(None, "bob", &format!("live {i}"))
            .await
            .unwrap();
    }
    loop {
        let unread = bob_daemon.unread(None).await.unwrap();
        if unread
            .iter()
            .any(|(k, c)| k == "direct" && *c as usize >= n)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = t.elapsed();
    println!(
        "  sent live to bob's daemon and stored there: {:.0} msgs/s end to end ({:.0} ms)",
        n as f64 / took.as_secs_f64(),
        ms(took)
    );
    stop(&alice);
    stop(&bob);
}

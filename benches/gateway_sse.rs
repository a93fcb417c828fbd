//! `nexus-gateway-sse`: from a publish to the server-sent event that carries
//! it, through everything a browser's stream depends on: the broker (in this
//! process), alice's nexusd (its keeper stores the message, then wakes the
//! gateway's stream), a history page from the broker, the SSE frame. The
//! owner publishes to `#general` in-process at a fixed rate; a reader on
//! alice's gateway stream notes each arrival; each text carries its send
//! time.
//!
//! `cargo build --release -p nexus-cli -p nexus-daemon -p nexus-benches --bin nexus-gateway-sse && target/release/nexus-gateway-sse`

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Messages to publish.
    #[arg(long, default_value_t = 3000)]
    n: usize,
    /// Publishes per second.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
}

const PASSPHRASE: &str = "bench passphrase";

fn nexus(bin: &Path, home: &Path, args: &[&str]) -> String {
    let o = Command::new(bin)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.parent().unwrap())
        .env("NEXUS_HOME", home)
        .env("NEXUS_VAULT_PASSPHRASE", PASSPHRASE)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "nexus {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let bin: PathBuf = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .join("nexus");
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
    let owner = root.path().join("owner/nexus");
    let alice = root.path().join("alice/nexus");
    for h in [&owner, &alice] {
        std::fs::create_dir_all(h).unwrap();
        std::fs::write(h.join("config.toml"), "[vault]\nbackend = \"file\"\n").unwrap();
    }
    std::fs::write(
        alice.join("config.toml"),
        "[vault]\nbackend = \"file\"\n[gateway]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    nexus(
        &bin,
        &owner,
        &[
            "mesh", "create", "team", "--broker", &url, "--name", "owner",
        ],
    );
    let v: serde_json::Value =
        serde_json::from_str(&nexus(&bin, &owner, &["mesh", "invite", "--json"])).unwrap();
    nexus(
        &bin,
        &alice,
        &[
            "mesh",
            "join",
            v["link"].as_str().unwrap(),
            "--name",
            "alice",
        ],
    );
    nexus(&bin, &owner, &["mesh", "inbox"]);
    nexus(&bin, &alice, &["mesh", "inbox"]);
    nexus(&bin, &owner, &["mesh", "topic", "create", "general"]);
    nexus(&bin, &alice, &["mesh", "topic", "join", "general"]);
    nexus(&bin, &alice, &["daemon", "start"]);
    let addr = loop {
        if let Ok(a) = std::fs::read_to_string(alice.join("gateway/addr")) {
            break a;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let v: serde_json::Value = serde_json::from_str(&nexus(
        &bin,
        &alice,
        &[
            "apikey", "create", "--mesh", "team", "--scopes", "read", "--json",
        ],
    ))
    .unwrap();
    let key = v["key"].as_str().unwrap().to_string();

    let start = Instant::now();
    let n = args.n;
    let reader = std::thread::spawn(move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        write!(s, "GET /api/v1/topics/general/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut lines = BufReader::new(s);
        let mut lat = Vec::with_capacity(n);
        let mut seen = std::collections::BTreeSet::new();
        while lat.len() < n {
            let mut l = String::new();
            if lines.read_line(&mut l).unwrap_or(0) == 0 {
                break;
            }
            if let Some(d) = l.trim_end().strip_prefix("data: ") {
                let v: serde_json::Value = serde_json::from_str(d).unwrap_or_default();
                if let Some(t) = v["text"].as_str().and_then(|t| t.strip_prefix("bench ")) {
                    let (i, sent) = t.split_once(' ').unwrap();
                    if seen.insert(i.parse::<usize>().unwrap()) {
                        let sent: u64 = sent.parse().unwrap();
                        lat.push(start.elapsed().as_micros() as u64 - sent);
                    }
                }
            }
        }
        lat
    });
    std::thread::sleep(Duration::from_millis(500));
    let mesh = nexus_sdk::Client::with_options(nexus_sdk::ClientOptions {
        home: Some(owner.clone()),
        env: [("NEXUS_VAULT_PASSPHRASE".to_string(), PASSPHRASE.to_string())]
            .into_iter()
            .collect(),
        ..Default::default()
    })
    .unwrap()
    .mesh_routed(nexus_sdk::MeshRoute::InProcess)
    .unwrap();
    mesh.publish(None, "general", "warm-up").await.unwrap();
    let every = Duration::from_micros(1_000_000 / args.rate);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let began = Instant::now();
    for i in 0..n {
        tick.tick().await;
        let sent = start.elapsed().as_micros();
        mesh.publish(None, "general", &format!("bench {i} {sent}"))
            .await
            .unwrap();
    }
    let rate = n as f64 / began.elapsed().as_secs_f64();
    let mut lat = reader.join().unwrap();
    let _ = Command::new(&bin)
        .env("NEXUS_HOME", &alice)
        .env("NEXUS_VAULT_PASSPHRASE", PASSPHRASE)
        .args(["daemon", "stop"])
        .output();
    lat.sort_unstable();
    let at = |q: f64| lat[((lat.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    println!(
        "publish → SSE event: {} of {n} delivered at {rate:.0} publishes/s; p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}

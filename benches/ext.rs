//! `nexus-ext-bench`: the extension host's costs.
//!
//! 1. A JSON-RPC round trip host → extension → host over the real pipes,
//!    for a Rust extension (`nexus-ext-echo`) and a Python one (the
//!    `notes` fixture), sequential calls, p50 and p99.
//! 2. From an extension's crash (SIGSEGV) to its answering again, under the
//!    supervisor (the first restart waits 0.5 s by policy).
//! 3. The store: put and get of a 100-byte value.
//!
//! `cargo build --release -p nexus-benches --bin nexus-ext-bench --bin nexus-ext-echo && target/release/nexus-ext-bench`

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_core::NexusHome;
use nexus_ext::host::{self, DenyAll, Paths, Shared};
use nexus_ext::store::Store;
use nexus_ext::supervisor::Supervisor;
use serde_json::json;

fn pct(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

async fn round_trips(shared: &Arc<Shared>, id: &str, n: usize) -> (Duration, Duration) {
    let mut r = host::start(shared, id).await.unwrap();
    for _ in 0..200 {
        r.call("echo", json!({"x": 1})).await.unwrap();
    }
    let mut t = Vec::with_capacity(n);
    for i in 0..n {
        let s = Instant::now();
        r.call("echo", json!({"x": i})).await.unwrap();
        t.push(s.elapsed());
    }
    r.stop().await;
    (pct(&mut t, 0.5), pct(&mut t, 0.99))
}

#[tokio::main]
async fn main() {
    let home = tempfile::tempdir().unwrap();
    let paths = Paths::new(NexusHome::at(home.path()));
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/nexus-ext/tests/fixtures");
    // The Rust echo extension, installed from a temporary directory.
    let echo = std::env::current_exe()
        .unwrap()
        .with_file_name("nexus-ext-echo");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&echo, dir.path().join("echo")).unwrap();
    std::fs::write(
        dir.path().join("nexus-extension.toml"),
        "id = \"rust-echo\"\nversion = \"1.0.0\"\nentry = \"echo\"\ncommand = [\"./echo\"]\n",
    )
    .unwrap();
    host::install(&paths, dir.path(), &[], true).unwrap();
    host::install(&paths, &fixtures.join("notes"), &[], true).unwrap();
    let shared = Shared::with_defaults(paths.clone(), Arc::new(DenyAll));

    let n = 10_000;
    // The floor: the same echo process, one task writing a line to its
    // stdin and reading the answer line from its stdout, no peer at all.
    let (f50, f99) = {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        let mut child = tokio::process::Command::new(dir.path().join("echo"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut t = Vec::with_capacity(n);
        for i in 0..n + 200 {
            let s = Instant::now();
            let line = format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{i},\"method\":\"echo\",\"params\":{{\"x\":{i}}}}}\n"
            );
            stdin.write_all(line.as_bytes()).await.unwrap();
            stdin.flush().await.unwrap();
            lines.next_line().await.unwrap().unwrap();
            if i >= 200 {
                t.push(s.elapsed());
            }
        }
        (pct(&mut t, 0.5), pct(&mut t, 0.99))
    };
    let (r50, r99) = round_trips(&shared, "rust-echo", n).await;
    let (p50, p99) = round_trips(&shared, "notes", n).await;
    println!("JSON-RPC round trip, host → extension → host, {n} sequential calls");
    println!("| extension | p50 | p99 |");
    println!("|---|---|---|");
    println!(
        "| raw pipe, one task, no peer (the floor) | {} | {} |",
        us(f50),
        us(f99)
    );
    println!("| Rust (`nexus-ext-echo`) | {} | {} |", us(r50), us(r99));
    println!("| Python 3 (`notes` fixture) | {} | {} |", us(p50), us(p99));

    let sup = Supervisor::start(shared, &["notes".into()]);
    // The first restart only: later ones wait longer by policy.
    sup.call("notes", "pid", json!({})).await.unwrap();
    let s = Instant::now();
    let _ = sup.call("notes", "crash", json!({})).await;
    sup.call("notes", "pid", json!({})).await.unwrap();
    let ready = s.elapsed();
    sup.shutdown().await;
    println!(
        "\ncrash (SIGSEGV) → answering again: {:.0} ms (0.5 s of it is the policy's first backoff)",
        ready.as_secs_f64() * 1000.0
    );

    let store = Store::open(&home.path().join("bench-store"), u64::MAX).unwrap();
    let value = vec![b'v'; 100];
    let m = 20_000;
    let s = Instant::now();
    for i in 0..m {
        store.put(&format!("key-{i}"), &value).unwrap();
    }
    let put = s.elapsed() / m;
    let s = Instant::now();
    for i in 0..m {
        store.get(&format!("key-{i}")).unwrap();
    }
    let get = s.elapsed() / m;
    println!("\nstore (SQLite, WAL, one transaction per put), 100-byte values, {m} keys: put {} · get {}", us(put), us(get));
}

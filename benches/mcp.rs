//! `nexus-mcp-bench`: what an MCP client waits for, `nexus mcp serve`
//! beside the Python reference server (the official `mcp` SDK's
//! `MCPServer`, `crates/nexus-cli/tests/mcp-servers/tiny_server.py`), both
//! driven the same way: raw JSON-RPC lines on their stdio, no client SDK in
//! the way.
//!
//! 1. From spawn to the answer of `initialize` (a fresh process each time).
//! 2. A `tools/list` round trip on a live session.
//! 3. A `tools/call` round trip that the server rejects by its argument
//!    schema (the same work on both: parse, route, validate, answer), and
//!    for the Python server also a call that succeeds (`add`).
//!
//! `cargo build --release -p nexus-cli -p nexus-benches --bin nexus-mcp-bench && target/release/nexus-mcp-bench target/release/nexus target/mcpenv/bin/python`

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

fn pct(v: &mut [Duration], q: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;

struct Session {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next: u64,
}

impl Session {
    fn spawn(cmd: &[String], home: &Path) -> Session {
        let mut child = Command::new(&cmd[0])
            .args(&cmd[1..])
            .env("NEXUS_HOME", home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Session {
            child,
            stdin,
            stdout,
            next: 10,
        }
    }

    /// Sends a line and reads lines until the answer with `id`.
    fn request(&mut self, line: &str, id: u64) -> String {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let want = format!("\"id\":{id}");
        loop {
            let mut l = String::new();
            assert!(
                self.stdout.read_line(&mut l).unwrap() > 0,
                "the server closed"
            );
            if l.contains(&want) {
                return l;
            }
        }
    }

    fn call(&mut self, method: &str, params: &str) -> String {
        self.next += 1;
        let id = self.next;
        self.request(
            &format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#),
            id,
        )
    }

    fn initialize(&mut self) {
        self.request(INIT, 1);
        writeln!(
            self.stdin,
            r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
        )
        .unwrap();
    }

    fn end(mut self) {
        drop(self.stdin);
        let _ = self.child.wait();
    }
}

fn spawn_to_answer(cmd: &[String], home: &Path, n: usize) -> (Duration, Duration) {
    let mut t = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        let mut s = Session::spawn(cmd, home);
        s.request(INIT, 1);
        t.push(started.elapsed());
        s.end();
    }
    (pct(&mut t, 0.5), pct(&mut t, 0.9))
}

fn round_trips(s: &mut Session, method: &str, params: &str, n: usize) -> (Duration, Duration) {
    for _ in 0..50 {
        s.call(method, params);
    }
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        s.call(method, params);
        t.push(started.elapsed());
    }
    (pct(&mut t, 0.5), pct(&mut t, 0.99))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let nexus = PathBuf::from(args.get(1).map_or("target/release/nexus", String::as_str));
    let python = args
        .get(2)
        .map_or("target/mcpenv/bin/python".to_string(), Clone::clone);
    let tiny = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/nexus-cli/tests/mcp-servers/tiny_server.py");
    let home = tempfile::tempdir().unwrap();
    let servers: Vec<(&str, Vec<String>, &str, &str)> = vec![
        (
            "nexus mcp serve",
            vec![nexus.display().to_string(), "mcp".into(), "serve".into()],
            r#"{"name":"mesh_send","arguments":{}}"#,
            "",
        ),
        (
            "Python mcp 2.3 MCPServer",
            vec![python, tiny.display().to_string()],
            r#"{"name":"add","arguments":{}}"#,
            r#"{"name":"add","arguments":{"a":2,"b":3}}"#,
        ),
    ];
    println!("| server | spawn → initialize answered, p50 / p90 | tools/list p50 / p99 | tools/call (rejected by schema) p50 / p99 | tools/call (succeeds) p50 / p99 |");
    println!("|---|---|---|---|---|");
    for (name, cmd, rejected, succeeds) in servers {
        let (s50, s90) = spawn_to_answer(&cmd, home.path(), 20);
        let mut s = Session::spawn(&cmd, home.path());
        s.initialize();
        std::thread::sleep(Duration::from_millis(200));
        let (l50, l99) = round_trips(&mut s, "tools/list", "{}", 2000);
        let (r50, r99) = round_trips(&mut s, "tools/call", rejected, 2000);
        let ok = if succeeds.is_empty() {
            "—".to_string()
        } else {
            let (o50, o99) = round_trips(&mut s, "tools/call", succeeds, 2000);
            format!("{} / {}", us(o50), us(o99))
        };
        s.end();
        println!(
            "| {name} | {} / {} | {} / {} | {} / {} | {ok} |",
            ms(s50),
            ms(s90),
            us(l50),
            us(l99),
            us(r50),
            us(r99)
        );
    }
}

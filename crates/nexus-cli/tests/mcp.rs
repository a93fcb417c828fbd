//! `nexus mcp serve` driven by the official Python `mcp` client (PyPI), as
//! Claude Code would drive it: initialize, list tools, `mesh_send` to a
//! second peer through a real broker; the second peer's sessions read with
//! `mesh_inbox`, a session killed before `mesh_ack` gets the message again,
//! one after the ack does not. Every byte the server writes on stdout is
//! JSON-RPC. New messages are pushed (`notifications/claude/channel`, and
//! resource updates to subscribers).

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::mesh::{connected, daemon, team};
use common::Run;
use serde_json::{json, Value};

/// The Python with `mcp` installed (scripts/test makes target/mcpenv).
fn python() -> Option<PathBuf> {
    let p = std::env::var_os("NEXUS_TEST_MCP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/mcpenv/bin/python")
        });
    let ok = Command::new(&p)
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "no Python with the `mcp` package at {} (scripts/test makes it)",
        p.display()
    );
    if !ok {
        println!("SKIP the Python mcp client is not installed (python3 -m venv target/mcpenv && target/mcpenv/bin/pip install mcp==2.3.0)");
    }
    ok.then_some(p)
}

fn driver() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mcp_session.py")
}

/// The spec for one session of `r`'s `nexus mcp serve`, its stdout also
/// copied to `tee`.
fn spec(r: &Run, tee: &Path, steps: Value) -> String {
    // A tee that writes the file before passing a line on, so the copy is
    // complete by the time the client has read it.
    let tee_py = "import sys\nf = open(sys.argv[1], 'ab')\nfor l in sys.stdin.buffer:\n    f.write(l); f.flush()\n    sys.stdout.buffer.write(l); sys.stdout.flush()\n";
    let mut env = serde_json::Map::new();
    env.insert("NEXUS_HOME".into(), json!(r.home.path().join("nexus")));
    env.insert("HOME".into(), json!(r.home.path()));
    for (k, v) in &r.env {
        env.insert(k.clone(), json!(v));
    }
    env.insert("TEE".into(), json!(tee_py));
    json!({
        "command": "sh",
        "args": ["-c", format!("'{}' mcp serve | python3 -c \"$TEE\" '{}'", env!("CARGO_BIN_EXE_nexus"), tee.display())],
        "env": env,
        "steps": steps,
    })
    .to_string()
}

/// Runs a whole session; its lines.
fn session(py: &Path, spec: &str) -> Vec<Value> {
    let o = Command::new(py)
        .arg(driver())
        .arg(spec)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "session failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `nexus mcp serve` processes of `home` still alive.
fn servers_of(home: &Path) -> Vec<u32> {
    common::processes_of(home, |_, cmd| cmd.contains(" serve"))
}

fn all_json_rpc(tee: &Path) -> usize {
    let text = std::fs::read_to_string(tee).unwrap();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        assert_eq!(v["jsonrpc"], "2.0", "{line}");
    }
    text.lines().count()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_mcp_client_sends_reads_and_acks_at_least_once() {
    let Some(py) = python() else { return };
    let (_broker, _url, alice, mut members) = team(&["bob"]).await;
    let bob = members.remove(0);
    // Bob's daemon holds his connection and inbox, as on a real machine.
    let _bob_daemon = daemon(&bob).await;
    connected(&bob).await;
    let tmp = tempfile::tempdir().unwrap();
    let tee_a = tmp.path().join("alice.out");
    let tee_b = tmp.path().join("bob.out");

    // Alice: initialize, list tools, send to bob.
    let lines = session(
        &py,
        &spec(
            &alice,
            &tee_a,
            json!([
                ["initialize"],
                ["list_tools"],
                ["call", "mesh_send", {"to": "bob", "text": "hello over MCP"}],
                ["call", "mesh_send", {"to": "nobody-here", "text": "x"}],
                ["call", "mesh_inbox", {"limit": 0}],
            ]),
        ),
    );
    assert_eq!(lines[0]["protocol_version"], "2025-11-25", "{lines:?}");
    assert_eq!(lines[0]["server"], "nexus");
    let tools: Vec<&str> = lines[1]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for t in [
        "mesh_peers",
        "mesh_send",
        "mesh_inbox",
        "mesh_ack",
        "mesh_topic_send",
        "mesh_topic_history",
        "set_status",
        "set_summary",
        "ask",
        "chat",
    ] {
        assert!(tools.contains(&t), "{t} missing from {tools:?}");
    }
    assert_eq!(lines[2]["error"], false, "{:?}", lines[2]);
    assert!(lines[2]["data"]["sent"].is_string());
    // Errors are one schema with the ErrorCode names.
    assert_eq!(lines[3]["error"], true);
    assert_eq!(lines[3]["data"]["error"]["code"], "mesh", "{:?}", lines[3]);
    assert!(lines[3]["data"]["error"]["message"].is_string());
    assert_eq!(lines[4]["error"], true, "{:?}", lines[4]);
    assert_eq!(
        lines[4]["data"]["error"]["code"], "invalid_request",
        "{:?}",
        lines[4]
    );
    assert!(all_json_rpc(&tee_a) >= 5);

    // Bob's first session reads the message and is killed before its ack.
    let first = spec(
        &bob,
        &tee_b,
        json!([["initialize"], ["call", "mesh_inbox", {}], ["hold"]]),
    );
    let mut child = std::process::Command::new(&py)
        .arg(driver())
        .arg(&first)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = common::mesh::Lines::of(child.stdout.take().unwrap());
    let got = lines.wait_for("holding", 60);
    let inbox: Value = serde_json::from_str(&got[got.len() - 2]).unwrap();
    let messages = inbox["data"]["messages"].as_array().unwrap().clone();
    let hello: Vec<&Value> = messages
        .iter()
        .filter(|m| m["text"] == "hello over MCP")
        .collect();
    assert_eq!(hello.len(), 1, "{inbox}");
    assert_eq!(hello[0]["from"], "owner");
    let id = hello[0]["id"].as_i64().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // The server it started sees its stdin close and exits within 2 s.
    let bob_home = bob.home.path().join("nexus");
    let deadline = Instant::now() + Duration::from_secs(3);
    while !servers_of(&bob_home).is_empty() {
        assert!(
            Instant::now() < deadline,
            "nexus mcp serve outlived its client"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // The next session gets it again (never acked), acks it, and one
    // after that does not see it; it sees what arrives meanwhile, pushed.
    let lines = session(
        &py,
        &spec(
            &bob,
            &tee_b,
            json!([
                ["initialize"],
                ["call", "mesh_inbox", {}],
                ["call", "mesh_ack", {"ids": [id]}],
                ["call", "mesh_inbox", {}],
            ]),
        ),
    );
    let again = lines[1]["data"]["messages"].as_array().unwrap();
    assert!(
        again.iter().any(|m| m["id"] == id),
        "redelivered after the kill: {:?}",
        lines[1]
    );
    assert_eq!(lines[2]["data"]["acked"], 1, "{:?}", lines[2]);
    let after = lines[3]["data"]["messages"].as_array().unwrap();
    assert!(!after.iter().any(|m| m["id"] == id), "{:?}", lines[3]);

    // Pushed: a subscriber hears of a new message, and Claude Code's
    // channel notification carries it.
    let py2 = py.clone();
    let watch = spec(
        &bob,
        &tee_b,
        json!([
            ["initialize"],
            ["subscribe", "nexus://mesh/inbox"],
            ["wait_update", 30],
            ["call", "mesh_inbox", {}]
        ]),
    );
    let watcher = std::thread::spawn(move || session(&py2, &watch));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let o = alice.run(&["mesh", "send", "bob", "pushed to you"]).await;
    assert!(o.status.success(), "{}", common::stderr(&o));
    let lines = watcher.join().unwrap();
    assert_eq!(lines[2]["updated"], "nexus://mesh/inbox", "{lines:?}");
    let text = std::fs::read_to_string(&tee_b).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("notifications/claude/channel") && l.contains("pushed to you")),
        "no channel notification in {text}"
    );
    assert!(all_json_rpc(&tee_b) > 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_exits_on_stdin_eof_and_logs_stay_off_stdout() {
    let r = Run::new();
    let mut c = r.cmd(&["mcp", "serve"]);
    let started = Instant::now();
    let o = tokio::task::spawn_blocking(move || {
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"t","version":"1"}}}}}}"#).unwrap();
        writeln!(stdin, "this is not JSON").unwrap();
        writeln!(stdin, r#"{{"jsonrpc":"2.0","id":2,"method":"tools/list"}}"#).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let out = String::from_utf8_lossy(&o.stdout);
    for line in out.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(v["jsonrpc"], "2.0");
    }
    assert!(out.contains("\"protocolVersion\":\"2025-11-25\""), "{out}");
    assert!(r.home.path().join("nexus/logs/mcp.jsonl").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn speaks_2026_07_28_without_initialize() {
    let r = Run::new();
    let mut c = r.cmd(&["mcp", "serve"]);
    let o = tokio::task::spawn_blocking(move || {
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},"io.modelcontextprotocol/clientCapabilities":{}}"#;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, r#"{{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{{{meta}}}}}"#).unwrap();
        writeln!(stdin, r#"{{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{{{meta}}}}}"#).unwrap();
        writeln!(stdin, r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"mesh_ack","arguments":{{"ids":[]}},{meta}}}}}"#).unwrap();
        // Give the answers time before stdin closes.
        std::thread::sleep(Duration::from_millis(800));
        drop(stdin);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let answers: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by_id = |id: u64| {
        answers
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    let discover = by_id(1);
    let versions = discover["result"]["supportedVersions"].to_string();
    assert!(
        versions.contains("2026-07-28") && versions.contains("2025-11-25"),
        "{discover}"
    );
    assert_eq!(
        discover["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "nexus",
        "{discover}"
    );
    let tools = by_id(2);
    assert!(
        tools["result"]["tools"]
            .as_array()
            .is_some_and(|t| t.len() == 10),
        "{tools}"
    );
    let call = by_id(3);
    assert_eq!(call["result"]["isError"], true, "{call}");
    assert_eq!(
        call["result"]["structuredContent"]["error"]["code"], "invalid_request",
        "{call}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn approval_modes_bound_the_tools_and_every_decision_is_audited() {
    let r = Run::new();
    let mut c = r.cmd(&["mcp", "serve", "--approval-mode", "read-only"]);
    let o = tokio::task::spawn_blocking(move || {
        let mut child = c
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"t","version":"1"}}}}}}"#).unwrap();
        writeln!(stdin, r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#).unwrap();
        writeln!(stdin, r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"mesh_send","arguments":{{"to":"bob","text":"hi"}}}}}}"#).unwrap();
        writeln!(stdin, r#"{{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{{"name":"set_status","arguments":{{"text":"busy"}}}}}}"#).unwrap();
        std::thread::sleep(Duration::from_millis(800));
        drop(stdin);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let answers: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for id in [2, 3] {
        let a = answers.iter().find(|a| a["id"] == id).unwrap();
        assert_eq!(a["result"]["isError"], true, "{a}");
        let e = &a["result"]["structuredContent"]["error"];
        assert_eq!(e["code"], "auth", "{a}");
        assert!(e["message"].as_str().unwrap().contains("read-only"), "{a}");
    }
    let audit = std::fs::read_to_string(r.home.path().join("nexus/logs/audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 2, "{audit}");
    assert!(audit.contains("\"actor\":\"mcp\"") && audit.contains("\"decision\":\"deny\""));
    let o = r.run(&["audit", "verify", "--json"]).await;
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["ok"].as_bool(), v["entries"].as_u64()),
        (Some(true), Some(2)),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_verbs_follow_the_approval_mode_and_a_prompt_without_a_terminal_is_no() {
    let r = Run::new();
    let home = r.home.path().join("nexus");
    let o = r.run(&["--approval-mode", "plan", "chat", "hello"]).await;
    assert_eq!(o.status.code(), Some(10), "{}", common::stderr(&o));
    assert!(
        common::stderr(&o).contains("approval mode `plan`"),
        "{}",
        common::stderr(&o)
    );
    let o = r
        .run(&["--approval-mode", "sometimes", "chat", "hello"])
        .await;
    assert_eq!(o.status.code(), Some(3), "{}", common::stderr(&o));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("policy.yaml"),
        "rules:\n  - {resource: models, verb: ask, decision: prompt, reason: asking costs money}\n",
    )
    .unwrap();
    // stdin is not a terminal here: the prompt is a no.
    let o = r.run(&["ask", "hello"]).await;
    assert_eq!(o.status.code(), Some(10), "{}", common::stderr(&o));
    assert!(
        common::stderr(&o).contains("no terminal"),
        "{}",
        common::stderr(&o)
    );
    let o = r.run(&["audit", "verify"]).await;
    assert!(
        common::stdout(&o).contains("2 entries"),
        "{}",
        common::stdout(&o)
    );
}

//! The MCP registry against real servers: `@modelcontextprotocol/server-everything`
//! from npm (run through `npx`), a tiny server on the official Python SDK,
//! one that hangs in `initialize` and one that prints garbage. List, call,
//! deny (checked before anything starts), `test` bounded by 10 s, no
//! process left behind, import/export keeping unknown keys, install-claude,
//! and extensions that offer tools listed as servers.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;

use common::{ok, stderr, Run};
use serde_json::{json, Value};

fn servers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/mcp-servers")
}

/// The Python with `mcp`, and whether npm's server-everything is installed.
fn tools() -> Option<PathBuf> {
    let py = std::env::var_os("NEXUS_TEST_MCP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/mcpenv/bin/python")
        });
    let ok = std::process::Command::new(&py)
        .args(["-c", "import mcp"])
        .output()
        .is_ok_and(|o| o.status.success())
        && servers()
            .join("node_modules/.bin/mcp-server-everything")
            .exists();
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "the MCP test servers are not installed (scripts/test installs them)"
    );
    if !ok {
        println!(
            "SKIP the MCP test servers are not installed (target/mcpenv with mcp; npm ci in {})",
            servers().display()
        );
    }
    ok.then_some(py)
}

/// Live processes started under `home` whose command line names `marker`.
fn leftovers(home: &Path, marker: &str) -> Vec<u32> {
    common::processes_of(home, |_, cmd| cmd.contains(marker))
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_from_npm_and_pypi_list_call_deny_and_leave_nothing_running() {
    let Some(py) = tools() else { return };
    let r = Run::new();
    let home = r.home.path().join("nexus");
    let dir = servers();
    let d = dir.to_str().unwrap();
    let p = py.to_str().unwrap();
    let tiny = dir.join("tiny_server.py");
    ok(
        &r,
        &[
            "mcp",
            "add",
            "everything",
            "--",
            "npx",
            "--prefix",
            d,
            "--no-install",
            "mcp-server-everything",
        ],
    )
    .await;
    ok(&r, &["mcp", "add", "tiny", "--", p, tiny.to_str().unwrap()]).await;

    // test: version, latency, tool count.
    let report: Value =
        serde_json::from_str(&ok(&r, &["mcp", "test", "everything", "--json"]).await).unwrap();
    assert_eq!(report["protocol_version"], "2025-11-25", "{report}");
    assert!(report["tools"].as_u64().unwrap() >= 5, "{report}");
    assert!(report["server"].as_str().unwrap().contains("everything"));
    let report: Value =
        serde_json::from_str(&ok(&r, &["mcp", "test", "tiny", "--json"]).await).unwrap();
    assert_eq!(report["tools"], 2, "{report}");
    let human = ok(&r, &["mcp", "test", "tiny"]).await;
    assert!(
        human.contains("tiny: ok") && human.contains("2 tool(s)"),
        "{human}"
    );

    // List tools and call one, on each.
    let listed: Value =
        serde_json::from_str(&ok(&r, &["mcp", "tools", "everything", "--json"]).await).unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "echo"),
        "{listed}"
    );
    let echoed: Value = serde_json::from_str(
        &ok(
            &r,
            &[
                "mcp",
                "call",
                "everything",
                "echo",
                r#"{"message": "hello from nexus"}"#,
            ],
        )
        .await,
    )
    .unwrap();
    assert!(echoed.to_string().contains("hello from nexus"), "{echoed}");
    let sum: Value = serde_json::from_str(
        &ok(&r, &["mcp", "call", "tiny", "add", r#"{"a": 2, "b": 40}"#]).await,
    )
    .unwrap();
    assert_eq!(sum["structuredContent"]["result"], 42, "{sum}");

    // The npx-wrapped tree (npx, sh, node) is gone once a command returns.
    assert!(leftovers(&home, "mcp-server-everything").is_empty());
    assert!(leftovers(&home, "tiny_server.py").is_empty());

    // Deny wins, and is checked before the server is even started.
    ok(&r, &["mcp", "allow", "tiny", "add"]).await;
    ok(&r, &["mcp", "deny", "tiny", "add"]).await;
    let log = home.join("logs/mcp-tiny.log");
    let before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let o = r
        .run(&["mcp", "call", "tiny", "add", r#"{"a": 1, "b": 1}"#])
        .await;
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("denied by your policy"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0),
        before
    );
    let listed: Value =
        serde_json::from_str(&ok(&r, &["mcp", "tools", "tiny", "--json"]).await).unwrap();
    let add = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "add")
        .unwrap()
        .clone();
    assert_eq!(add["allowed"], false);
    // `shout` is allowed? No: once anything is allowed only the allowed
    // ones are, and `add` moved to deny; the allow list is now empty.
    let shouted = ok(
        &r,
        &["mcp", "call", "tiny", "shout", r#"{"text": "quiet"}"#],
    )
    .await;
    assert!(shouted.contains("QUIET"), "{shouted}");
    ok(&r, &["mcp", "deny", "everything", "echo"]).await;
    let o = r
        .run(&["mcp", "call", "everything", "echo", r#"{"message": "x"}"#])
        .await;
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));

    let list: Value = serde_json::from_str(&ok(&r, &["mcp", "list", "--json"]).await).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    ok(&r, &["mcp", "remove", "everything"]).await;
    let o = r.run(&["mcp", "test", "everything"]).await;
    assert!(
        stderr(&o).contains("no MCP server `everything`"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_hangs_or_prints_garbage_fails_within_10_s() {
    let Some(py) = tools() else { return };
    let r = Run::new();
    let home = r.home.path().join("nexus");
    let dir = servers();
    let p = py.to_str().unwrap();
    ok(
        &r,
        &[
            "mcp",
            "add",
            "hang",
            "--",
            p,
            dir.join("hang_server.py").to_str().unwrap(),
        ],
    )
    .await;
    ok(
        &r,
        &[
            "mcp",
            "add",
            "garbage",
            "--",
            p,
            dir.join("garbage_server.py").to_str().unwrap(),
        ],
    )
    .await;

    let started = Instant::now();
    let o = r.run(&["mcp", "test", "hang"]).await;
    let took = started.elapsed();
    assert!(!o.status.success());
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(
        stderr(&o).contains("did not complete initialize"),
        "{}",
        stderr(&o)
    );
    // It ignored SIGTERM and its stdin's end; it is gone all the same.
    assert!(leftovers(&home, "hang_server.py").is_empty());

    let started = Instant::now();
    let o = r.run(&["mcp", "test", "garbage"]).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(stderr(&o).contains("not JSON-RPC"), "{}", stderr(&o));
    let log = std::fs::read_to_string(home.join("logs/mcp-garbage.log")).unwrap();
    assert!(log.contains("garbage line 0"), "{log}");
    assert!(leftovers(&home, "garbage_server.py").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn import_export_keep_unknown_keys_and_install_claude_merges() {
    let r = Run::new();
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("in.json");
    let original = json!({
        "mcpServers": {
            "fs": {"type": "stdio", "command": "npx", "args": ["-y", "@x/fs"], "env": {"ROOT": "/tmp"}, "x-custom": {"keep": [1, 2]}},
            "remote": {"type": "http", "url": "http://127.0.0.1:1/mcp", "headers": {"A": "b"}}
        },
        "topLevelUnknown": {"kept": true}
    });
    std::fs::write(&source, original.to_string()).unwrap();
    ok(&r, &["mcp", "import", source.to_str().unwrap()]).await;
    ok(&r, &["mcp", "deny", "fs", "write_file"]).await;
    let out = tmp.path().join("out.json");
    std::fs::write(
        &out,
        r#"{"mcpServers": {"mine": {"command": "m"}}, "projectSetting": 7}"#,
    )
    .unwrap();
    ok(&r, &["mcp", "export", out.to_str().unwrap()]).await;
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(exported["mcpServers"]["fs"], original["mcpServers"]["fs"]);
    assert_eq!(
        exported["mcpServers"]["remote"],
        original["mcpServers"]["remote"]
    );
    assert_eq!(exported["mcpServers"]["mine"]["command"], "m");
    assert_eq!(exported["projectSetting"], 7);
    assert_eq!(exported["topLevelUnknown"], original["topLevelUnknown"]);
    assert!(
        exported.get("nexusPolicy").is_none(),
        "the policy stays home"
    );
    // HTTP servers are kept and listed.
    let list: Value = serde_json::from_str(&ok(&r, &["mcp", "list", "--json"]).await).unwrap();
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["name"] == "remote" && s["type"] == "http"));
    // Garbage in: refused, and the registry unchanged.
    std::fs::write(&source, "{not json").unwrap();
    let o = r.run(&["mcp", "import", source.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));

    // install-claude writes the project's .mcp.json and keeps its keys.
    let project = tmp.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::write(
        project.join(".mcp.json"),
        r#"{"mcpServers": {"other": {"command": "o"}}, "x": 1}"#,
    )
    .unwrap();
    let mut c = r.cmd(&["mcp", "install-claude"]);
    c.current_dir(&project);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(project.join(".mcp.json")).unwrap()).unwrap();
    assert_eq!(v["x"], 1);
    assert_eq!(v["mcpServers"]["other"]["command"], "o");
    assert_eq!(v["mcpServers"]["nexus"]["args"], json!(["mcp", "serve"]));
    assert_eq!(
        v["mcpServers"]["nexus"]["command"],
        env!("CARGO_BIN_EXE_nexus")
    );
    assert!(v["mcpServers"]["nexus"]["env"]["NEXUS_HOME"].is_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn extensions_that_offer_tools_are_listed_and_called_as_servers() {
    let r = Run::new();
    let example =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/extensions/word-count");
    let mut rr = r;
    rr.env
        .push(("NEXUS_VAULT_PASSPHRASE".into(), "mcp ext".into()));
    ok(
        &rr,
        &[
            "ext",
            "install",
            example.to_str().unwrap(),
            "--allow-unsigned",
        ],
    )
    .await;
    let list: Value = serde_json::from_str(&ok(&rr, &["mcp", "list", "--json"]).await).unwrap();
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "ext:word-count" && s["type"] == "extension"),
        "{list}"
    );
    let tools: Value =
        serde_json::from_str(&ok(&rr, &["mcp", "tools", "ext:word-count", "--json"]).await)
            .unwrap();
    assert_eq!(tools[0]["name"], "count", "{tools}");
    let counted = ok(
        &rr,
        &[
            "mcp",
            "call",
            "ext:word-count",
            "count",
            r#"{"text": "one two three"}"#,
        ],
    )
    .await;
    assert!(counted.contains('3'), "{counted}");
}

/// Kills the HTTP server when the test ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_server_from_npm_is_tested_listed_called_and_denied() {
    if tools().is_none() {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server =
        servers().join("node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    let _http = Killed(
        std::process::Command::new("node")
            .arg(&server)
            .arg("streamableHttp")
            .env("PORT", port.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the HTTP server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = Run::new();
    let url = format!("http://127.0.0.1:{port}/mcp");
    ok(&r, &["mcp", "add", "web", "--url", &url]).await;
    let report: Value =
        serde_json::from_str(&ok(&r, &["mcp", "test", "web", "--json"]).await).unwrap();
    assert_eq!(report["protocol_version"], "2025-11-25", "{report}");
    assert!(report["tools"].as_u64().unwrap() >= 5, "{report}");
    let listed: Value =
        serde_json::from_str(&ok(&r, &["mcp", "tools", "web", "--json"]).await).unwrap();
    assert!(listed
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "echo"));
    let echoed = ok(
        &r,
        &["mcp", "call", "web", "echo", r#"{"message": "over http"}"#],
    )
    .await;
    assert!(echoed.contains("over http"), "{echoed}");
    ok(&r, &["mcp", "deny", "web", "echo"]).await;
    let o = r
        .run(&["mcp", "call", "web", "echo", r#"{"message": "x"}"#])
        .await;
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    // A URL where nothing answers fails fast, with the reason.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ok(
        &r,
        &[
            "mcp",
            "add",
            "dead",
            "--url",
            &format!("http://127.0.0.1:{dead}/mcp"),
        ],
    )
    .await;
    let started = Instant::now();
    let o = r.run(&["mcp", "test", "dead"]).await;
    assert!(!o.status.success() && started.elapsed() < Duration::from_secs(10));
    assert!(
        stderr(&o).contains("did not complete initialize"),
        "{}",
        stderr(&o)
    );
}

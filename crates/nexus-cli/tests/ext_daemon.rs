//! The extension host as nexusd's service, as a user drives it: calls go to
//! the processes the daemon keeps; a crash restarts one without touching
//! the other; uninstall and `daemon stop` leave no process behind (checked
//! in /proc); permission questions wait in the daemon and are answered from
//! another terminal, or time out; plugins reach their store over HTTP on the
//! daemon's socket with their own token and nobody else's; archives
//! install, signed or refused.

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;

use common::mesh::daemon;
use common::{ok, stderr, Run};
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../nexus-ext/tests/fixtures")
        .join(name)
}

fn copy(name: &str, to: &Path) -> PathBuf {
    let dir = to.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(fixture(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    dir
}

fn runner() -> Run {
    let mut r = Run::new();
    r.env
        .push(("NEXUS_VAULT_PASSPHRASE".into(), "ext daemon tests".into()));
    r
}

fn home(r: &Run) -> PathBuf {
    r.home.path().join("nexus")
}

async fn install(r: &Run, name: &str, tmp: &Path) {
    let dir = copy(name, tmp);
    ok(
        r,
        &["ext", "install", dir.to_str().unwrap(), "--allow-unsigned"],
    )
    .await;
}

async fn call(r: &Run, id: &str, method: &str, params: Value) -> Value {
    let out = ok(r, &["ext", "call", id, method, &params.to_string()]).await;
    serde_json::from_str(&out).unwrap()
}

/// Every live process started for this home's extensions (they and their
/// descendants inherit `NEXUS_EXTENSION_ID` and this `NEXUS_HOME`).
fn extension_processes(home: &Path) -> Vec<u32> {
    common::processes_of(home, |env, _| {
        env.iter().any(|v| v.starts_with(b"NEXUS_EXTENSION_ID="))
    })
}

fn alive(pid: u64) -> bool {
    !common::gone(pid as u32)
}

/// The pids `ext list --json` shows, once every enabled extension runs.
async fn running(r: &Run, ids: &[&str]) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list: Value = serde_json::from_str(&ok(r, &["ext", "list", "--json"]).await).unwrap();
        let pids: Vec<Option<u64>> = ids
            .iter()
            .map(|id| {
                list.as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["id"] == *id)
                    .and_then(|e| e["pid"].as_u64())
            })
            .collect();
        if pids.iter().all(Option::is_some) {
            return pids.into_iter().flatten().collect();
        }
        assert!(Instant::now() < deadline, "not all running: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_keeps_extensions_and_leaves_no_process_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let r = runner();
    install(&r, "notes", tmp.path()).await;
    install(&r, "stubborn", tmp.path()).await;
    let guard = daemon(&r).await;
    let pids = running(&r, &["notes", "stubborn"]).await;
    let status = ok(&r, &["daemon", "status"]).await;
    assert!(
        status.contains(&format!("extensions: notes (pid {})", pids[0])),
        "{status}"
    );

    // Calls go to the processes the daemon keeps.
    assert_eq!(call(&r, "notes", "pid", json!({})).await, json!(pids[0]));
    assert_eq!(call(&r, "notes", "pid", json!({})).await, json!(pids[0]));
    assert_eq!(call(&r, "stubborn", "pid", json!({})).await, json!(pids[1]));
    let grandchild = call(&r, "stubborn", "fork", json!({}))
        .await
        .as_u64()
        .unwrap();
    assert!(alive(grandchild));
    let procs = extension_processes(&home(&r));
    assert!(procs.len() >= 3, "{procs:?}");

    // A crash: the call fails, the extension comes back with a new
    // process, and the other one never noticed.
    let o = r.run(&["ext", "call", "notes", "crash"]).await;
    assert!(!o.status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let new_pid = loop {
        let o = r.run(&["ext", "call", "notes", "pid"]).await;
        if o.status.success() {
            break serde_json::from_slice::<Value>(&o.stdout).unwrap();
        }
        assert!(Instant::now() < deadline, "{}", stderr(&o));
    };
    assert_ne!(new_pid, json!(pids[0]));
    assert_eq!(call(&r, "stubborn", "pid", json!({})).await, json!(pids[1]));
    let list: Value = serde_json::from_str(&ok(&r, &["ext", "list", "--json"]).await).unwrap();
    assert_eq!(list[0]["restarts"], 1, "{list}");

    // Garbage on stdout is logged and counted; the extension keeps going.
    assert_eq!(
        call(&r, "notes", "garbage", json!({})).await,
        json!("after the noise")
    );

    // Uninstalling the stubborn one (ignores SIGTERM, forked a grandchild
    // that ignores it too) leaves neither.
    ok(&r, &["ext", "uninstall", "stubborn"]).await;
    assert!(!alive(pids[1]) && !alive(grandchild));
    let left = extension_processes(&home(&r));
    assert_eq!(left, [new_pid.as_u64().unwrap() as u32], "only notes runs");

    // Installed again while the daemon runs: it starts at once.
    install(&r, "stubborn", tmp.path()).await;
    running(&r, &["stubborn"]).await;
    let grandchild = call(&r, "stubborn", "fork", json!({}))
        .await
        .as_u64()
        .unwrap();
    // Disabled: it stops; enabled: it runs again.
    ok(&r, &["ext", "disable", "stubborn"]).await;
    assert!(!alive(grandchild));
    let o = r.run(&["ext", "call", "stubborn", "pid"]).await;
    assert!(stderr(&o).contains("disabled"), "{}", stderr(&o));
    ok(&r, &["ext", "enable", "stubborn"]).await;
    running(&r, &["stubborn"]).await;
    let grandchild = call(&r, "stubborn", "fork", json!({}))
        .await
        .as_u64()
        .unwrap();

    // `daemon stop`: nothing of any extension survives.
    ok(&r, &["daemon", "stop"]).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while !extension_processes(&home(&r)).is_empty() {
        assert!(
            Instant::now() < deadline,
            "still running after daemon stop: {:?}",
            extension_processes(&home(&r))
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!alive(grandchild));
    drop(guard);

    // Without a daemon a call starts the extension for that call only.
    assert!(call(&r, "notes", "pid", json!({})).await.is_u64());
    assert!(extension_processes(&home(&r)).is_empty());
}

/// One HTTP/1.1 request over the daemon's socket: status and body.
fn http(sock: &Path, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = std::os::unix::net::UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before it reads a large body.
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let at = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(out.len(), |p| p + 4);
    (status, out[at..].to_vec())
}

fn error_code(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or_default();
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_reach_only_their_own_store_over_http_with_their_token() {
    let tmp = tempfile::tempdir().unwrap();
    let r = runner();
    install(&r, "notes", tmp.path()).await;
    let _guard = daemon(&r).await;
    running(&r, &["notes"]).await;
    let sock = home(&r).join("nexusd.sock");

    // The extension writes over JSON-RPC...
    call(
        &r,
        "notes",
        "note.add",
        json!({"key": "k", "text": "from rpc"}),
    )
    .await;
    let issue = |id: &'static str| {
        let r = &r;
        async move {
            let v: Value =
                serde_json::from_str(&ok(r, &["ext", "token", "issue", id, "--json"]).await)
                    .unwrap();
            v["token"].as_str().unwrap().to_string()
        }
    };
    let notes = issue("notes").await;
    let other = issue("other-plugin").await;

    // ... and a plugin with its token reads it over HTTP.
    let (st, body) = http(&sock, "GET", "/api/v1/store/k", Some(&notes), b"");
    assert_eq!((st, body.as_slice()), (200, b"from rpc".as_slice()));
    // No token, a wrong one, a tampered one: 401, with the reason.
    let (st, body) = http(&sock, "GET", "/api/v1/store/k", None, b"");
    assert_eq!((st, error_code(&body).as_str()), (401, "unauthorized"));
    assert!(String::from_utf8_lossy(&body).contains("Bearer"));
    let (st, _) = http(
        &sock,
        "GET",
        "/api/v1/store/k",
        Some("nxp.notes.wrong"),
        b"",
    );
    assert_eq!(st, 401);
    let mut tampered = notes.clone();
    tampered.push('x');
    assert_eq!(
        http(&sock, "GET", "/api/v1/store", Some(&tampered), b"").0,
        401
    );

    // Another plugin sees none of it, and its writes land in its own store.
    assert_eq!(
        http(&sock, "GET", "/api/v1/store/k", Some(&other), b"").0,
        404
    );
    assert_eq!(
        http(&sock, "PUT", "/api/v1/store/k", Some(&other), b"mine").0,
        204
    );
    let (_, body) = http(&sock, "GET", "/api/v1/store/k", Some(&notes), b"");
    assert_eq!(body, b"from rpc");
    let (_, body) = http(&sock, "GET", "/api/v1/store/k", Some(&other), b"");
    assert_eq!(body, b"mine");

    // Put, list, delete; keys with slashes and escapes.
    assert_eq!(
        http(
            &sock,
            "PUT",
            "/api/v1/store/a/b%20c",
            Some(&notes),
            b"\x00\xffbin"
        )
        .0,
        204
    );
    let (_, body) = http(&sock, "GET", "/api/v1/store/a/b%20c", Some(&notes), b"");
    assert_eq!(body, b"\x00\xffbin");
    let (st, body) = http(&sock, "GET", "/api/v1/store?prefix=a", Some(&notes), b"");
    assert_eq!(st, 200);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["keys"],
        json!(["a/b c"])
    );
    // The extension sees what the plugin wrote: one store per id.
    assert_eq!(
        call(&r, "notes", "note.list", json!({})).await,
        json!(["a/b c", "k"])
    );
    assert_eq!(
        http(&sock, "DELETE", "/api/v1/store/a/b%20c", Some(&notes), b"").0,
        204
    );
    assert_eq!(
        http(&sock, "DELETE", "/api/v1/store/a/b%20c", Some(&notes), b"").0,
        404
    );

    // The quota holds across writes, with a typed error.
    let six = vec![b'x'; 6_000_000];
    assert_eq!(
        http(&sock, "PUT", "/api/v1/store/big1", Some(&other), &six).0,
        204
    );
    let (st, body) = http(&sock, "PUT", "/api/v1/store/big2", Some(&other), &six);
    assert_eq!((st, error_code(&body).as_str()), (413, "quota_exceeded"));
    // A body beyond any quota is refused before it is read.
    let huge = vec![b'x'; 10_000_001];
    assert_eq!(
        http(&sock, "PUT", "/api/v1/store/huge", Some(&notes), &huge).0,
        413
    );

    // Garbage on the socket hurts nobody; the control API still answers.
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.write_all(b"\x16\x03\x01 garbage\r\n\r\n").unwrap();
    let mut sink = Vec::new();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.read_to_end(&mut sink);
    ok(&r, &["daemon", "status"]).await;

    // Revoked: refused at once; listed holders change.
    ok(&r, &["ext", "token", "revoke", "notes"]).await;
    assert_eq!(
        http(&sock, "GET", "/api/v1/store/k", Some(&notes), b"").0,
        401
    );
    let holders: Value =
        serde_json::from_str(&ok(&r, &["ext", "token", "list", "--json"]).await).unwrap();
    assert_eq!(holders, json!(["other-plugin"]));
}

/// Waits for one open question; its number.
async fn question(r: &Run) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let qs: Value =
            serde_json::from_str(&ok(r, &["ext", "approvals", "--json"]).await).unwrap();
        if let Some(q) = qs.as_array().and_then(|a| a.first()) {
            return q.clone();
        }
        assert!(Instant::now() < deadline, "no question came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn questions_wait_in_the_daemon_and_are_answered_from_another_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let r = runner();
    std::fs::create_dir_all(home(&r)).unwrap();
    // The timeout is a setting: 3 s here, 60 s by default.
    std::fs::write(
        home(&r).join("config.toml"),
        "[extensions]\napproval_timeout_secs = 3\n",
    )
    .unwrap();
    install(&r, "notes", tmp.path()).await;
    let _guard = daemon(&r).await;
    running(&r, &["notes"]).await;

    let ask = || {
        let c = r.cmd(&["ext", "call", "notes", "clipboard"]);
        tokio::task::spawn_blocking(move || {
            let mut c = c;
            c.output().unwrap()
        })
    };
    // Allowed from another terminal.
    let pending = ask();
    let q = question(&r).await;
    assert_eq!(q["extension"], "notes");
    assert_eq!(q["capability"], "clipboard:read");
    assert_eq!(q["detail"], "to paste");
    let n = q["n"].as_u64().unwrap().to_string();
    let table = ok(&r, &["ext", "approvals"]).await;
    assert!(
        table.contains("clipboard:read") && table.contains("to paste"),
        "{table}"
    );
    ok(&r, &["ext", "approve", &n]).await;
    let o = pending.await.unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        serde_json::from_slice::<Value>(&o.stdout).unwrap(),
        json!({"granted": true})
    );
    // Answered once only.
    let o = r.run(&["ext", "approve", &n]).await;
    assert!(stderr(&o).contains("no open question"), "{}", stderr(&o));

    // Denied.
    let pending = ask();
    let n = question(&r).await["n"].as_u64().unwrap().to_string();
    ok(&r, &["ext", "deny", &n]).await;
    let o = pending.await.unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("denied"), "{}", stderr(&o));

    // Nobody answers: denied when the setting's time is up.
    let started = Instant::now();
    let o = ask().await.unwrap();
    assert!(
        stderr(&o).contains("not approved within 3 s"),
        "{}",
        stderr(&o)
    );
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(r
        .run(&["ext", "approvals", "--json"])
        .await
        .stdout
        .starts_with(b"[]"));

    // Always: remembered, asked no more, listed and revocable.
    let pending = ask();
    let n = question(&r).await["n"].as_u64().unwrap().to_string();
    ok(&r, &["ext", "approve", &n, "--always"]).await;
    assert!(pending.await.unwrap().status.success());
    assert_eq!(
        call(&r, "notes", "clipboard", json!({})).await,
        json!({"granted": true})
    );
    let remembered = ok(&r, &["ext", "permissions", "notes", "--json"]).await;
    assert!(remembered.contains("clipboard:read"), "{remembered}");
    // Every decision is in the audit log.
    let audit = std::fs::read_to_string(home(&r).join("logs/ext-audit.jsonl")).unwrap();
    for d in ["\"allow\"", "\"deny\"", "\"timed_out\"", "\"allow_always\""] {
        assert!(audit.contains(d), "{d} missing from {audit}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn archives_install_signed_and_are_refused_when_tampered_or_hostile() {
    let tmp = tempfile::tempdir().unwrap();
    let r = runner();
    let dir = copy("notes", tmp.path());
    let d = dir.to_str().unwrap();
    // Signed by the user's key, trusted.
    let key = ok(&r, &["ext", "sign", d]).await;
    let pubfile = tmp.path().join("key.pub");
    std::fs::write(&pubfile, key).unwrap();
    ok(&r, &["ext", "trust", "add", pubfile.to_str().unwrap()]).await;
    let tar = |name: &str, from: &Path| {
        let out = tmp.path().join(name);
        let st = std::process::Command::new("tar")
            .arg("czf")
            .arg(&out)
            .arg("-C")
            .arg(from.parent().unwrap())
            .arg(from.file_name().unwrap())
            .status()
            .unwrap();
        assert!(st.success());
        out
    };
    let good = tar("notes.tar.gz", &dir);
    let o = r.run(&["ext", "install", good.to_str().unwrap()]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("signed by"), "{}", stderr(&o));
    assert_eq!(
        call(&r, "notes", "echo", json!({"a": 1})).await,
        json!({"a": 1})
    );
    // No scratch directories are left.
    let left: Vec<_> = std::fs::read_dir(home(&r).join("extensions"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Tampered after signing: refused as tampered.
    std::fs::write(dir.join("main.py"), "print('evil')\n").unwrap();
    let bad = tar("tampered.tar.gz", &dir);
    let o = r.run(&["ext", "install", bad.to_str().unwrap()]).await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("changed"), "{}", stderr(&o));

    // Not an archive at all; an archive that climbs out.
    let junk = tmp.path().join("junk.tar.gz");
    std::fs::write(&junk, b"\x1f\x8b garbage that is not gzip").unwrap();
    let o = r.run(&["ext", "install", junk.to_str().unwrap()]).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a readable"), "{}", stderr(&o));
    let evil = tmp.path().join("evil.tar");
    let st = std::process::Command::new("tar")
        .args([
            "cf",
            evil.to_str().unwrap(),
            "-P",
            "--transform",
            "s,^,../,",
        ])
        .arg("-C")
        .arg(tmp.path())
        .arg("key.pub")
        .status()
        .unwrap();
    assert!(st.success());
    let o = r.run(&["ext", "install", evil.to_str().unwrap()]).await;
    assert!(stderr(&o).contains("climbs out"), "{}", stderr(&o));
    assert!(!tmp.path().parent().unwrap().join("key.pub").exists());

    // A deep link to an archive installs it, and only under its own id.
    std::fs::write(
        dir.join("main.py"),
        std::fs::read(fixture("notes").join("main.py")).unwrap(),
    )
    .unwrap();
    let good = tar("again.tar.gz", &dir);
    let link = format!("nexus://install/notes?src={}", good.display());
    let o = r.run(&["open", &link, "--yes"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let link = format!("nexus://install/other?src={}", good.display());
    let o = r.run(&["open", &link, "--yes"]).await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not installing"), "{}", stderr(&o));
}

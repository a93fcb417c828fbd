//! Extensions through the CLI: signing both ways against Debian's
//! `minisign`, every refusal with its own message, install, call, list,
//! disable, uninstall.

#![allow(clippy::unwrap_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{stderr, stdout, Run};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../nexus-ext/tests/fixtures/notes")
}

fn copy(to: &Path) -> PathBuf {
    let dir = to.join("notes");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["nexus-extension.toml", "main.py"] {
        std::fs::copy(fixture().join(f), dir.join(f)).unwrap();
    }
    dir
}

fn minisign() -> bool {
    let ok = Command::new("minisign").arg("-v").output().is_ok();
    // scripts/test installs it, so under CI its absence is a failure, not a skip.
    assert!(
        ok || std::env::var_os("CI").is_none(),
        "minisign is not installed (apt install minisign)"
    );
    if !ok {
        println!("SKIP minisign is not installed (apt install minisign)");
    }
    ok
}

fn vault(r: &mut Run) {
    r.env
        .push(("NEXUS_VAULT_PASSPHRASE".into(), "ext tests".into()));
}

#[tokio::test(flavor = "multi_thread")]
async fn nexus_signatures_verify_with_minisign_and_minisign_signatures_install() {
    if !minisign() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut r = Run::new();
    vault(&mut r);
    let dir = copy(tmp.path());
    let d = dir.to_str().unwrap();

    // Unsigned: refused, with its own message.
    let o = r.run(&["ext", "install", d]).await;
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    assert!(stderr(&o).contains("not signed"), "{}", stderr(&o));

    // Nexus signs; minisign -V accepts the file with Nexus's public key.
    let o = r.run(&["ext", "sign", d]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let pubfile = tmp.path().join("nexus.pub");
    std::fs::write(&pubfile, stdout(&o)).unwrap();
    let v = Command::new("minisign")
        .args([
            "-V",
            "-p",
            pubfile.to_str().unwrap(),
            "-m",
            dir.join("main.py").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        v.status.success(),
        "minisign -V: {}",
        String::from_utf8_lossy(&v.stderr)
    );
    assert!(String::from_utf8_lossy(&v.stdout).contains("nexus-ext id=notes version=1.0.0"));

    // Not trusted yet: refused as an unknown key.
    let o = r.run(&["ext", "install", d]).await;
    assert!(stderr(&o).contains("not trusted"), "{}", stderr(&o));
    let o = r
        .run(&["ext", "trust", "add", pubfile.to_str().unwrap()])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r.run(&["ext", "install", d]).await;
    assert!(o.status.success(), "{}", stderr(&o));

    // Tampered: one byte appended.
    let mut text = std::fs::read(dir.join("main.py")).unwrap();
    text.push(b'#');
    std::fs::write(dir.join("main.py"), &text).unwrap();
    let o = r.run(&["ext", "install", d]).await;
    assert!(stderr(&o).contains("does not verify"), "{}", stderr(&o));
    text.pop();
    std::fs::write(dir.join("main.py"), &text).unwrap();

    // minisign signs (its own key, our trusted comment); Nexus installs.
    let (mpub, msec) = (tmp.path().join("m.pub"), tmp.path().join("m.key"));
    let g = Command::new("minisign")
        .args([
            "-G",
            "-W",
            "-f",
            "-p",
            mpub.to_str().unwrap(),
            "-s",
            msec.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    let o = r.run(&["ext", "sign", "--print-comment", d]).await;
    let comment = stdout(&o).trim().to_string();
    let sign = |comment: &str| {
        let s = Command::new("minisign")
            .args([
                "-S",
                "-s",
                msec.to_str().unwrap(),
                "-m",
                dir.join("main.py").to_str().unwrap(),
                "-t",
                comment,
            ])
            .output()
            .unwrap();
        assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    };
    sign(&comment);
    let o = r
        .run(&["ext", "trust", "add", mpub.to_str().unwrap()])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r.run(&["ext", "install", d]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    // A signature for another release (a moved comment) is refused.
    sign(&comment.replace("version=1.0.0", "version=0.9.0"));
    let o = r.run(&["ext", "install", d]).await;
    assert!(stderr(&o).contains("another release"), "{}", stderr(&o));

    // What installed runs: call it, list it, disable, uninstall.
    let o = r
        .run(&[
            "ext",
            "call",
            "notes",
            "note.add",
            r#"{"key":"k","text":"v"}"#,
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r
        .run(&["ext", "call", "notes", "note.get", r#"{"key":"k"}"#])
        .await;
    assert_eq!(stdout(&o).trim(), "\"v\"", "{}", stderr(&o));
    // Its permission request has no one to ask here: denied, and audited.
    let o = r.run(&["ext", "call", "notes", "clipboard"]).await;
    assert!(!o.status.success());
    let v: serde_json::Value =
        serde_json::from_slice(&r.run(&["ext", "list", "--json"]).await.stdout).unwrap();
    assert_eq!(v[0]["id"], "notes");
    assert_eq!(v[0]["enabled"], true);
    assert!(v[0]["signed_by"].is_string());
    let o = r.run(&["ext", "disable", "notes"]).await;
    assert!(o.status.success());
    let o = r.run(&["ext", "call", "notes", "echo"]).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = r.run(&["ext", "uninstall", "notes"]).await;
    assert!(o.status.success());
    let o = r.run(&["ext", "list", "--json"]).await;
    assert_eq!(stdout(&o).trim(), "[]");
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_installs_only_when_asked_and_warns() {
    let tmp = tempfile::tempdir().unwrap();
    let r = Run::new();
    let dir = copy(tmp.path());
    let o = r
        .run(&["ext", "install", "--allow-unsigned", dir.to_str().unwrap()])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("UNSIGNED"), "{}", stderr(&o));
    let o = r
        .run(&["ext", "call", "notes", "echo", r#"{"hello":1}"#])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"hello\": 1"), "{}", stdout(&o));
}

/// The example extensions in `examples/extensions/` work as the docs say.
#[tokio::test(flavor = "multi_thread")]
async fn the_example_extensions_work() {
    let r = Run::new();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/extensions");
    for name in ["word-count", "shout"] {
        let o = r
            .run(&[
                "ext",
                "install",
                "--allow-unsigned",
                examples.join(name).to_str().unwrap(),
            ])
            .await;
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
    let o = r
        .run(&[
            "ext",
            "call",
            "word-count",
            "count",
            r#"{"text":"one two three"}"#,
        ])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r
        .run(&[
            "ext",
            "call",
            "word-count",
            "count",
            r#"{"text":"four five"}"#,
        ])
        .await;
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"words": 2, "total": 5}),
        "the total is kept in its store"
    );
    let o = r
        .run(&[
            "ext",
            "call",
            "shout",
            "shout",
            r#"{"text":"quiet please"}"#,
        ])
        .await;
    assert_eq!(stdout(&o).trim(), "\"QUIET PLEASE\"", "{}", stderr(&o));
    // Its permission request: nobody to ask here, so denied.
    let o = r.run(&["ext", "call", "shout", "shout.permission"]).await;
    assert!(!o.status.success());
    assert!(stderr(&o).contains("clipboard:read"), "{}", stderr(&o));
}

/// `nexus open nexus://install/ID?src=DIR` installs only a signed package
/// whose id is the link's, only with a yes; `register-url-handler` writes
/// the XDG entry.
#[tokio::test(flavor = "multi_thread")]
async fn install_links_and_the_url_handler() {
    let tmp = tempfile::tempdir().unwrap();
    let mut r = Run::new();
    vault(&mut r);
    let dir = copy(tmp.path());
    let d = dir.to_str().unwrap();
    let link = format!("nexus://install/notes?src={}", d.replace('/', "%2F"));
    // No yes, no terminal: refused.
    let o = r.run(&["open", &link]).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("confirmation"), "{}", stderr(&o));
    // Unsigned: never through a link.
    let o = r.run(&["open", &link, "--yes"]).await;
    assert!(stderr(&o).contains("not signed"), "{}", stderr(&o));
    // Signed and trusted: installs.
    let o = r.run(&["ext", "sign", d]).await;
    let pubfile = tmp.path().join("k.pub");
    std::fs::write(&pubfile, stdout(&o)).unwrap();
    assert!(r
        .run(&["ext", "trust", "add", pubfile.to_str().unwrap()])
        .await
        .status
        .success());
    let o = r.run(&["open", &link, "--yes"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    // A link whose id is not the package's.
    let o = r
        .run(&[
            "open",
            &link.replace("install/notes", "install/other"),
            "--yes",
        ])
        .await;
    assert!(stderr(&o).contains("holds `notes`"), "{}", stderr(&o));
    let o = r.run(&["open", "https://example.com/x"]).await;
    assert_eq!(o.status.code(), Some(3));
    let o = r.run(&["open", "nexus://frobnicate/x"]).await;
    assert!(
        stderr(&o).contains("unknown nexus:// link"),
        "{}",
        stderr(&o)
    );

    let data = tmp.path().join("xdg");
    let mut c = r.cmd(&["ext", "register-url-handler"]);
    c.env("XDG_DATA_HOME", &data);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let entry =
        std::fs::read_to_string(data.join("applications/nexus-url-handler.desktop")).unwrap();
    assert!(
        entry.contains("MimeType=x-scheme-handler/nexus;"),
        "{entry}"
    );
    assert!(entry.contains(" open %u"), "{entry}");
}

//! The clipboard on a real X server (Xvfb): the system clipboard passes the
//! shared conformance suite, other X clients (`xclip`) see what it writes
//! and it sees theirs, and an extension reaches it only through
//! `nexus/clipboard.read|write` under its permissions.
//!
//! The test starts Xvfb, then runs itself again as a child process with
//! `DISPLAY` set (the environment of a running test cannot safely change).

#![allow(clippy::unwrap_used, missing_docs)]

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nexus_core::NexusHome;
use nexus_ext::clipboard::{self, Clipboard, SystemClipboard};
use nexus_ext::host::{self, Approver, Paths, Shared};
use nexus_ext::permissions::Answer;
use serde_json::json;

struct Xvfb(Child);

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts Xvfb on a free display; its name (`:N`).
fn xvfb() -> Option<(Xvfb, String)> {
    let present = Command::new("Xvfb").arg("-help").output().is_ok()
        && Command::new("xclip").arg("-version").output().is_ok();
    // scripts/test installs both, so under CI their absence is a failure.
    assert!(
        present || std::env::var_os("CI").is_none(),
        "Xvfb or xclip is not installed (apt install xvfb xclip)"
    );
    if !present {
        println!("SKIP Xvfb or xclip is not installed (apt install xvfb xclip)");
        return None;
    }
    // A display nobody uses (its lock file is absent); Xvfb makes it.
    let mut n = 90 + std::process::id() % 400;
    while Path::new(&format!("/tmp/.X{n}-lock")).exists() {
        n += 1;
    }
    let child = Command::new("Xvfb")
        .arg(format!(":{n}"))
        .args(["-nolisten", "tcp", "-screen", "0", "640x480x24"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let x = Xvfb(child);
    let socket = format!("/tmp/.X11-unix/X{n}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !Path::new(&socket).exists() {
        assert!(std::time::Instant::now() < deadline, "Xvfb did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((x, format!(":{n}")))
}

fn xclip_out(display: &str) -> String {
    let o = Command::new("xclip")
        .args(["-o", "-selection", "clipboard"])
        .env("DISPLAY", display)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn xclip_in(display: &str, text: &str) {
    let mut c = Command::new("xclip")
        .args(["-i", "-selection", "clipboard"])
        .env("DISPLAY", display)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    // xclip forks a server that holds the selection and returns; wait
    // until the X server says it owns the clipboard.
    c.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while xclip_out(display) != text {
        assert!(
            std::time::Instant::now() < deadline,
            "xclip never took the clipboard"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

struct Always;

#[async_trait::async_trait]
impl Approver for Always {
    async fn ask(&self, _: &str, _: &str, _: &str, _: Duration) -> Answer {
        Answer::Allow
    }
}

#[test]
fn the_system_clipboard_on_xvfb_and_extensions_behind_permissions() {
    if let Ok(display) = std::env::var("NEXUS_TEST_XVFB_DISPLAY") {
        return tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(on_the_display(display));
    }
    let Some((_x, display)) = xvfb() else { return };
    let o = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_system_clipboard_on_xvfb_and_extensions_behind_permissions",
            "--nocapture",
        ])
        .env("DISPLAY", &display)
        .env("NEXUS_TEST_XVFB_DISPLAY", &display)
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains("1 passed"),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

async fn on_the_display(display: String) {
    let system = Arc::new(SystemClipboard::default());
    clipboard::conformance::run(&*system);
    // Another X client sees what it wrote, and it sees theirs.
    system.write("from nexus ✓").unwrap();
    assert_eq!(xclip_out(&display), "from nexus ✓");
    xclip_in(&display, "from xclip");
    assert_eq!(system.read().unwrap(), "from xclip");

    // An extension, through the host, with its permissions.
    let tmp = tempfile::tempdir().unwrap();
    let home = NexusHome::at(tmp.path().join("nexus"));
    home.ensure().unwrap();
    let paths = Paths::new(home);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/notes");
    host::install(&paths, &fixture, &[], true).unwrap();
    let shared = Shared::with_clipboard(
        paths.clone(),
        Arc::new(Always),
        Duration::from_secs(5),
        nexus_ext::store::QUOTA,
        system.clone(),
    );
    let mut x = host::start(&shared, "notes").await.unwrap();
    let host_call = |method: &str, params: serde_json::Value| {
        x.call("host", json!({"method": method, "params": params}))
    };
    host_call(
        "nexus/clipboard.write",
        json!({"text": "written by an extension"}),
    )
    .await
    .unwrap();
    assert_eq!(xclip_out(&display), "written by an extension");
    xclip_in(&display, "pasted by the user");
    let read = host_call("nexus/clipboard.read", json!({})).await.unwrap();
    assert_eq!(read, json!({"text": "pasted by the user"}));
    let too_big = "x".repeat(host::MAX_CLIPBOARD + 1);
    let e = host_call("nexus/clipboard.write", json!({"text": too_big}))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("limited"), "{e}");
    x.stop().await;

    // Without the permission in its manifest: refused, clipboard untouched.
    let bare = tmp.path().join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::copy(fixture.join("main.py"), bare.join("main.py")).unwrap();
    let manifest = std::fs::read_to_string(fixture.join("nexus-extension.toml"))
        .unwrap()
        .replace("\"clipboard:read\", \"clipboard:write\"", "")
        .replace("id = \"notes\"", "id = \"bare\"");
    std::fs::write(bare.join("nexus-extension.toml"), manifest).unwrap();
    host::install(&paths, &bare, &[], true).unwrap();
    let mut y = host::start(&shared, "bare").await.unwrap();
    for (m, p) in [
        ("nexus/clipboard.read", json!({})),
        ("nexus/clipboard.write", json!({"text": "sneaky"})),
    ] {
        let e = y
            .call("host", json!({"method": m, "params": p}))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("clipboard"), "{e}");
    }
    assert_eq!(xclip_out(&display), "pasted by the user");
    y.stop().await;
}

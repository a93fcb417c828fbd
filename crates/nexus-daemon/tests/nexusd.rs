//! The `nexusd` binary as a service manager runs it: started, asked for
//! its status over the socket, refused a second time, stopped by SIGTERM.

#![allow(clippy::unwrap_used, missing_docs)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nexus_core::NexusHome;
use nexus_daemon::{call, Paths};

fn nexusd(home: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nexusd"));
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("NEXUS_HOME", home.join("nexus"))
        .env("NEXUS_VAULT_PASSPHRASE", "a test passphrase")
        .stdin(Stdio::null());
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn nexusd_runs_answers_refuses_a_twin_and_stops_on_sigterm() {
    let d = tempfile::tempdir().unwrap();
    let home = NexusHome::at(d.path().join("nexus"));
    let mut child = nexusd(d.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Ok(s) = call(&home, "status").await {
            break s;
        }
        assert!(Instant::now() < deadline, "nexusd did not answer");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status["pid"], child.id());
    let twin = nexusd(d.path()).output().unwrap();
    assert_eq!(twin.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&twin.stderr).contains("already running"));
    assert!(
        call(&home, "status").await.is_ok(),
        "the twin changed nothing"
    );
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(!Paths::of(&home).socket.exists());
    let out = Command::new(env!("CARGO_BIN_EXE_nexusd"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("nexusd "));
}

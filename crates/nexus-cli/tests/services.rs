//! `nexus services` against real child processes supervised by a real
//! nexusd: a crashing command backs off and ends up degraded (never given
//! up), a broker killed with SIGKILL comes back by itself, a restart never
//! binds a port twice, a stop leaves no process of the group behind, and
//! bad names and commands get clear errors.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::mesh::{daemon, peer};
use common::{stderr, Run};
use serde_json::Value;

async fn status(r: &Run) -> Vec<Value> {
    let o = r.run(&["services", "status", "--json"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    v["services"].as_array().cloned().unwrap()
}

async fn service(r: &Run, name: &str) -> Value {
    status(r)
        .await
        .into_iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

/// Polls until `want` holds of `name`'s status, or panics after `secs`.
async fn until(r: &Run, name: &str, secs: u64, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = service(r, name).await;
        if want(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{name} never got there: {s}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn alive(pid: u64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

fn group_members(pgid: u64) -> Vec<u64> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u64>() else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // Fields after the command: state, ppid, pgrp.
        let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.get(2).and_then(|g| g.parse::<u64>().ok()) == Some(pgid) && f.first() != Some(&"Z") {
            out.push(pid);
        }
    }
    out
}

/// The broker the tests supervise: `nexus-broker` next to `nexus` when it
/// is built (scripts/test builds it), else `nexus up`, which is the same
/// broker.
fn broker_command(home: &std::path::Path, port: u16) -> String {
    let nexus = std::path::PathBuf::from(env!("CARGO_BIN_EXE_nexus"));
    let listen = format!("127.0.0.1:{port}");
    let broker = std::env::var("NEXUS_BROKER")
        .map(std::path::PathBuf::from)
        .ok()
        .or_else(|| Some(nexus.with_file_name("nexus-broker")))
        .filter(|p| p.exists());
    match broker {
        Some(b) => format!(
            "command = [{:?}, \"serve\", \"--listen\", {listen:?}, \"--db\", {:?}]",
            b.display().to_string(),
            home.join("b.db").display().to_string()
        ),
        None => format!(
            "command = [{:?}, \"up\", \"--no-daemon\", \"--listen\", {listen:?}]",
            nexus.display().to_string()
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn services_are_supervised_restarted_degraded_and_stopped_cleanly() {
    let r = peer();
    let home = r.home.path().join("nexus");
    std::fs::create_dir_all(&home).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        r#"
[services.broker]
{}
health = "tcp:127.0.0.1:{port}"
env = {{ DEMO_API_KEY = "sk-never-shown" }}

[services.flaky]
command = "echo boom; exit 3"

[services.family]
command = "sleep 300 & sleep 300"
enabled = false
grace_secs = 1

[services.ghost]
command = ["/no/such/program", "--flag"]
restart = "on-failure"
"#,
        broker_command(&home, port)
    );
    std::fs::write(home.join("config.toml"), config).unwrap();
    let _d = daemon(&r).await;

    // The broker runs and answers on its port.
    let b = until(&r, "broker", 20, |s| {
        s["state"] == "running" && s["healthy"] == true
    })
    .await;
    let pid = b["pid"].as_u64().unwrap();
    assert_eq!(
        b["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| *c == "DEMO_API_KEY")
            .count(),
        1
    );
    let o = r.run(&["services", "status", "--json"]).await;
    assert!(!String::from_utf8_lossy(&o.stdout).contains("sk-never-shown"));

    // Killed with SIGKILL, it comes back by itself.
    let t = Instant::now();
    std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .unwrap();
    let b = until(&r, "broker", 20, |s| {
        s["state"] == "running" && s["healthy"] == true && s["pid"].as_u64() != Some(pid)
    })
    .await;
    let back = t.elapsed();
    eprintln!("broker back {} ms after SIGKILL", back.as_millis());
    assert!(back < Duration::from_secs(10), "{back:?}");
    assert_eq!(b["restarts"], 1);
    assert_eq!(b["last_exit"]["how"], "signal");

    // A restart: the old process is gone before the new one binds.
    let old = b["pid"].as_u64().unwrap();
    let o = r.run(&["services", "restart", "broker"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!alive(old), "the old broker outlived the restart");
    let b = until(&r, "broker", 20, |s| {
        s["state"] == "running" && s["healthy"] == true
    })
    .await;
    assert_ne!(b["pid"].as_u64(), Some(old));
    let log = std::fs::read_to_string(home.join("logs/broker.jsonl")).unwrap();
    assert!(
        !log.to_lowercase().contains("address already in use"),
        "{log}"
    );
    assert!(log.contains("restarting"), "{log}");

    // A command that always fails backs off, then is degraded, and is
    // still retried.
    let f = until(&r, "flaky", 30, |s| s["state"] == "degraded").await;
    assert_eq!(f["last_exit"]["code"], 3);
    assert!(f["restarts"].as_u64().unwrap() >= 5, "{f}");
    assert!(f["why"].as_str().unwrap().contains("exit status 3"), "{f}");
    let o = r.run(&["services", "status"]).await;
    assert!(stderr(&o).contains("flaky is degraded"), "{}", stderr(&o));
    let o = r.run(&["services", "logs", "flaky"]).await;
    assert!(String::from_utf8_lossy(&o.stdout).contains("boom"));

    // A command that does not exist says so.
    let g = until(&r, "ghost", 10, |s| s["last_exit"]["how"] == "spawn").await;
    assert_eq!(g["pid"], Value::Null);
    let log = std::fs::read_to_string(home.join("logs/ghost.jsonl")).unwrap();
    assert!(log.contains("/no/such/program` does not exist"), "{log}");

    // Disabled until started; stopping ends the whole process group.
    assert_eq!(service(&r, "family").await["state"], "stopped");
    let o = r.run(&["services", "start", "family"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let fam = until(&r, "family", 10, |s| s["state"] == "running").await;
    let pgid = fam["pid"].as_u64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while group_members(pgid).len() < 2 {
        assert!(Instant::now() < deadline, "the shell never forked");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let o = r.run(&["services", "stop", "family"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        group_members(pgid).is_empty(),
        "orphans: {:?}",
        group_members(pgid)
    );
    assert_eq!(service(&r, "family").await["state"], "stopped");

    // Bad names are refused with the list of services.
    let o = r.run(&["services", "restart", "nope"]).await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no service `nope`") && stderr(&o).contains("broker"),
        "{}",
        stderr(&o)
    );

    // Stopping the daemon stops every service.
    let pid = service(&r, "broker").await["pid"].as_u64().unwrap();
    let o = r.run(&["daemon", "stop"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!alive(pid), "the broker outlived the daemon");
    let o = r.run(&["services", "status"]).await;
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("nexusd is not running"),
        "{}",
        stderr(&o)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_unit_verifies_the_plist_parses_and_systemd_hears_ready_and_watchdog() {
    let r = peer();
    // A systemd user unit, checked by systemd itself.
    let o = r.run(&["services", "install"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let unit = r.home.path().join(".config/systemd/user/nexusd.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains(&format!(
        "Environment=NEXUS_HOME={}",
        r.home.path().join("nexus").display()
    )));
    let runtime = tempfile::tempdir().unwrap();
    let v = std::process::Command::new("systemd-analyze")
        .args(["verify", "--user"])
        .arg(&unit)
        .env("HOME", r.home.path())
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .expect("systemd-analyze (Debian: systemd) is needed; scripts/test installs it");
    assert!(v.status.success(), "{v:?}");
    assert_eq!(
        format!(
            "{}{}",
            String::from_utf8_lossy(&v.stdout),
            String::from_utf8_lossy(&v.stderr)
        ),
        "",
        "systemd-analyze verify prints nothing for a good unit"
    );
    let o = r.run(&["services", "uninstall"]).await;
    assert!(o.status.success() && !unit.exists(), "{}", stderr(&o));

    // The launchd agent is a plist Python's plistlib reads.
    let o = r
        .run(&["services", "install", "--launchd", "--print"])
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let mut py = std::process::Command::new("python3")
        .args([
            "-c",
            "import plistlib,sys,json; p=plistlib.loads(sys.stdin.buffer.read()); print(json.dumps(p))",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(py.stdin.as_mut().unwrap(), &o.stdout).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(out.status.success());
    let p: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["Label"], "dev.nexus.nexusd");
    assert_eq!(p["ProgramArguments"][1], "daemon");
    assert_eq!(
        p["EnvironmentVariables"]["NEXUS_HOME"],
        r.home.path().join("nexus").display().to_string()
    );

    // sd_notify: READY once listening, WATCHDOG on its interval, STOPPING.
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("notify");
    let listener = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
    listener
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut c = r.cmd(&["daemon", "start", "--foreground"]);
    let mut d = c
        .env("NOTIFY_SOCKET", &sock)
        .env("WATCHDOG_USEC", "200000")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let _g = common::mesh::DaemonGuard(r.home.path().join("nexus"));
    let mut heard = Vec::new();
    let mut buf = [0u8; 512];
    while !(heard.iter().any(|m: &String| m.starts_with("READY=1"))
        && heard.iter().filter(|m| *m == "WATCHDOG=1").count() >= 2)
    {
        let n = listener.recv(&mut buf).expect("nexusd notified");
        heard.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(heard[0].starts_with("READY=1"), "{heard:?}");
    // Ready means the control socket answers.
    let o = r.run(&["daemon", "status", "--json"]).await;
    let st: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(st["running"], true);
    std::process::Command::new("kill")
        .args(["-TERM", &d.id().to_string()])
        .status()
        .unwrap();
    loop {
        let n = listener.recv(&mut buf).expect("STOPPING");
        if &buf[..n] == b"STOPPING=1" {
            break;
        }
    }
    assert!(d.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_daemon_leaves_no_service_behind_once_it_is_back() {
    let r = peer();
    let home = r.home.path().join("nexus");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("config.toml"),
        "[services.sleeper]\ncommand = \"sleep 300 & sleep 300\"\n",
    )
    .unwrap();
    let _d = daemon(&r).await;
    let s = until(&r, "sleeper", 10, |s| s["state"] == "running").await;
    let pgid = s["pid"].as_u64().unwrap();
    let o = r.run(&["daemon", "status", "--json"]).await;
    let st: Value = serde_json::from_slice(&o.stdout).unwrap();
    // The daemon dies without a chance to stop its services.
    std::process::Command::new("kill")
        .args(["-KILL", &st["pid"].to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !group_members(pgid).is_empty(),
        "the group outlives a SIGKILLed daemon"
    );
    // Started again, it ends what the last one left, then starts afresh.
    let _d = daemon(&r).await;
    let s = until(&r, "sleeper", 10, |s| {
        s["state"] == "running" && s["pid"].as_u64() != Some(pgid)
    })
    .await;
    assert!(
        group_members(pgid).is_empty(),
        "left over: {:?}",
        group_members(pgid)
    );
    let log = std::fs::read_to_string(home.join("logs/nexusd.log")).unwrap_or_default();
    assert!(log.contains("a previous nexusd left running"), "{log}");
    assert_ne!(s["pid"].as_u64(), Some(pgid));
}

async fn printed(r: &Run, service: &str, prefix: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let o = r.run(&["logs", "--service", service, "--json"]).await;
        if let Some(m) = common::stdout(&o)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|l| l["msg"].as_str().map(str::to_string))
            .find(|m| m.starts_with(prefix))
        {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{service} never printed {prefix}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_login_shell_environment_reaches_services_when_asked() {
    for load in [false, true] {
        let mut r = peer();
        std::fs::write(
            r.home.path().join(".bash_profile"),
            "export DEMO_PLAIN=from-the-profile\nexport DEMO_API_KEY=sk-profile-secret-123456\n",
        )
        .unwrap();
        r.env.push(("SHELL".into(), "/bin/bash".into()));
        if load {
            r.env.push(("NEXUS_LOAD_SHELL_ENV".into(), "1".into()));
        }
        let home = r.home.path().join("nexus");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::write(
            home.join("config.toml"),
            "[services.printer]\ncommand = \"echo plain=$DEMO_PLAIN; echo key=$DEMO_API_KEY; sleep 300\"\n",
        )
        .unwrap();
        let _d = daemon(&r).await;
        let plain = printed(&r, "printer", "plain=").await;
        let key = printed(&r, "printer", "key=").await;
        let creds = service(&r, "printer").await["credentials"].clone();
        let has_key = creds
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "DEMO_API_KEY");
        if load {
            assert_eq!(plain, "plain=from-the-profile");
            assert_eq!(key, "key=[redacted]");
            assert!(has_key, "{creds}");
        } else {
            assert_eq!(plain, "plain=");
            assert_eq!(key, "key=");
            assert!(!has_key, "{creds}");
        }
    }
}

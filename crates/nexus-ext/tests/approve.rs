//! Desktop approvals over a real session D-Bus (a private `dbus-daemon`),
//! with python-dbusmock's notification daemon standing in for the desktop:
//! allow, deny, always, and no answer (the timeout is a setting, shortened
//! here; the code path is the same).

#![allow(clippy::unwrap_used, missing_docs)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nexus_ext::approve::Notifications;
use nexus_ext::host::Approver;
use nexus_ext::permissions::Answer;

struct Bus {
    daemon: Child,
    mock: Child,
    address: String,
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.mock.kill();
        let _ = self.daemon.kill();
        let _ = self.mock.wait();
        let _ = self.daemon.wait();
    }
}

fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn start() -> Option<Bus> {
    let mock_ok = Command::new("/usr/bin/python3")
        .args(["-c", "import dbusmock"])
        .status()
        .is_ok_and(|s| s.success());
    let present = have("dbus-daemon", "--version") && have("gdbus", "help") && mock_ok;
    // scripts/test installs them, so under CI their absence is a failure, not a skip.
    assert!(
        present || std::env::var_os("CI").is_none(),
        "D-Bus approvals need dbus-daemon, gdbus (libglib2.0-bin) and python3-dbusmock"
    );
    if !present {
        println!("SKIP D-Bus approvals: needs dbus-daemon, gdbus (libglib2.0-bin) and python3-dbusmock; scripts/test installs them");
        return None;
    }
    let mut daemon = Command::new("dbus-daemon")
        .args(["--session", "--nofork", "--print-address=1"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut address = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(daemon.stdout.take().unwrap()),
        &mut address,
    )
    .unwrap();
    let address = address.trim().to_string();
    let mock = Command::new("/usr/bin/python3")
        .args(["-m", "dbusmock", "--template", "notification_daemon"])
        .env("DBUS_SESSION_BUS_ADDRESS", &address)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let bus = Bus {
        daemon,
        mock,
        address,
    };
    // Wait for the mock to own its name.
    for _ in 0..100 {
        let o = Command::new("gdbus")
            .args([
                "call",
                "--session",
                "--dest",
                "org.freedesktop.DBus",
                "--object-path",
                "/org/freedesktop/DBus",
                "--method",
                "org.freedesktop.DBus.NameHasOwner",
                "org.freedesktop.Notifications",
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .output()
            .unwrap();
        if String::from_utf8_lossy(&o.stdout).contains("true") {
            return Some(bus);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the mock notification daemon did not start");
}

/// What the user does: click an action on notification `n`.
fn click(bus: &Bus, n: u32, action: &str) {
    let o = Command::new("gdbus")
        .args([
            "call",
            "--session",
            "--dest",
            "org.freedesktop.Notifications",
            "--object-path",
            "/org/freedesktop/Notifications",
            "--method",
            "org.freedesktop.DBus.Mock.EmitSignal",
            "org.freedesktop.Notifications",
            "ActionInvoked",
            "us",
        ])
        .arg(format!("[<uint32 {n}>, <'{action}'>]"))
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn calls(bus: &Bus, method: &str) -> String {
    let o = Command::new("gdbus")
        .args([
            "call",
            "--session",
            "--dest",
            "org.freedesktop.Notifications",
            "--object-path",
            "/org/freedesktop/Notifications",
            "--method",
            "org.freedesktop.DBus.Mock.GetMethodCalls",
            method,
        ])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_deny_always_and_timeout_over_a_real_session_bus() {
    let Some(bus) = start() else { return };
    let approver = Notifications {
        bus: Some(bus.address.clone()),
    };
    assert!(approver.available());
    // The mock numbers notifications 1, 2, 3 ...
    for (n, action, want) in [
        (1, "allow", Answer::Allow),
        (2, "deny", Answer::Deny),
        (3, "always", Answer::AllowAlways),
    ] {
        let a = approver.clone();
        let task = tokio::spawn(async move {
            a.ask(
                "notes",
                "clipboard:read",
                "to paste",
                Duration::from_secs(20),
            )
            .await
        });
        // The notification went out; the user clicks.
        for _ in 0..100 {
            if calls(&bus, "Notify")
                .matches("asks for clipboard:read")
                .count()
                >= n as usize
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            calls(&bus, "Notify").contains("clipboard:read"),
            "{}",
            calls(&bus, "Notify")
        );
        click(&bus, n, action);
        assert_eq!(task.await.unwrap(), want, "{action}");
    }
    // Nobody answers: denied after the timeout, and the notification closed.
    let started = std::time::Instant::now();
    let got = approver
        .ask("notes", "exec", "", Duration::from_millis(700))
        .await;
    assert_eq!(got, Answer::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        calls(&bus, "CloseNotification").contains("uint32 4")
            || calls(&bus, "CloseNotification").contains("<4>")
            || calls(&bus, "CloseNotification").contains("4"),
        "{}",
        calls(&bus, "CloseNotification")
    );
}

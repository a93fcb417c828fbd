//! Asking the user on the desktop: a notification over the session D-Bus
//! (`org.freedesktop.Notifications`) with Allow, Always and Deny actions;
//! no answer within the timeout means deny, and the notification is closed.
//!
//! It talks to the bus through `gdbus` (GLib's tool, on every desktop that
//! has a notification daemon) rather than a D-Bus library: a few calls a
//! day do not pay for a second async stack in the build.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::host::Approver;
use crate::permissions::Answer;

const DEST: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

/// The desktop's notification daemon, on the session bus.
#[derive(Debug, Clone, Default)]
pub struct Notifications {
    /// The bus to use instead of `DBUS_SESSION_BUS_ADDRESS`.
    pub bus: Option<String>,
}

impl Notifications {
    /// Whether a session bus is there to ask on.
    pub fn available(&self) -> bool {
        self.bus.is_some() || std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
    }

    fn gdbus(&self) -> Command {
        let mut c = Command::new("gdbus");
        if let Some(b) = &self.bus {
            c.env("DBUS_SESSION_BUS_ADDRESS", b);
        }
        c.kill_on_drop(true);
        c
    }

    /// `gdbus call` of the notification daemon's `method`; arguments follow.
    fn call(&self, method: &str) -> Command {
        let mut c = self.gdbus();
        c.args([
            "call",
            "--session",
            "--dest",
            DEST,
            "--object-path",
            PATH,
            "--method",
        ])
        .arg(format!("{DEST}.{method}"));
        c
    }

    async fn notify(&self, summary: &str, body: &str, timeout: Duration) -> Option<u32> {
        let out = self
            .call("Notify")
            .args(["Nexus", "0", "dialog-question", summary, body])
            .arg("['allow', 'Allow', 'always', 'Always allow', 'deny', 'Deny']")
            .arg("{'urgency': <byte 2>}")
            .arg(timeout.as_millis().min(i32::MAX as u128).to_string())
            .output()
            .await
            .ok()?;
        // "(uint32 7,)"
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("(uint32 ")
            .trim_end_matches(",)")
            .parse()
            .ok()
    }

    async fn close(&self, id: u32) {
        let _ = self
            .call("CloseNotification")
            .arg(id.to_string())
            .output()
            .await;
    }
}

/// A GVariant text value, quoted for `gdbus`.
fn quote(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(300).collect()
}

#[async_trait::async_trait]
impl Approver for Notifications {
    async fn ask(&self, id: &str, capability: &str, detail: &str, timeout: Duration) -> Answer {
        self.try_ask(id, capability, detail, timeout)
            .await
            .unwrap_or(Answer::Deny)
    }
}

impl Notifications {
    /// Asks; `None` when the question could not be shown at all (no bus,
    /// no notification daemon), so another way of asking can carry on.
    pub async fn try_ask(
        &self,
        id: &str,
        capability: &str,
        detail: &str,
        timeout: Duration,
    ) -> Option<Answer> {
        // Watch for the answer before asking, so it cannot be missed.
        let Ok(mut monitor) = self
            .gdbus()
            .args([
                "monitor",
                "--session",
                "--dest",
                DEST,
                "--object-path",
                PATH,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
        else {
            return None;
        };
        let out = monitor.stdout.take()?;
        let mut lines = BufReader::new(out).lines();
        // "Monitoring signals on object ..." means it listens.
        let ready = tokio::time::timeout(Duration::from_secs(5), lines.next_line()).await;
        if !matches!(ready, Ok(Ok(Some(_)))) {
            return None;
        }
        let summary = quote(&format!("Extension {id} asks for {capability}"));
        let body = quote(if detail.is_empty() {
            "Allow it?"
        } else {
            detail
        });
        let n = self.notify(&summary, &body, timeout).await?;
        let invoked = format!("ActionInvoked (uint32 {n}, '");
        let closed = format!("NotificationClosed (uint32 {n},");
        let wait = async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split_once(&invoked).map(|(_, r)| r) {
                    return match rest.split('\'').next() {
                        Some("allow") => Answer::Allow,
                        Some("always") => Answer::AllowAlways,
                        _ => Answer::Deny,
                    };
                }
                if line.contains(&closed) {
                    // Dismissed without a choice.
                    return Answer::Deny;
                }
            }
            Answer::Deny
        };
        let answer = match tokio::time::timeout(timeout, wait).await {
            Ok(a) => a,
            Err(_) => {
                self.close(n).await;
                Answer::TimedOut
            }
        };
        let _ = monitor.kill().await;
        Some(answer)
    }
}

//! Running nexusd under the system's service manager: a systemd user unit
//! (`Type=notify`, with the watchdog) or a launchd agent, and `sd_notify`
//! (READY, STATUS, WATCHDOG) when systemd started us.
//!
//! The unit carries `NEXUS_HOME` itself: a service manager does not read
//! the shell profile, so a pointer set there would not reach the daemon.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A unit for the service manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Where it goes.
    pub path: PathBuf,
    /// What it says.
    pub text: String,
    /// What to run then.
    pub next: String,
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Quotes an argument for a systemd `ExecStart=` line.
fn sd_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        return s.to_string();
    }
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The systemd user unit that runs `exe daemon start --foreground` for
/// `home`, written under `config_dir` (`$XDG_CONFIG_HOME`, else
/// `~/.config`).
pub fn systemd_unit(exe: &Path, home: &Path, config_dir: &Path) -> Unit {
    let exec = [
        exe.display().to_string(),
        "daemon".into(),
        "start".into(),
        "--foreground".into(),
    ]
    .iter()
    .map(|a| sd_quote(a))
    .collect::<Vec<_>>()
    .join(" ");
    let text = format!(
        "[Unit]\n\
         Description=Nexus, the resident daemon (nexusd) for {home}\n\
         \n\
         [Service]\n\
         Type=notify\n\
         NotifyAccess=main\n\
         ExecStart={exec}\n\
         Environment={env}\n\
         Restart=on-failure\n\
         RestartSec=2\n\
         WatchdogSec=60\n\
         TimeoutStopSec=90\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        home = home.display(),
        env = sd_quote(&format!("NEXUS_HOME={}", home.display())),
    );
    Unit {
        path: config_dir.join("systemd/user/nexusd.service"),
        text,
        next: "systemctl --user daemon-reload && systemctl --user enable --now nexusd".into(),
    }
}

/// The launchd agent that runs `exe daemon start --foreground` for
/// `home`, written under `~/Library/LaunchAgents`.
pub fn launchd_plist(exe: &Path, home: &Path, user_home: &Path) -> Unit {
    let logs = home.join("logs");
    let text = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key>
  <string>dev.nexus.nexusd</string>
  <key>ProgramArguments</key>
  <array>
    <string>{exe}</string>
    <string>daemon</string>
    <string>start</string>
    <string>--foreground</string>
  </array>
  <key>EnvironmentVariables</key>
  <dict>
    <key>NEXUS_HOME</key>
    <string>{home}</string>
  </dict>
  <key>RunAtLoad</key>
  <true/>
  <key>KeepAlive</key>
  <dict>
    <key>SuccessfulExit</key>
    <false/>
  </dict>
  <key>ThrottleInterval</key>
  <integer>2</integer>
  <key>StandardOutPath</key>
  <string>{out}</string>
  <key>StandardErrorPath</key>
  <string>{err}</string>
</dict>
</plist>
"#,
        exe = xml(&exe.display().to_string()),
        home = xml(&home.display().to_string()),
        out = xml(&logs.join("nexusd.out.log").display().to_string()),
        err = xml(&logs.join("nexusd.err.log").display().to_string()),
    );
    Unit {
        path: user_home.join("Library/LaunchAgents/dev.nexus.nexusd.plist"),
        text,
        next: "launchctl load -w ~/Library/LaunchAgents/dev.nexus.nexusd.plist".into(),
    }
}

/// Tells systemd (when it started us: `NOTIFY_SOCKET`) `state`, such as
/// `READY=1` or `WATCHDOG=1`. Quietly nothing otherwise.
pub fn sd_notify(state: &str) {
    let Ok(socket) = std::env::var("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(s) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let _ = match socket.strip_prefix('@') {
        #[cfg(target_os = "linux")]
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
                .and_then(|a| s.send_to_addr(state.as_bytes(), &a))
        }
        #[cfg(not(target_os = "linux"))]
        Some(_) => return,
        None => s.send_to(state.as_bytes(), &socket),
    };
}

/// How often to tell systemd's watchdog we are alive: half its interval
/// (`WATCHDOG_USEC`), if it set one.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn units_name_the_home_and_quote_what_needs_it() {
        let u = systemd_unit(
            Path::new("/opt/nexus tools/nexus"),
            Path::new("/home/a/.nexus"),
            Path::new("/home/a/.config"),
        );
        assert_eq!(
            u.path,
            Path::new("/home/a/.config/systemd/user/nexusd.service")
        );
        assert!(u
            .text
            .contains("ExecStart=\"/opt/nexus tools/nexus\" daemon start --foreground"));
        assert!(u.text.contains("Environment=NEXUS_HOME=/home/a/.nexus"));
        assert!(u.text.contains("Type=notify") && u.text.contains("WatchdogSec=60"));
        let p = launchd_plist(
            Path::new("/usr/local/bin/nexus"),
            Path::new("/Users/a/<odd>&home"),
            Path::new("/Users/a"),
        );
        assert!(p
            .text
            .contains("<string>/Users/a/&lt;odd&gt;&amp;home</string>"));
        assert_eq!(
            p.path,
            Path::new("/Users/a/Library/LaunchAgents/dev.nexus.nexusd.plist")
        );
    }
}

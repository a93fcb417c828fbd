//! Stopping a child and everything it started: the shutdown rule shared
//! by extensions and MCP servers. The child runs as the leader of its own
//! process group (`process_group(0)`); once its stdin is closed it gets
//! [`STOP_GRACE`] to exit, then SIGTERM to the whole group and another
//! grace, then SIGKILL to the group. The group is killed in the end even
//! when the leader exited on its own, so no grandchild survives.

use std::time::Duration;

use tokio::process::Child;

/// Each step of a stop: after closing stdin, after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(2);

/// Sends `signal` to the process group led by `pid`.
pub fn signal_group(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

/// Stops `child` (whose stdin the caller has closed) and its group.
pub async fn stop_group(child: &mut Child) {
    let pid = child.id();
    let exited = tokio::time::timeout(STOP_GRACE, child.wait()).await.is_ok();
    if let Some(pid) = pid {
        if !exited {
            signal_group(pid, rustix::process::Signal::TERM);
            if tokio::time::timeout(STOP_GRACE, child.wait())
                .await
                .is_err()
            {
                signal_group(pid, rustix::process::Signal::KILL);
                let _ = child.wait().await;
            }
        }
        // Grandchildren outlive a leader that exited: the group goes too.
        signal_group(pid, rustix::process::Signal::KILL);
    }
}

/// Ends `child` and its group at once (it failed; no grace): SIGTERM,
/// half a second, SIGKILL.
pub async fn kill_group_now(child: &mut Child) {
    if let Some(pid) = child.id() {
        signal_group(pid, rustix::process::Signal::TERM);
        if tokio::time::timeout(Duration::from_millis(500), child.wait())
            .await
            .is_err()
        {
            signal_group(pid, rustix::process::Signal::KILL);
            let _ = child.wait().await;
        }
        signal_group(pid, rustix::process::Signal::KILL);
    }
}

//! `nexus logs`: every JSON-lines log under `NEXUS_HOME/logs`, filtered,
//! followed, exported or cleared.

use std::time::Duration;

use nexus_core::NexusHome;
use nexus_daemon::logs::{self, Line};

use crate::cli::{LogsAction, LogsArgs};
use crate::exit::CliError;
use crate::output;

fn since_ms(s: &str) -> Result<u64, CliError> {
    let bad = || CliError::config(format!("--since `{s}` is not like 30s, 15m, 1h or 2d"));
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    Ok(now.saturating_sub(secs * 1000))
}

/// Renders a line for a terminal.
pub(crate) fn render(l: &Line) -> String {
    let secs = (l.ts_ms / 1000) as i64;
    let at = chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_default();
    format!("{at} {:<5} {:<10} {}\n", l.level, l.source, l.msg)
}

pub(crate) async fn run(a: LogsArgs) -> Result<(), CliError> {
    let home = NexusHome::from_env()?;
    let dir = home.join("logs");
    if let Some(LogsAction::Clear) = a.action {
        let n = match logs::clear(&dir) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => {
                return Err(CliError::config(format!(
                    "cannot clear {}: {e}",
                    dir.display()
                )))
            }
        };
        eprintln!("removed {n} log file(s) from {}", dir.display());
        return Ok(());
    }
    let since = a.since.as_deref().map(since_ms).transpose()?;
    let min = a.level.as_deref().map_or(0, logs::rank);
    let keep = |l: &Line| {
        a.service.as_deref().is_none_or(|s| l.source == s)
            && logs::rank(&l.level) >= min
            && since.is_none_or(|t| l.ts_ms >= t)
            && a.grep.as_deref().is_none_or(|g| l.msg.contains(g))
    };
    let mut shown = 0u64;
    let mut last_ts = 0u64;
    if let Some(file) = &a.export {
        let lines: Vec<Line> = logs::read_all(&dir).into_iter().filter(keep).collect();
        let mut text = String::new();
        for l in &lines {
            text.push_str(&serde_json::to_string(l).unwrap_or_default());
            text.push('\n');
        }
        nexus_core::atomic_write(file, text.as_bytes(), nexus_core::FileMode::Secret)
            .map_err(|e| CliError::config(format!("cannot write {}: {e}", file.display())))?;
        eprintln!("exported {} line(s) to {}", lines.len(), file.display());
        return Ok(());
    }
    loop {
        let all = logs::read_all(&dir);
        for l in all.iter().filter(|l| keep(l)) {
            // On a follow, only what is newer than what was shown.
            if l.ts_ms < last_ts {
                continue;
            }
            let text = if a.json {
                format!("{}\n", serde_json::to_string(l).unwrap_or_default())
            } else {
                render(l)
            };
            if output::write_str(&text).is_err() {
                return Ok(());
            }
            shown += 1;
        }
        if !a.follow {
            if shown == 0 && !a.json {
                eprintln!("no log lines match");
            }
            return Ok(());
        }
        // Next time, only lines newer than the newest seen.
        last_ts = all.iter().map(|l| l.ts_ms).max().map_or(last_ts, |t| t + 1);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

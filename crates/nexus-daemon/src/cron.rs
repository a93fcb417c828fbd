//! Cron: jobs on a schedule (`0 9 * * 1-5`), in local time with its DST
//! changes (the `croner` parser; a time that does not exist on the day
//! clocks go forward runs at the first moment that does). Jobs live in
//! `NEXUS_HOME/cron.json`; nexusd runs them and appends each run to
//! `NEXUS_HOME/cron-runs.jsonl`.
//!
//! Whether a job is due is sans-IO ([`decide`]): given when the daemon last
//! looked and the time now, a job whose time came in between runs once; if
//! several of its times passed (the machine slept, the wall clock jumped),
//! it runs once or is skipped, as the job says.

use std::path::PathBuf;

use chrono::{DateTime, TimeZone};
use nexus_core::NexusHome;
use serde::{Deserialize, Serialize};

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Action {
    /// Runs a command (argv; a single string runs under `/bin/sh -c`).
    Command {
        /// The program and its arguments.
        argv: Vec<String>,
    },
    /// Asks the model hierarchy.
    Ask {
        /// The prompt.
        prompt: String,
    },
}

/// What to do when several of a job's times passed unseen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missed {
    /// Run once for all of them.
    #[default]
    RunOnce,
    /// Skip them; wait for the next.
    Skip,
}

/// A job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Its id (`j1`, `j2`, ...).
    pub id: String,
    /// The cron expression (five fields, or six with seconds first).
    pub schedule: String,
    /// What it does.
    pub action: Action,
    /// After a sleep.
    #[serde(default)]
    pub missed: Missed,
}

/// Parses a cron expression; the error says what is wrong.
pub fn parse(expr: &str) -> Result<croner::Cron, String> {
    croner::Cron::new(expr)
        .with_seconds_optional()
        .parse()
        .map_err(|e| {
            format!("`{expr}` is not a cron expression ({e}); for example \"0 9 * * 1-5\"")
        })
}

/// The next `count` times of `expr` after `from`.
pub fn next_times<Tz: TimeZone>(
    expr: &str,
    from: &DateTime<Tz>,
    count: usize,
) -> Result<Vec<DateTime<Tz>>, String> {
    let cron = parse(expr)?;
    let mut out = Vec::new();
    let mut t = from.clone();
    for _ in 0..count {
        t = cron
            .find_next_occurrence(&t, false)
            .map_err(|e| format!("no next time for `{expr}`: {e}"))?;
        out.push(t.clone());
    }
    Ok(out)
}

/// What to do with a job now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing is due.
    Wait,
    /// Run it (`missed` of its times passed besides the one run for).
    Run {
        /// Times that passed unseen, besides this run.
        missed: u32,
    },
    /// Its times passed while nothing looked, and it skips them.
    Skip {
        /// How many.
        missed: u32,
    },
}

/// Whether `job` is due at `now`, the daemon having last looked at `last`.
pub fn decide<Tz: TimeZone>(job: &Job, last: &DateTime<Tz>, now: &DateTime<Tz>) -> Decision {
    let Ok(cron) = parse(&job.schedule) else {
        return Decision::Wait;
    };
    let mut passed = 0u32;
    let mut t = last.clone();
    while let Ok(next) = cron.find_next_occurrence(&t, false) {
        if next > *now {
            break;
        }
        passed += 1;
        t = next;
        if passed > 10_000 {
            break;
        }
    }
    match (passed, job.missed) {
        (0, _) => Decision::Wait,
        (1, _) | (_, Missed::RunOnce) => Decision::Run { missed: passed - 1 },
        (n, Missed::Skip) => Decision::Skip { missed: n },
    }
}

/// The jobs file.
pub fn jobs_path(home: &NexusHome) -> PathBuf {
    home.join("cron.json")
}

/// The jobs of `home`.
pub fn load(home: &NexusHome) -> Result<Vec<Job>, String> {
    match std::fs::read_to_string(jobs_path(home)) {
        Ok(t) => serde_json::from_str(&t)
            .map_err(|e| format!("{} is damaged ({e})", jobs_path(home).display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes the jobs of `home` (atomically, 0600).
pub fn save(home: &NexusHome, jobs: &[Job]) -> Result<(), String> {
    let text = serde_json::to_vec_pretty(jobs).map_err(|e| e.to_string())?;
    nexus_core::atomic_write(&jobs_path(home), &text, nexus_core::FileMode::Secret)
        .map_err(|e| e.to_string())
}

/// Adds a job; returns its id.
pub fn add(
    home: &NexusHome,
    schedule: &str,
    action: Action,
    missed: Missed,
) -> Result<String, String> {
    parse(schedule)?;
    let mut jobs = load(home)?;
    let n = jobs
        .iter()
        .filter_map(|j| j.id.strip_prefix('j').and_then(|n| n.parse::<u32>().ok()))
        .max()
        .unwrap_or(0)
        + 1;
    let id = format!("j{n}");
    jobs.push(Job {
        id: id.clone(),
        schedule: schedule.to_string(),
        action,
        missed,
    });
    save(home, &jobs)?;
    Ok(id)
}

/// Removes a job.
pub fn remove(home: &NexusHome, id: &str) -> Result<(), String> {
    let mut jobs = load(home)?;
    let before = jobs.len();
    jobs.retain(|j| j.id != id);
    if jobs.len() == before {
        return Err(format!("no cron job `{id}`; see `nexus cron list`"));
    }
    save(home, &jobs)
}

/// One run, as recorded.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// The job.
    pub id: String,
    /// When it started (ms).
    pub at_ms: u64,
    /// How long it took (ms).
    pub took_ms: u64,
    /// `ok`, `failed` or `skipped`.
    pub status: String,
    /// Exit status, the answer, or why it failed (the last 2 KiB).
    pub output: String,
    /// Times that passed unseen before it.
    pub missed: u32,
}

/// Reads `r` to its end, keeping only the last 4 KiB.
async fn last_bytes(mut r: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut keep = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return keep,
            Ok(n) => {
                keep.extend_from_slice(&buf[..n]);
                if keep.len() > 4096 {
                    keep.drain(..keep.len() - 4096);
                }
            }
        }
    }
}

fn tail(s: &str) -> String {
    let n = s.len();
    if n <= 2048 {
        return s.to_string();
    }
    let mut i = n - 2048;
    while !s.is_char_boundary(i) {
        i += 1;
    }
    s[i..].to_string()
}

/// Runs `job` now and records it.
pub async fn run(home: &NexusHome, client: &nexus_sdk::Client, job: &Job, missed: u32) -> Run {
    let at_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let t = std::time::Instant::now();
    let (status, output) = match &job.action {
        Action::Command { argv } => {
            let mut c = if argv.len() == 1 {
                let mut c = tokio::process::Command::new("/bin/sh");
                c.arg("-c").arg(&argv[0]);
                c
            } else {
                let mut c = tokio::process::Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            };
            c.stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .kill_on_drop(true);
            match c.spawn() {
                Err(e) => ("failed", format!("could not start `{}`: {e}", argv[0])),
                Ok(mut child) => {
                    // Output is read as it comes and only its end kept, so
                    // a job that prints without end costs no memory.
                    let out = child.stdout.take().map(|o| tokio::spawn(last_bytes(o)));
                    let err = child.stderr.take().map(|e| tokio::spawn(last_bytes(e)));
                    let hour = std::time::Duration::from_secs(3600);
                    let status = tokio::time::timeout(hour, child.wait()).await;
                    let mut text = String::new();
                    for t in [out, err].into_iter().flatten() {
                        text.push_str(&String::from_utf8_lossy(&t.await.unwrap_or_default()));
                    }
                    match status {
                        Ok(Ok(st)) if st.success() => ("ok", tail(&text)),
                        Ok(Ok(st)) => ("failed", tail(&format!("{text}\n({st})"))),
                        Ok(Err(e)) => ("failed", format!("waiting for `{}`: {e}", argv[0])),
                        Err(_) => {
                            let _ = child.kill().await;
                            ("failed", tail(&format!("{text}\nstopped after an hour")))
                        }
                    }
                }
            }
        }
        Action::Ask { prompt } => {
            let opts = nexus_sdk::AskOptions {
                scheduled: true,
                ..Default::default()
            };
            match client.ask(prompt, &opts).await {
                Ok(r) => ("ok", tail(&r.reply.text)),
                Err(e) => ("failed", e.to_string()),
            }
        }
    };
    let r = Run {
        id: job.id.clone(),
        at_ms,
        took_ms: t.elapsed().as_millis() as u64,
        status: status.to_string(),
        output,
        missed,
    };
    record(home, &r);
    r
}

/// Appends `r` to `NEXUS_HOME/cron-runs.jsonl`.
pub fn record(home: &NexusHome, r: &Run) {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    if let (Ok(mut f), Ok(line)) = (
        o.open(home.join("cron-runs.jsonl")),
        serde_json::to_string(r),
    ) {
        use std::io::Write as _;
        let _ = writeln!(f, "{line}");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, Utc};

    fn job(schedule: &str, missed: Missed) -> Job {
        Job {
            id: "j1".into(),
            schedule: schedule.into(),
            action: Action::Command {
                argv: vec!["true".into()],
            },
            missed,
        }
    }

    #[tokio::test]
    async fn a_job_that_prints_without_end_keeps_only_its_last_bytes() {
        let (mut w, r) = tokio::io::duplex(1 << 16);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for i in 0..2_000u32 {
                w.write_all(format!("line {i:06}\n").repeat(100).as_bytes())
                    .await
                    .unwrap();
            }
        });
        let kept = last_bytes(r).await;
        writer.await.unwrap();
        assert_eq!(kept.len(), 4096);
        assert!(String::from_utf8_lossy(&kept).ends_with("line 001999\n"));
    }

    #[test]
    fn bad_expressions_say_so() {
        assert!(parse("0 9 * * 1-5").is_ok());
        let e = parse("61 * * * *").unwrap_err();
        assert!(
            e.contains("not a cron expression") && e.contains("0 9 * * 1-5"),
            "{e}"
        );
        assert!(parse("every day").is_err());
    }

    #[test]
    fn due_once_per_time_and_a_sleep_runs_once_or_skips() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let j = job("0 9 * * *", Missed::RunOnce);
        // Looked at 08:59:30, now 09:00:10: due once.
        assert_eq!(
            decide(&j, &t("2026-12-01T08:59:30Z"), &t("2026-12-01T09:00:10Z")),
            Decision::Run { missed: 0 }
        );
        // Then nothing until tomorrow.
        assert_eq!(
            decide(&j, &t("2026-12-01T09:00:10Z"), &t("2026-12-01T20:00:00Z")),
            Decision::Wait
        );
        // The machine slept three days (or the wall clock jumped): once.
        let woke = (t("2026-12-01T10:00:00Z"), t("2026-12-04T12:00:00Z"));
        assert_eq!(decide(&j, &woke.0, &woke.1), Decision::Run { missed: 2 });
        let skipper = job("0 9 * * *", Missed::Skip);
        assert_eq!(
            decide(&skipper, &woke.0, &woke.1),
            Decision::Skip { missed: 3 }
        );
        // A clock jump backwards runs nothing twice.
        assert_eq!(
            decide(&j, &t("2026-12-05T10:00:00Z"), &t("2026-12-05T08:00:00Z")),
            Decision::Wait
        );
    }

    #[test]
    fn times_follow_the_offset_they_are_given_in() {
        let berlin_winter = FixedOffset::east_opt(3600).unwrap();
        let from = berlin_winter.with_ymd_and_hms(2026, 1, 5, 8, 0, 0).unwrap();
        let next = next_times("0 9 * * 1-5", &from, 3).unwrap();
        assert_eq!(next[0].to_rfc3339(), "2026-01-05T09:00:00+01:00");
        assert_eq!(next[2].to_rfc3339(), "2026-01-07T09:00:00+01:00");
    }
}

#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use nexus_testkit::StandIn;

pub mod mesh;

pub struct Run {
    pub home: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Run {
    pub fn new() -> Run {
        Run {
            home: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    pub fn with_standin(s: &StandIn) -> Run {
        let mut r = Run::new();
        r.env = s.env("sk-cli-test-key");
        r
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_nexus"));
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("NEXUS_HOME", self.home.path().join("nexus"))
            .args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.run_stdin(args, None).await
    }

    pub async fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = self.cmd(args);
        let stdin = stdin.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            c.stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = c.spawn().unwrap();
            let mut pipe = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                pipe.write_all(s.as_bytes()).unwrap();
            }
            drop(pipe);
            child.wait_with_output().unwrap()
        })
        .await
        .unwrap()
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `nexus ARGS`, asserting success; its stdout.
pub async fn ok(r: &Run, args: &[&str]) -> String {
    let o = r.run(args).await;
    assert!(
        o.status.success(),
        "nexus {}: {}{}",
        args.join(" "),
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Whether process `pid` is gone or a zombie.
pub fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(true)
}

/// Live processes started under `home` (they inherit its `NEXUS_HOME`)
/// whose environment or command line passes `keep`.
pub fn processes_of(home: &std::path::Path, keep: impl Fn(&[&[u8]], &str) -> bool) -> Vec<u32> {
    let want = format!("NEXUS_HOME={}", home.display());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        let vars: Vec<&[u8]> = env.split(|b| *b == 0).collect();
        let cmd = String::from_utf8_lossy(
            &std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default(),
        )
        .replace('\0', " ");
        if vars.contains(&want.as_bytes()) && !gone(pid) && keep(&vars, &cmd) {
            out.push(pid);
        }
    }
    out
}

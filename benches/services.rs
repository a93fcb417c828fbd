//! `nexus-services-bench`: how fast nexusd brings a killed service back
//! (the first restart step), and how long `services status` takes, side
//! by side with supervisord (from PyPI) doing the same.
//!
//! Both supervise the same 20 programs; each writes its pid and the time
//! it started (ns) to files, then `exec sleep`s. Each is killed once with
//! SIGKILL; the respawn time is the new start time minus the kill time,
//! measured the same way for both.
//!
//! ```sh
//! python3 -m venv /tmp/supenv && /tmp/supenv/bin/pip install supervisor
//! cargo build --release -p nexus-cli -p nexus-benches --bin nexus --bin nexus-services-bench
//! target/release/nexus-services-bench --supervisord /tmp/supenv/bin/supervisord
//! ```

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Programs (each killed once).
    #[arg(long, default_value_t = 20)]
    programs: usize,
    /// `services status` calls timed.
    #[arg(long, default_value_t = 30)]
    status_calls: usize,
    /// The supervisord to compare with (its supervisorctl beside it).
    #[arg(long)]
    supervisord: Option<PathBuf>,
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn program(dir: &Path, name: &str) -> String {
    format!(
        "echo $$ > {d}/{name}.pid; date +%s%N > {d}/{name}.start; exec sleep 1000",
        d = dir.display()
    )
}

fn read_num(p: &Path) -> Option<u128> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Kills each program once and returns the respawn times, ms.
fn respawns(dir: &Path, names: &[String]) -> Vec<f64> {
    let mut out = Vec::new();
    for n in names {
        let pid_file = dir.join(format!("{n}.pid"));
        let start_file = dir.join(format!("{n}.start"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while read_num(&start_file).is_none() {
            assert!(Instant::now() < deadline, "{n} never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        let pid = read_num(&pid_file).unwrap();
        let killed = now_ns();
        Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(t) = read_num(&start_file) {
                if t > killed {
                    out.push((t - killed) as f64 / 1e6);
                    break;
                }
            }
            assert!(Instant::now() < deadline, "{n} never came back");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    out
}

fn stats(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{name:<52} p50 {:>8.1} ms  p95 {:>8.1} ms  max {:>8.1} ms  (n={})",
        at(0.5),
        at(0.95),
        at(1.0),
        ms.len()
    );
}

fn timed(mut f: impl FnMut(), n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

fn main() {
    let args = Args::parse();
    let nexus = std::env::current_exe().unwrap().with_file_name("nexus");
    assert!(
        nexus.exists(),
        "build it: cargo build --release -p nexus-cli"
    );
    let root = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..args.programs).map(|i| format!("p{i}")).collect();

    // nexusd.
    let home = root.path().join("home/nexus");
    let files = root.path().join("nexus-files");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&files).unwrap();
    let mut config = String::from("[vault]\nbackend = \"file\"\n");
    for n in &names {
        config.push_str(&format!(
            "\n[services.{n}]\ncommand = {:?}\n",
            program(&files, n)
        ));
    }
    std::fs::write(home.join("config.toml"), config).unwrap();
    let cmd = |args: &[&str]| {
        let mut c = Command::new(&nexus);
        c.env("NEXUS_HOME", &home)
            .env("HOME", root.path().join("home"))
            .env("NEXUS_VAULT_PASSPHRASE", "bench passphrase")
            .args(args);
        c
    };
    assert!(cmd(&["daemon", "start"]).status().unwrap().success());
    println!(
        "first restart after SIGKILL, {} programs, each killed once",
        names.len()
    );
    stats(
        "  nexusd (0.5 s first backoff step, jittered)",
        respawns(&files, &names),
    );
    println!("`status` latency");
    stats(
        "  nexus services status --json (process)",
        timed(
            || {
                assert!(cmd(&["services", "status", "--json"])
                    .output()
                    .unwrap()
                    .status
                    .success());
            },
            args.status_calls,
        ),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = nexus_core::NexusHome::at(&home);
    stats(
        "  services.status over the socket (library)",
        timed(
            || {
                rt.block_on(nexus_daemon::call_with(
                    &h,
                    "services.status",
                    serde_json::Value::Null,
                    Duration::from_secs(10),
                ))
                .unwrap();
            },
            args.status_calls * 10,
        ),
    );
    let _ = cmd(&["daemon", "stop"]).status();

    // supervisord.
    let Some(supervisord) = args.supervisord else {
        println!("(no --supervisord: the comparison is skipped)");
        return;
    };
    let ctl = supervisord.with_file_name("supervisorctl");
    let sfiles = root.path().join("sup-files");
    std::fs::create_dir_all(&sfiles).unwrap();
    let sock = root.path().join("supervisor.sock");
    let mut conf = format!(
        "[unix_http_server]\nfile={s}\n\n[supervisord]\nlogfile={d}/supervisord.log\npidfile={d}/supervisord.pid\nnodaemon=false\n\n[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n[supervisorctl]\nserverurl=unix://{s}\n",
        s = sock.display(),
        d = root.path().display()
    );
    for n in &names {
        conf.push_str(&format!(
            "\n[program:{n}]\ncommand=/bin/sh -c '{}'\nautorestart=true\nstartsecs=0\nstopasgroup=true\nkillasgroup=true\n",
            // supervisord expands %(...)s in commands: a literal % is %%.
            program(&sfiles, n).replace('%', "%%")
        ));
    }
    let conf_path = root.path().join("supervisord.conf");
    std::fs::write(&conf_path, conf).unwrap();
    assert!(Command::new(&supervisord)
        .arg("-c")
        .arg(&conf_path)
        .status()
        .unwrap()
        .success());
    stats(
        "  supervisord 4.x (autorestart, startsecs=0)",
        respawns(&sfiles, &names),
    );
    stats(
        "  supervisorctl status (process)",
        timed(
            || {
                let _ = Command::new(&ctl)
                    .arg("-c")
                    .arg(&conf_path)
                    .arg("status")
                    .output();
            },
            args.status_calls,
        ),
    );
    let _ = Command::new(&ctl)
        .arg("-c")
        .arg(&conf_path)
        .arg("shutdown")
        .output();
}

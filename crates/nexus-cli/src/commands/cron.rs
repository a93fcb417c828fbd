//! `nexus cron ...`: the jobs file, and running a job (through nexusd when
//! it runs, else here).

use std::time::Duration;

use nexus_core::NexusHome;
use nexus_daemon::cron::{self, Action, Missed};
use serde_json::{json, Value};

use super::Context;
use crate::cli::CronCommand;
use crate::exit::CliError;
use crate::output;

fn what(a: &Action) -> String {
    match a {
        Action::Command { argv } => argv.join(" "),
        Action::Ask { prompt } => format!("ask: {prompt}"),
    }
}

fn last_runs(home: &NexusHome) -> std::collections::BTreeMap<String, Value> {
    let text = std::fs::read_to_string(home.join("cron-runs.jsonl")).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| Some((v["id"].as_str()?.to_string(), v)))
        .collect()
}

pub(crate) async fn run(cmd: CronCommand) -> Result<(), CliError> {
    let home = NexusHome::from_env()?;
    home.ensure()?;
    match cmd {
        CronCommand::Add {
            schedule,
            ask,
            missed,
            command,
        } => {
            let action = match (ask, command.is_empty()) {
                (Some(prompt), _) => Action::Ask { prompt },
                (None, false) => Action::Command { argv: command },
                (None, true) => {
                    return Err(CliError::config(
                        "say what the job does: `-- COMMAND ARGS` or `--ask PROMPT`",
                    ))
                }
            };
            let missed = if missed == "skip" {
                Missed::Skip
            } else {
                Missed::RunOnce
            };
            let id = cron::add(&home, &schedule, action, missed).map_err(CliError::config)?;
            let next = cron::next_times(&schedule, &chrono::Local::now(), 1)
                .ok()
                .and_then(|n| n.first().map(|t| t.to_rfc3339()))
                .unwrap_or_default();
            eprintln!("added {id}; next at {next}");
            if nexus_daemon::call(&home, "status").await.is_err() {
                eprintln!("nexusd is not running: `nexus daemon start` runs the jobs");
            }
            Ok(())
        }
        CronCommand::List { json } => {
            let jobs = cron::load(&home).map_err(CliError::config)?;
            let last = last_runs(&home);
            let now = chrono::Local::now();
            let rows: Vec<Value> = jobs
                .iter()
                .map(|j| {
                    json!({
                        "id": j.id,
                        "schedule": j.schedule,
                        "does": what(&j.action),
                        "missed": j.missed,
                        "next": cron::next_times(&j.schedule, &now, 1).ok().and_then(|n| n.first().map(|t| t.to_rfc3339())),
                        "last": last.get(&j.id),
                    })
                })
                .collect();
            if json {
                return output::json(&rows);
            }
            if rows.is_empty() {
                return output::print_str(
                    "no cron jobs; add one with `nexus cron add \"0 9 * * 1-5\" -- COMMAND`\n",
                );
            }
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r["id"].as_str().unwrap_or("").to_string(),
                        r["schedule"].as_str().unwrap_or("").to_string(),
                        r["next"].as_str().unwrap_or("-").to_string(),
                        r["last"]["status"].as_str().unwrap_or("-").to_string(),
                        r["does"].as_str().unwrap_or("").to_string(),
                    ]
                })
                .collect();
            output::table(&["ID", "SCHEDULE", "NEXT", "LAST", "DOES"], &table)
        }
        CronCommand::Rm { id } => {
            cron::remove(&home, &id).map_err(CliError::config)?;
            eprintln!("removed {id}");
            Ok(())
        }
        CronCommand::Run { id } => {
            let r = match nexus_daemon::call_with(
                &home,
                "cron.run",
                json!({ "id": id }),
                Duration::from_secs(3700),
            )
            .await
            {
                Ok(v) => v,
                Err(nexus_daemon::DaemonError::NotRunning(_)) => {
                    let job = cron::load(&home)
                        .map_err(CliError::config)?
                        .into_iter()
                        .find(|j| j.id == id)
                        .ok_or_else(|| {
                            CliError::config(format!("no cron job `{id}`; see `nexus cron list`"))
                        })?;
                    let client = Context::load()?.client()?;
                    serde_json::to_value(cron::run(&home, &client, &job, 0).await)
                        .map_err(|e| CliError::internal(e.to_string()))?
                }
                Err(e) => return Err(CliError::config(e.to_string())),
            };
            output::print_str(&format!(
                "{}\n",
                r["output"].as_str().unwrap_or("").trim_end()
            ))?;
            if r["status"] != "ok" {
                return Err(CliError::new(
                    crate::exit::Class::Internal,
                    format!("{id} {}", r["status"].as_str().unwrap_or("failed")),
                ));
            }
            Ok(())
        }
        CronCommand::Next {
            schedule,
            from,
            count,
        } => {
            let from = match from {
                Some(f) => chrono::DateTime::parse_from_rfc3339(&f)
                    .map_err(|e| CliError::config(format!("--from `{f}` is not RFC 3339: {e}")))?
                    .with_timezone(&chrono::Local),
                None => chrono::Local::now(),
            };
            let times =
                cron::next_times(&schedule, &from, count.min(1000)).map_err(CliError::config)?;
            output::print_str(
                &times
                    .iter()
                    .map(|t| format!("{}\n", t.to_rfc3339()))
                    .collect::<String>(),
            )
        }
    }
}

//! `nexus history`: the conversation log the SDK keeps.

use nexus_core::NexusHome;
use nexus_sdk::history::{Conversation, History};

use crate::cli::HistoryCommand;
use crate::exit::CliError;
use crate::output;

fn when(ms: u64) -> String {
    // UTC, minute precision: enough to tell conversations apart.
    let secs = ms / 1000;
    let day = nexus_hierarchy::ledger::day_of(ms);
    format!("{day} {:02}:{:02}", (secs / 3600) % 24, (secs / 60) % 60)
}

fn table(list: &[Conversation]) -> Result<(), CliError> {
    if list.is_empty() {
        return output::print_str("no conversations yet; `nexus chat PROMPT` starts one\n");
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                when(c.updated_ms),
                c.model.clone(),
                c.title.clone(),
            ]
        })
        .collect();
    output::table(&["ID", "UPDATED (UTC)", "MODEL", "TITLE"], &rows)
}

pub(crate) fn run(cmd: HistoryCommand) -> Result<(), CliError> {
    let home = NexusHome::from_env()?;
    let h = History::open(&home)?;
    match cmd {
        HistoryCommand::List { count, json } => {
            let list = h.list(count)?;
            if json {
                return output::json(&list);
            }
            table(&list)
        }
        HistoryCommand::Search { text, count, json } => {
            let list = h.search(&text, count)?;
            if json {
                return output::json(&list);
            }
            table(&list)
        }
        HistoryCommand::Show { id, json } => {
            let c = h.get(&id)?.ok_or_else(|| {
                CliError::config(format!("no conversation `{id}`; see `nexus history list`"))
            })?;
            if json {
                return output::json(&c);
            }
            let mut out = format!(
                "conversation {} · {} · started {} UTC\n",
                c.id,
                c.model,
                when(c.created_ms)
            );
            for t in &c.turns {
                out.push_str(&format!(
                    "\n> {}\n\n{}\n\n[{} · {} in · {} out{}]\n",
                    t.prompt,
                    t.response,
                    t.model,
                    t.input_tokens,
                    t.output_tokens,
                    t.cost.map_or(String::new(), |c| format!(" · ${c:.6}"))
                ));
            }
            output::print_str(&out)
        }
        HistoryCommand::Rm { id } => {
            if h.remove(&id)? {
                eprintln!("removed conversation {id}");
                Ok(())
            } else {
                Err(CliError::config(format!(
                    "no conversation `{id}`; see `nexus history list`"
                )))
            }
        }
    }
}

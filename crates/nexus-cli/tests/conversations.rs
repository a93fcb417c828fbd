//! Conversations through the CLI, across processes: `-c`, `--cid`, the log
//! (`nexus history ...`), `--no-log`, the interactive loop fed by a pipe,
//! and two processes continuing the same conversation at once.

#![allow(clippy::unwrap_used, missing_docs)]

use nexus_testkit::{Api, StandIn};
use serde_json::Value;

mod common;

use common::{stderr, stdout, Run};

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

fn last_body(s: &StandIn) -> Value {
    s.requests_for(Api::OpenAi).last().unwrap().body.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn continue_the_last_or_a_given_conversation_across_processes() {
    let s = StandIn::start().await;
    let r = Run::with_standin(&s);
    let o = r
        .run(&[
            "chat",
            "-m",
            "openai/gpt-4o-mini",
            "--json",
            "my name is Ada",
        ])
        .await;
    let first = json(&o)["conversation_id"].as_str().unwrap().to_string();
    // Another process continues it: the model sees the earlier turn, and
    // the model defaults to the conversation's.
    let o = r.run(&["chat", "-c", "what is my name?"]).await;
    assert_eq!(stdout(&o), "echo: what is my name?\n", "{}", stderr(&o));
    let sent = last_body(&s)["messages"].to_string();
    assert!(
        sent.contains("my name is Ada") && sent.contains("echo: my name is Ada"),
        "{sent}"
    );

    // A second conversation, then back to the first by id (a prefix will do).
    let o = r
        .run(&["chat", "-m", "openai/gpt-4o-mini", "unrelated"])
        .await;
    assert!(o.status.success());
    let o = r.run(&["chat", "--cid", &first[..8], "and again?"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let sent = last_body(&s)["messages"].to_string();
    assert!(
        sent.contains("my name is Ada") && !sent.contains("unrelated"),
        "{sent}"
    );

    let v = json(&r.run(&["history", "show", &first, "--json"]).await);
    let prompts: Vec<&str> = v["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["prompt"].as_str().unwrap())
        .collect();
    assert_eq!(
        prompts,
        ["my name is Ada", "what is my name?", "and again?"]
    );
    let v = json(&r.run(&["history", "list", "--json"]).await);
    assert_eq!(v.as_array().unwrap().len(), 2);
    assert_eq!(v[0]["id"], first.as_str(), "the newest first");
    let v = json(&r.run(&["history", "search", "unrelated", "--json"]).await);
    assert_eq!(v.as_array().unwrap().len(), 1);

    // Not logged: neither with --no-log nor with history.log = false.
    let o = r
        .run(&[
            "chat",
            "-m",
            "openai/gpt-4o-mini",
            "--no-log",
            "secret plans",
        ])
        .await;
    assert!(o.status.success());
    let o = r.run(&["config", "set", "history.log", "false"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let o = r
        .run(&["chat", "-m", "openai/gpt-4o-mini", "more secret plans"])
        .await;
    assert!(o.status.success());
    let v = json(&r.run(&["history", "search", "secret", "--json"]).await);
    assert_eq!(v.as_array().unwrap().len(), 0, "{v}");

    let o = r.run(&["history", "rm", &first]).await;
    assert!(o.status.success());
    let o = r.run(&["chat", "--cid", &first, "gone?"]).await;
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("nexus history list"), "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_continue_one_conversation_at_once() {
    let s = StandIn::start().await;
    let r = Run::with_standin(&s);
    let o = r
        .run(&["chat", "-m", "openai/gpt-4o-mini", "--json", "start"])
        .await;
    let id = json(&o)["conversation_id"].as_str().unwrap().to_string();
    let args_a = ["chat", "--cid", id.as_str(), "from a"];
    let args_b = ["chat", "--cid", id.as_str(), "from b"];
    let (a, b) = tokio::join!(r.run(&args_a), r.run(&args_b));
    assert!(
        a.status.success() && b.status.success(),
        "{}{}",
        stderr(&a),
        stderr(&b)
    );
    let v = json(&r.run(&["history", "show", &id, "--json"]).await);
    let mut prompts: Vec<&str> = v["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["prompt"].as_str().unwrap())
        .collect();
    prompts.sort_unstable();
    assert_eq!(prompts, ["from a", "from b", "start"], "a turn was lost");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_interactive_loop_reads_turns_and_multiline_blocks() {
    let s = StandIn::start().await;
    let r = Run::with_standin(&s);
    let o = r
        .run_stdin(
            &["chat", "-i", "-m", "openai/gpt-4o-mini"],
            Some("hello\n\n!multi\nline one\nline two\n!end\nfail 400\nlast one\n"),
        )
        .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "echo: hello\necho: line one\nline two\necho: last one\n",
        "{}",
        stderr(&o)
    );
    // A failed turn is reported and the chat goes on.
    assert!(stderr(&o).contains("error:"), "{}", stderr(&o));
    let sent = last_body(&s)["messages"].to_string();
    assert!(sent.contains("line one\\nline two"), "{sent}");
    let v = json(&r.run(&["history", "list", "--json"]).await);
    let id = v[0]["id"].as_str().unwrap();
    assert!(
        stderr(&o).contains(&format!("nexus chat --cid {id}")),
        "{}",
        stderr(&o)
    );
    let v = json(&r.run(&["history", "show", id, "--json"]).await);
    assert_eq!(v["turns"].as_array().unwrap().len(), 3);
}

//! Shared conformance suites: every implementation of a trait runs the same
//! checks.
//!
//! # The echo protocol
//!
//! Provider conformance runs against a model that follows this protocol (the
//! [`MemoryProvider`](crate::MemoryProvider) and the `nexus-testkit` stand-in
//! servers both do):
//!
//! - `tool NAME JSON` → a single tool call `NAME(JSON)`, stop reason `tool_use`;
//! - `fail STATUS` → the provider's own error for that HTTP status;
//! - anything else → the text `echo: PROMPT`, stop reason `end_turn`.
//!
//! Usage counts whitespace-separated words: input is every word of the system
//! prompt and messages, output is the words of the answer.
//!
//! Each suite is a set of `async fn`s returning `Result<(), String>`; the
//! `*_conformance_tests!` macros turn them into `#[tokio::test]`s.

use futures_util::StreamExt;

use crate::error::{ErrorKind, ProviderError};
use crate::provider::{last_user_text, parse_tool_prompt, Provider};
use crate::types::{ChatRequest, ContentPart, StopReason, StreamEvent, Tool, ToolCall, Usage};
use crate::vault::{Secret, Vault};
use crate::StreamAccumulator;

/// What an echo-protocol model answers.
#[derive(Debug, Clone, PartialEq)]
pub enum EchoAnswer {
    /// Plain text.
    Text(String),
    /// A tool call.
    Tool(ToolCall),
    /// An HTTP error status.
    Fail(u16),
}

/// The echo protocol's answer to `request`.
pub fn echo_answer(request: &ChatRequest) -> EchoAnswer {
    let prompt = last_user_text(request);
    if let Some(call) = parse_tool_prompt(&prompt) {
        return EchoAnswer::Tool(call);
    }
    if let Some(code) = prompt.strip_prefix("fail ") {
        if let Ok(status) = code.trim().parse::<u16>() {
            return EchoAnswer::Fail(status);
        }
    }
    EchoAnswer::Text(format!("echo: {prompt}"))
}

/// The echo protocol's usage for `request` answered with `answer`.
pub fn echo_usage(request: &ChatRequest, answer: &str) -> Usage {
    let mut input = request
        .system
        .as_deref()
        .map_or(0, |s| s.split_whitespace().count());
    for m in &request.messages {
        for p in &m.content {
            if let ContentPart::Text { text } = p {
                input += text.split_whitespace().count();
            }
        }
    }
    Usage {
        input_tokens: input.max(1) as u64,
        output_tokens: answer.split_whitespace().count().max(1) as u64,
        ..Default::default()
    }
}

/// The error class a provider's HTTP status maps to, absent a more specific
/// code in the body.
pub fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::Auth,
        402 => ErrorKind::QuotaExceeded,
        408 => ErrorKind::Timeout,
        413 => ErrorKind::ContextWindowExceeded,
        429 => ErrorKind::RateLimited,
        503 | 529 => ErrorKind::Overloaded,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::InvalidRequest,
    }
}

fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// Provider suite.
pub mod provider {
    use super::*;

    /// A plain prompt is echoed back with usage and a stop reason.
    pub async fn chat_echo<P: Provider + ?Sized>(p: &P, model: &str) -> Result<(), String> {
        let req = ChatRequest::new(model, "hello conformance").with_system("be brief");
        let r = p.chat(&req).await.map_err(|e| e.to_string())?;
        check(r.text == "echo: hello conformance", || {
            format!("text was {:?}", r.text)
        })?;
        check(r.stop_reason == StopReason::EndTurn, || {
            format!("stop was {:?}", r.stop_reason)
        })?;
        check(
            r.usage.input_tokens > 0 && r.usage.output_tokens > 0,
            || format!("usage was {:?}", r.usage),
        )?;
        check(!r.model.is_empty(), || "model was empty".into())
    }

    /// Folding the stream gives what `chat` returns, and `Stop` comes once.
    pub async fn stream_matches_chat<P: Provider + ?Sized>(
        p: &P,
        model: &str,
    ) -> Result<(), String> {
        let req = ChatRequest::new(model, "stream me some words please");
        let whole = p.chat(&req).await.map_err(|e| e.to_string())?;
        let mut s = p.stream(&req).await.map_err(|e| e.to_string())?;
        let mut acc = StreamAccumulator::new(model);
        let mut stops = 0;
        let mut deltas = 0;
        while let Some(ev) = s.next().await {
            let ev = ev.map_err(|e| e.to_string())?;
            match &ev {
                StreamEvent::Stop { .. } => stops += 1,
                StreamEvent::TextDelta { .. } => deltas += 1,
                _ => {}
            }
            acc.push(&ev);
        }
        check(stops == 1, || format!("{stops} stop events"))?;
        check(deltas >= 1, || "no text deltas".into())?;
        let streamed = acc.finish()?;
        check(streamed.text == whole.text, || {
            format!("stream {:?} != chat {:?}", streamed.text, whole.text)
        })?;
        check(streamed.usage == whole.usage, || {
            format!(
                "stream usage {:?} != chat {:?}",
                streamed.usage, whole.usage
            )
        })?;
        check(streamed.stop_reason == whole.stop_reason, || {
            "stop reasons differ".into()
        })
    }

    /// Tool calls come back typed, streamed or not.
    pub async fn tool_call<P: Provider + ?Sized>(p: &P, model: &str) -> Result<(), String> {
        let mut req = ChatRequest::new(model, r#"tool get_weather {"city":"Paris","days":2}"#);
        req.tools.push(Tool {
            name: "get_weather".into(),
            description: "Weather".into(),
            input_schema: serde_json::json!({"type":"object","properties":{"city":{"type":"string"}}}),
        });
        let r = p.chat(&req).await.map_err(|e| e.to_string())?;
        check(r.stop_reason == StopReason::ToolUse, || {
            format!("stop was {:?}", r.stop_reason)
        })?;
        check(r.tool_calls.len() == 1, || {
            format!("{} tool calls", r.tool_calls.len())
        })?;
        let c = &r.tool_calls[0];
        check(
            c.name == "get_weather" && c.arguments["city"] == "Paris" && c.arguments["days"] == 2,
            || format!("call was {c:?}"),
        )?;
        check(!c.id.is_empty(), || "tool call id empty".into())?;
        let mut s = p.stream(&req).await.map_err(|e| e.to_string())?;
        let mut acc = StreamAccumulator::new(model);
        while let Some(ev) = s.next().await {
            acc.push(&ev.map_err(|e| e.to_string())?);
        }
        let streamed = acc.finish()?;
        check(streamed.tool_calls.len() == 1, || {
            "streamed call missing".into()
        })?;
        check(streamed.tool_calls[0].arguments == c.arguments, || {
            format!("streamed args {:?}", streamed.tool_calls[0].arguments)
        })
    }

    /// HTTP failures map to typed errors with the status and provider name.
    pub async fn errors_are_typed<P: Provider + ?Sized>(p: &P, model: &str) -> Result<(), String> {
        for (status, kind) in [
            (401, ErrorKind::Auth),
            (400, ErrorKind::InvalidRequest),
            (429, ErrorKind::RateLimited),
        ] {
            let req = ChatRequest::new(model, format!("fail {status}"));
            let e: ProviderError = match p.chat(&req).await {
                Ok(r) => return Err(format!("fail {status} succeeded: {r:?}")),
                Err(e) => e,
            };
            check(e.kind == kind, || format!("{status} gave {:?}", e.kind))?;
            check(e.status == Some(status), || {
                format!("{status} reported status {:?}", e.status)
            })?;
            check(e.provider == p.name(), || {
                format!("error names provider {:?}", e.provider)
            })?;
        }
        Ok(())
    }

    /// `list_models` answers.
    pub async fn lists_models<P: Provider + ?Sized>(p: &P) -> Result<(), String> {
        let m = p.list_models().await.map_err(|e| e.to_string())?;
        check(!m.is_empty(), || "no models".into())
    }
}

/// Generates the provider conformance tests. `$make` is an async block that
/// yields `(provider, model)`; it runs once per test.
#[macro_export]
macro_rules! provider_conformance_tests {
    ($make:expr) => {
        #[tokio::test]
        async fn conformance_chat_echo() {
            let (p, m) = $make.await;
            $crate::conformance::provider::chat_echo(&p, &m)
                .await
                .unwrap();
        }
        #[tokio::test]
        async fn conformance_stream_matches_chat() {
            let (p, m) = $make.await;
            $crate::conformance::provider::stream_matches_chat(&p, &m)
                .await
                .unwrap();
        }
        #[tokio::test]
        async fn conformance_tool_call() {
            let (p, m) = $make.await;
            $crate::conformance::provider::tool_call(&p, &m)
                .await
                .unwrap();
        }
        #[tokio::test]
        async fn conformance_errors_are_typed() {
            let (p, m) = $make.await;
            $crate::conformance::provider::errors_are_typed(&p, &m)
                .await
                .unwrap();
        }
        #[tokio::test]
        async fn conformance_lists_models() {
            let (p, _m) = $make.await;
            $crate::conformance::provider::lists_models(&p)
                .await
                .unwrap();
        }
    };
}

/// Vault suite.
pub mod vault {
    use super::*;

    /// Set, get, overwrite, delete.
    pub fn round_trip(v: &dyn Vault) -> Result<(), String> {
        let name = "conformance/round-trip";
        v.set(name, &Secret::new("first"))
            .map_err(|e| e.to_string())?;
        let got = v.get(name).map_err(|e| e.to_string())?;
        check(got.as_ref().map(Secret::expose) == Some("first"), || {
            "get after set".into()
        })?;
        v.set(name, &Secret::new("second"))
            .map_err(|e| e.to_string())?;
        let got = v.get(name).map_err(|e| e.to_string())?;
        check(got.as_ref().map(Secret::expose) == Some("second"), || {
            "overwrite".into()
        })?;
        check(v.delete(name).map_err(|e| e.to_string())?, || {
            "delete reported nothing removed".into()
        })?;
        check(v.get(name).map_err(|e| e.to_string())?.is_none(), || {
            "get after delete".into()
        })?;
        check(!v.delete(name).map_err(|e| e.to_string())?, || {
            "second delete reported a removal".into()
        })
    }

    /// `list` filters by prefix, is sorted, and never returns values.
    pub fn list_by_prefix(v: &dyn Vault) -> Result<(), String> {
        for n in ["conf-list/b", "conf-list/a", "conf-other/c"] {
            v.set(n, &Secret::new(format!("value-of-{n}")))
                .map_err(|e| e.to_string())?;
        }
        let names = v.list("conf-list/").map_err(|e| e.to_string())?;
        check(names == ["conf-list/a", "conf-list/b"], || {
            format!("list gave {names:?}")
        })?;
        for n in ["conf-list/b", "conf-list/a", "conf-other/c"] {
            v.delete(n).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Large and non-ASCII values survive.
    pub fn large_and_unicode_values(v: &dyn Vault) -> Result<(), String> {
        let big: String = "é🔑x".repeat(3000);
        v.set("conformance/big", &Secret::new(big.clone()))
            .map_err(|e| e.to_string())?;
        let got = v.get("conformance/big").map_err(|e| e.to_string())?;
        check(
            got.as_ref().map(Secret::expose) == Some(big.as_str()),
            || "big value changed".into(),
        )?;
        v.delete("conformance/big").map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Bad names are refused.
    pub fn rejects_bad_names(v: &dyn Vault) -> Result<(), String> {
        for bad in ["", "no-namespace", "a//b", "../etc/passwd", "x/ space"] {
            check(v.set(bad, &Secret::new("v")).is_err(), || {
                format!("accepted name {bad:?}")
            })?;
        }
        Ok(())
    }
}

/// Generates the vault conformance tests. `$make` is an expression yielding
/// something that derefs to `dyn Vault`; it runs once per test.
#[macro_export]
macro_rules! vault_conformance_tests {
    ($make:expr) => {
        #[test]
        fn vault_conformance_round_trip() {
            let v = $make;
            $crate::conformance::vault::round_trip(&*v).unwrap();
        }
        #[test]
        fn vault_conformance_list_by_prefix() {
            let v = $make;
            $crate::conformance::vault::list_by_prefix(&*v).unwrap();
        }
        #[test]
        fn vault_conformance_large_and_unicode_values() {
            let v = $make;
            $crate::conformance::vault::large_and_unicode_values(&*v).unwrap();
        }
        #[test]
        fn vault_conformance_rejects_bad_names() {
            let v = $make;
            $crate::conformance::vault::rejects_bad_names(&*v).unwrap();
        }
    };
}

/// Transport suite.
pub mod transport {
    use super::*;
    use crate::transport::Transport;

    /// Frames arrive in order, both ways, and close is seen.
    pub async fn ordered_duplex<T: Transport + ?Sized>(a: &T, b: &T) -> Result<(), String> {
        for i in 0..50u8 {
            a.send(vec![i; usize::from(i) + 1])
                .await
                .map_err(|e| e.to_string())?;
        }
        for i in 0..50u8 {
            let f = b.recv().await.map_err(|e| e.to_string())?;
            check(f == Some(vec![i; usize::from(i) + 1]), || {
                format!("frame {i} was {f:?}")
            })?;
        }
        b.send(b"pong".to_vec()).await.map_err(|e| e.to_string())?;
        let f = a.recv().await.map_err(|e| e.to_string())?;
        check(f.as_deref() == Some(&b"pong"[..]), || "reply lost".into())?;
        a.close().await;
        let f = b.recv().await.map_err(|e| e.to_string())?;
        check(f.is_none(), || "close not seen".into())
    }
}

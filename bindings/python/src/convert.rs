//! Conversions between Python values and the SDK's types.

use nexus_sdk as sdk;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::vault::VaultErrorSlot;

/// Token counts of one call.
#[pyclass(module = "nexus", frozen, get_all)]
#[derive(Clone)]
pub(crate) struct Usage {
    input_tokens: u64,
    output_tokens: u64,
    cache_read_tokens: u64,
    cache_write_tokens: u64,
    reasoning_tokens: u64,
}

#[pymethods]
impl Usage {
    /// Every token billed.
    #[getter]
    fn total_tokens(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    fn __repr__(&self) -> String {
        format!(
            "Usage(input_tokens={}, output_tokens={}, cache_read_tokens={}, cache_write_tokens={}, reasoning_tokens={})",
            self.input_tokens, self.output_tokens, self.cache_read_tokens, self.cache_write_tokens, self.reasoning_tokens
        )
    }
}

fn usage(u: sdk::Usage) -> Usage {
    Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cache_read_tokens: u.cache_read_tokens,
        cache_write_tokens: u.cache_write_tokens,
        reasoning_tokens: u.reasoning_tokens,
    }
}

/// A complete answer.
#[pyclass(module = "nexus", frozen, get_all)]
#[derive(Clone)]
pub(crate) struct Reply {
    text: String,
    model: String,
    provider: String,
    usage: Usage,
    /// Dollars, when the model's prices are known.
    cost: Option<f64>,
    stop_reason: String,
    request_id: Option<String>,
    reasoning: String,
    /// `[{"id", "name", "arguments"}]`.
    tool_calls: Vec<(String, String, String)>,
    /// The answer as JSON text, when a schema was asked for.
    json_text: Option<String>,
    /// `assistant_message()` as JSON text.
    assistant_json: String,
}

#[pymethods]
impl Reply {
    /// The answer parsed as JSON, when `schema=` asked for it (else `None`).
    #[getter]
    fn json<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.json_text
            .as_ref()
            .map(|s| py.import("json")?.call_method1("loads", (s,)))
            .transpose()
    }

    /// The answer as an assistant message dict (text and tool calls), to
    /// append to the conversation before the tool results.
    fn assistant_message<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?
            .call_method1("loads", (&self.assistant_json,))
    }

    fn __repr__(&self) -> String {
        format!(
            "Reply(text={:?}, model={:?}, provider={:?}, cost={:?}, stop_reason={:?})",
            self.text, self.model, self.provider, self.cost, self.stop_reason
        )
    }

    fn __str__(&self) -> String {
        self.text.clone()
    }
}

pub(crate) fn reply(r: sdk::Reply) -> Reply {
    let assistant_json = serde_json::to_string(&r.assistant_message()).unwrap_or_default();
    Reply {
        json_text: r.json.as_ref().map(ToString::to_string),
        assistant_json,
        text: r.text,
        model: r.model,
        provider: r.provider,
        usage: usage(r.usage),
        cost: r.cost.map(|c| c.dollars()),
        stop_reason: r.stop_reason,
        request_id: r.request_id,
        reasoning: r.reasoning,
        tool_calls: r
            .tool_calls
            .into_iter()
            .map(|t| (t.id, t.name, t.arguments.to_string()))
            .collect(),
    }
}

/// One attempt of an `ask`.
#[pyclass(module = "nexus", frozen, get_all)]
#[derive(Clone)]
pub(crate) struct Attempt {
    tier: u32,
    model: String,
    outcome: String,
    error_kind: Option<String>,
    reason: Option<String>,
    escalation: Option<String>,
    usage: Usage,
    cost: f64,
    latency_ms: u64,
}

#[pymethods]
impl Attempt {
    fn __repr__(&self) -> String {
        format!(
            "Attempt(tier={}, model={:?}, outcome={:?}, reason={:?}, escalation={:?})",
            self.tier, self.model, self.outcome, self.reason, self.escalation
        )
    }
}

pub(crate) fn attempt(a: &sdk::AttemptInfo) -> Attempt {
    Attempt {
        tier: a.tier,
        model: a.model.clone(),
        outcome: a.outcome.clone(),
        error_kind: a.error_kind.clone(),
        reason: a.reason.clone(),
        escalation: a.escalation.clone(),
        usage: usage(a.usage),
        cost: a.cost.dollars(),
        latency_ms: a.latency_ms,
    }
}

/// An answer the hierarchy accepted.
#[pyclass(module = "nexus", frozen, get_all)]
pub(crate) struct AskReply {
    text: String,
    model: String,
    provider: String,
    usage: Usage,
    /// The accepted attempt's cost, in dollars.
    cost: Option<f64>,
    reply: Reply,
    request_id: String,
    category: String,
    basis: String,
    tier: u32,
    escalations: u32,
    total_cost: f64,
    attempts: Vec<Attempt>,
}

#[pymethods]
impl AskReply {
    fn __repr__(&self) -> String {
        format!(
            "AskReply(text={:?}, category={:?}, tier={}, escalations={}, total_cost={})",
            self.reply.text, self.category, self.tier, self.escalations, self.total_cost
        )
    }

    fn __str__(&self) -> String {
        self.text.clone()
    }
}

pub(crate) fn ask_reply(a: sdk::AskReply) -> AskReply {
    let r = reply(a.reply);
    AskReply {
        text: r.text.clone(),
        model: r.model.clone(),
        provider: r.provider.clone(),
        usage: r.usage.clone(),
        cost: r.cost,
        reply: r,
        request_id: a.request_id,
        category: a.category,
        basis: a.basis,
        tier: a.tier,
        escalations: a.escalations,
        total_cost: a.total_cost.dollars(),
        attempts: a.attempts.iter().map(attempt).collect(),
    }
}

/// The router's decision.
#[pyclass(module = "nexus", frozen, get_all)]
pub(crate) struct Route {
    category: String,
    basis: String,
    tier: Option<u32>,
    model: Option<String>,
    estimate: f64,
}

#[pymethods]
impl Route {
    fn __repr__(&self) -> String {
        format!(
            "Route(category={:?}, basis={:?}, tier={:?}, model={:?}, estimate={})",
            self.category, self.basis, self.tier, self.model, self.estimate
        )
    }
}

pub(crate) fn route(r: sdk::Route) -> Route {
    Route {
        category: r.category,
        basis: r.basis,
        tier: r.tier,
        model: r.model,
        estimate: r.estimate.dollars(),
    }
}

/// A built-in preset.
#[pyclass(module = "nexus", frozen, get_all)]
pub(crate) struct Preset {
    name: String,
    description: String,
}

#[pymethods]
impl Preset {
    fn __repr__(&self) -> String {
        format!("Preset({:?})", self.name)
    }
}

impl From<sdk::PresetInfo> for Preset {
    fn from(p: sdk::PresetInfo) -> Self {
        Preset {
            name: p.name,
            description: p.description,
        }
    }
}

/// One event of a stream. `type` is `start`, `text`, `reasoning`,
/// `tool_call`, `usage` or `stop`; the other fields are set by type.
#[pyclass(module = "nexus", frozen, get_all)]
pub(crate) struct StreamEvent {
    r#type: &'static str,
    text: Option<String>,
    model: Option<String>,
    index: Option<u32>,
    id: Option<String>,
    name: Option<String>,
    arguments: Option<String>,
    usage: Option<Usage>,
    stop_reason: Option<String>,
}

#[pymethods]
impl StreamEvent {
    fn __repr__(&self) -> String {
        match self.r#type {
            "text" | "reasoning" => format!("StreamEvent({:?}, {:?})", self.r#type, self.text),
            t => format!("StreamEvent({t:?})"),
        }
    }
}

pub(crate) fn event(e: sdk::StreamEvent) -> StreamEvent {
    let f = sdk::FlatEvent::from(e);
    StreamEvent {
        r#type: f.kind,
        text: f.text,
        model: f.model,
        index: f.index,
        id: f.id,
        name: f.name,
        arguments: f.arguments,
        usage: f.usage.map(usage),
        stop_reason: f.stop_reason,
    }
}

/// Plain Python data (dicts, lists, str, numbers) as a typed value, through JSON.
pub(crate) fn from_py<T: serde::de::DeserializeOwned>(
    v: &Bound<'_, PyAny>,
    what: &str,
) -> PyResult<T> {
    let s: String = v
        .py()
        .import("json")?
        .call_method1("dumps", (v,))?
        .extract()?;
    serde_json::from_str(&s).map_err(|e| PyTypeError::new_err(format!("{what}: {e}")))
}

/// A prompt string, or a list of `{"role", "content"}` dicts; `content`
/// may be a list of parts (`{"type": "text" | "tool_call" | "tool_result", ...}`)
/// to carry tool calls and results.
pub(crate) fn input(v: &Bound<'_, PyAny>) -> PyResult<sdk::Input> {
    if v.is_instance_of::<PyString>() {
        return Ok(sdk::Input::Prompt(v.extract::<String>()?));
    }
    if let Ok(list) = v.cast::<PyList>() {
        let rich = list.iter().any(|m| {
            m.get_item("content")
                .is_ok_and(|c| !c.is_instance_of::<PyString>())
        });
        if rich {
            let value: serde_json::Value = from_py(v, "messages")?;
            return sdk::Input::from_json(&value)
                .map_err(|e| PyTypeError::new_err(e.message().to_string()));
        }
        let mut out = Vec::with_capacity(list.len());
        for item in list.iter() {
            let d = item.cast::<PyDict>().map_err(|_| {
                PyTypeError::new_err("each message must be a dict with `role` and `content`")
            })?;
            let get = |k: &str| -> PyResult<String> {
                d.get_item(k)?
                    .ok_or_else(|| PyTypeError::new_err(format!("a message has no `{k}`")))?
                    .extract::<String>()
            };
            out.push((get("role")?, get("content")?));
        }
        return Ok(sdk::Input::Messages(out));
    }
    Err(PyTypeError::new_err(
        "prompt must be a str or a list of {\"role\": ..., \"content\": ...} dicts",
    ))
}

/// A serializable value as plain Python data (dicts, lists, floats).
pub(crate) fn json_to_py<'py, T: serde::Serialize>(
    py: Python<'py>,
    v: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let s = serde_json::to_string(v).map_err(|e| PyTypeError::new_err(e.to_string()))?;
    py.import("json")?.call_method1("loads", (s,))
}

/// The SDK error as an instance of its `nexus.errors` class, with the
/// cause chained: the last provider error of a failed `ask`, or the
/// exception a Python vault raised.
pub(crate) fn to_py_err(py: Python<'_>, e: sdk::Error, vault_errors: &VaultErrorSlot) -> PyErr {
    match build_err(py, &e, vault_errors) {
        Ok(err) => err,
        Err(import_failed) => import_failed,
    }
}

fn build_err(py: Python<'_>, e: &sdk::Error, slot: &VaultErrorSlot) -> PyResult<PyErr> {
    let errors = py.import("nexus.errors")?;
    let cls = errors.getattr(e.code().class_name())?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("code", e.code().as_str())?;
    kwargs.set_item("provider", e.provider())?;
    kwargs.set_item("status", e.status())?;
    kwargs.set_item("request_id", e.request_id())?;
    kwargs.set_item("retry_after", e.retry_after().map(|d| d.as_secs_f64()))?;
    let attempts: Vec<Attempt> = e.attempts().iter().map(attempt).collect();
    kwargs.set_item("attempts", attempts)?;
    let exc = cls.call((e.message(),), Some(&kwargs))?;
    let err = PyErr::from_value(exc);
    let cause = match e.code() {
        sdk::ErrorCode::NoAcceptableAnswer => e
            .provider_error()
            .map(|pe| build_err(py, &sdk::Error::from(pe.clone()), slot))
            .transpose()?,
        sdk::ErrorCode::Vault => slot.take(),
        _ => None,
    };
    if cause.is_some() {
        err.set_cause(py, cause);
    }
    Ok(err)
}

/// What `Client.run_tools` gives back.
#[pyclass(module = "nexus", frozen, get_all)]
pub(crate) struct ToolRun {
    /// The final answer.
    reply: Reply,
    /// `(id, name, arguments_json)` of every tool call made, in order.
    calls: Vec<(String, String, String)>,
    /// Model calls made.
    rounds: u32,
    /// Dollars in all, when every price was known.
    cost: Option<f64>,
    /// `messages` as JSON text.
    messages_json: String,
}

#[pymethods]
impl ToolRun {
    /// The whole conversation as message dicts: send it back with a new
    /// user message to go on.
    #[getter]
    fn messages<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?
            .call_method1("loads", (&self.messages_json,))
    }

    fn __repr__(&self) -> String {
        format!(
            "ToolRun(rounds={}, calls={}, text={:?})",
            self.rounds,
            self.calls.len(),
            self.reply.text
        )
    }
}

pub(crate) fn tool_run(r: sdk::ToolRun) -> ToolRun {
    ToolRun {
        calls: r
            .calls
            .iter()
            .map(|t| (t.id.clone(), t.name.clone(), t.arguments.to_string()))
            .collect(),
        rounds: r.rounds,
        cost: r.cost.map(|c| c.dollars()),
        messages_json: serde_json::to_string(&r.messages).unwrap_or_default(),
        reply: reply(r.reply),
    }
}

/// Calls the Python handler for a tool call: its `str` (or JSON of any
/// other value) is the result; what it raises is a failed result.
pub(crate) fn call_handler(
    handlers: &std::collections::HashMap<String, Py<PyAny>>,
    call: &sdk::ToolCall,
) -> Result<String, String> {
    Python::attach(|py| {
        let f = handlers
            .get(&call.name)
            .ok_or_else(|| format!("there is no handler for the tool `{}`", call.name))?;
        let run = || -> PyResult<String> {
            let args = json_to_py(py, &call.arguments)?;
            let out = f.call1(py, (args,))?.into_bound(py);
            if out.is_instance_of::<PyString>() {
                out.extract()
            } else {
                py.import("json")?.call_method1("dumps", (out,))?.extract()
            }
        };
        run().map_err(|e| {
            e.value(py).repr().map_or_else(
                |_| "the tool raised".to_string(),
                |r| format!("the tool raised {r}"),
            )
        })
    })
}

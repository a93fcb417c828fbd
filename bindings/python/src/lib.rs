//! Python bindings of the Nexus SDK. Each method converts its arguments,
//! calls `nexus_sdk`, and converts the result; blocking calls release the
//! GIL, async ones run on the shared tokio runtime and never block the
//! asyncio loop. Errors become the classes of `nexus.errors`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use nexus_sdk as sdk;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

mod aio;
mod convert;
mod mesh;
mod vault;

use aio::Completions;
use convert::{
    ask_reply, event, input, json_to_py, reply, route, to_py_err, AskReply, Attempt, Preset, Reply,
    Route, StreamEvent, Usage,
};
use vault::{PyVault, VaultErrorSlot};

fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("nexus")
            .build()
            .unwrap_or_else(|e| panic!("cannot start Nexus's tokio runtime: {e}"))
    })
}

/// Runs `f` on the runtime with the GIL released.
fn blocking<T: Send>(py: Python<'_>, f: impl std::future::Future<Output = T> + Send) -> T {
    py.detach(|| rt().block_on(f))
}

struct Shared {
    client: sdk::Client,
    vault_errors: VaultErrorSlot,
}

impl Shared {
    fn err(&self, py: Python<'_>, e: sdk::Error) -> PyErr {
        to_py_err(py, e, &self.vault_errors)
    }
}

fn build(
    home: Option<std::path::PathBuf>,
    env: Option<HashMap<String, String>>,
    vault: Option<Bound<'_, PyAny>>,
) -> PyResult<Arc<Shared>> {
    let slot = VaultErrorSlot::default();
    let vault = vault.map(|v| PyVault::new(v, slot.clone())).transpose()?;
    let opts = sdk::ClientOptions {
        home,
        env: env.unwrap_or_default(),
        vault: vault.map(|v| Arc::new(v) as Arc<dyn sdk::Vault>),
        ..Default::default()
    };
    match sdk::Client::with_options(opts) {
        Ok(client) => Ok(Arc::new(Shared {
            client,
            vault_errors: slot,
        })),
        Err(e) => Python::attach(|py| Err(to_py_err(py, e, &slot))),
    }
}

fn chat_options(
    system: Option<String>,
    max_tokens: Option<u32>,
    temperature: Option<f64>,
    tools: Option<&Bound<'_, PyAny>>,
    schema: Option<&Bound<'_, PyAny>>,
) -> PyResult<sdk::ChatOptions> {
    Ok(sdk::ChatOptions {
        system,
        max_tokens,
        temperature,
        tools: tools
            .map(|t| {
                convert::from_py(
                    t,
                    "tools (a list of {\"name\", \"description\", \"input_schema\"} dicts)",
                )
            })
            .transpose()?
            .unwrap_or_default(),
        response_format: schema
            .map(|s| {
                convert::from_py(s, "schema (a JSON Schema dict)").map(|schema| {
                    sdk::ResponseFormat::JsonSchema {
                        name: "answer".into(),
                        schema,
                    }
                })
            })
            .transpose()?,
    })
}

#[allow(clippy::too_many_arguments)]
fn ask_options(
    category: Option<String>,
    system: Option<String>,
    validate: Option<Vec<String>>,
    test_cmd: Option<String>,
    scheduled: bool,
    read_only: bool,
) -> sdk::AskOptions {
    sdk::AskOptions {
        category,
        system,
        validate: validate.unwrap_or_default(),
        test_cmd,
        scheduled,
        read_only,
    }
}

/// What the sync and async clients share: the non-I/O calls.
macro_rules! client_methods {
    ($t:ty, { $($extra:tt)* }) => {
        #[pymethods]
        impl $t {
            $($extra)*

            /// The state root (`NEXUS_HOME`) this client uses.
            #[getter]
            fn home(&self) -> std::path::PathBuf {
                self.0.client.home()
            }

            /// The vault this client uses.
            #[getter]
            fn vault(&self, py: Python<'_>) -> PyResult<Vault> {
                match self.0.client.vault() {
                    Ok(v) => Ok(Vault {
                        inner: v,
                        shared: self.0.clone(),
                    }),
                    Err(e) => Err(self.0.err(py, e)),
                }
            }

            /// The agent mesh: through the daemon when one runs, else in
            /// this process.
            #[getter]
            fn mesh(&self, py: Python<'_>) -> PyResult<mesh::Mesh> {
                self.mesh_routed(py, "auto")
            }

            /// The mesh, routed: `"auto"`, `"in_process"` or `"daemon"`.
            fn mesh_routed(&self, py: Python<'_>, route: &str) -> PyResult<mesh::Mesh> {
                let r = mesh::route(route)?;
                match self.0.client.mesh_routed(r) {
                    Ok(inner) => Ok(mesh::Mesh {
                        inner,
                        shared: self.0.clone(),
                    }),
                    Err(e) => Err(self.0.err(py, e)),
                }
            }

            /// What `ask` would do with `prompt`, without calling a model.
            #[pyo3(signature = (prompt, category=None))]
            fn route(&self, py: Python<'_>, prompt: &str, category: Option<&str>) -> PyResult<Route> {
                self.0
                    .client
                    .route(prompt, category)
                    .map(route)
                    .map_err(|e| self.0.err(py, e))
            }

            /// `(category, basis)` of `prompt`.
            fn classify(&self, py: Python<'_>, prompt: &str) -> PyResult<(String, String)> {
                self.0.client.classify(prompt).map_err(|e| self.0.err(py, e))
            }

            /// The built-in presets.
            fn presets(&self) -> Vec<Preset> {
                self.0.client.presets().into_iter().map(Preset::from).collect()
            }

            /// The hierarchy in effect, as a dict.
            fn hierarchy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
                let h = self.0.client.hierarchy().map_err(|e| self.0.err(py, e))?;
                json_to_py(py, &h)
            }

            /// Applies and saves a preset; returns the new hierarchy.
            fn use_preset<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
                let h = self.0.client.use_preset(name).map_err(|e| self.0.err(py, e))?;
                json_to_py(py, &h)
            }

            /// Edits one category's tiers (`["tier1=MODEL", "tier3=disabled"]`).
            fn set_tiers<'py>(
                &self,
                py: Python<'py>,
                category: &str,
                edits: Vec<String>,
            ) -> PyResult<Bound<'py, PyAny>> {
                let h = self
                    .0
                    .client
                    .set_tiers(category, &edits)
                    .map_err(|e| self.0.err(py, e))?;
                json_to_py(py, &h)
            }

            /// Escalation and tier statistics of the last `days` days.
            #[pyo3(signature = (days=1))]
            fn stats<'py>(&self, py: Python<'py>, days: u32) -> PyResult<Bound<'py, PyAny>> {
                let s = self.0.client.stats(days).map_err(|e| self.0.err(py, e))?;
                json_to_py(py, &s)
            }

            /// Dollars spent today, open budget holds included.
            fn spent_today(&self, py: Python<'_>) -> PyResult<f64> {
                self.0
                    .client
                    .spent_today()
                    .map(|u| u.dollars())
                    .map_err(|e| self.0.err(py, e))
            }

            fn __repr__(&self) -> String {
                format!("<{} home={:?}>", stringify!($t), self.0.client.home())
            }
        }
    };
}

/// A blocking client. Every call releases the GIL while it waits.
#[pyclass(module = "nexus", frozen)]
struct Client(Arc<Shared>);

client_methods!(Client, {
    #[new]
    #[pyo3(signature = (home=None, env=None, vault=None))]
    fn new(
        home: Option<std::path::PathBuf>,
        env: Option<HashMap<String, String>>,
        vault: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        build(home, env, vault).map(Client)
    }

    /// One call to `model`; `prompt` is a string or a list of
    /// `{"role": ..., "content": ...}` dicts.
    #[pyo3(signature = (model, prompt, *, system=None, max_tokens=None, temperature=None, tools=None, schema=None))]
    #[allow(clippy::too_many_arguments)]
    fn chat(
        &self,
        py: Python<'_>,
        model: &str,
        prompt: &Bound<'_, PyAny>,
        system: Option<String>,
        max_tokens: Option<u32>,
        temperature: Option<f64>,
        tools: Option<&Bound<'_, PyAny>>,
        schema: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Reply> {
        let input = input(prompt)?;
        let opts = chat_options(system, max_tokens, temperature, tools, schema)?;
        let c = &self.0.client;
        blocking(py, c.chat(model, input, &opts))
            .map(reply)
            .map_err(|e| self.0.err(py, e))
    }

    /// Runs a tool loop: the model calls `tools`, each call runs
    /// `handlers[name](arguments_dict)` (its str is the result, what it
    /// raises a failed result), until an answer has no tool calls.
    #[pyo3(signature = (model, prompt, *, tools, handlers, max_rounds=8, system=None, max_tokens=None, temperature=None, schema=None))]
    #[allow(clippy::too_many_arguments)]
    fn run_tools(
        &self,
        py: Python<'_>,
        model: &str,
        prompt: &Bound<'_, PyAny>,
        tools: &Bound<'_, PyAny>,
        handlers: HashMap<String, Py<PyAny>>,
        max_rounds: u32,
        system: Option<String>,
        max_tokens: Option<u32>,
        temperature: Option<f64>,
        schema: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<convert::ToolRun> {
        let input = input(prompt)?;
        let opts = chat_options(system, max_tokens, temperature, Some(tools), schema)?;
        let c = &self.0.client;
        let handlers = &handlers;
        blocking(
            py,
            c.run_tools(model, input, &opts, max_rounds, |call| {
                std::future::ready(convert::call_handler(handlers, &call))
            }),
        )
        .map(convert::tool_run)
        .map_err(|e| self.0.err(py, e))
    }

    /// Streams an answer: iterate for events; `.reply` holds the whole
    /// answer afterwards.
    #[pyo3(signature = (model, prompt, *, system=None, max_tokens=None, temperature=None, tools=None, schema=None))]
    #[allow(clippy::too_many_arguments)]
    fn stream(
        &self,
        py: Python<'_>,
        model: &str,
        prompt: &Bound<'_, PyAny>,
        system: Option<String>,
        max_tokens: Option<u32>,
        temperature: Option<f64>,
        tools: Option<&Bound<'_, PyAny>>,
        schema: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<ChatStream> {
        let input = input(prompt)?;
        let opts = chat_options(system, max_tokens, temperature, tools, schema)?;
        let c = &self.0.client;
        let s = blocking(py, c.stream(model, input, &opts)).map_err(|e| self.0.err(py, e))?;
        let ahead = {
            let _enter = rt().enter();
            s.read_ahead(READ_AHEAD)
        };
        Ok(ChatStream {
            inner: Mutex::new((ahead, VecDeque::new())),
            ended: Default::default(),
            shared: self.0.clone(),
        })
    }

    /// A request through the model hierarchy, with escalation.
    #[pyo3(signature = (prompt, *, category=None, system=None, validate=None, test_cmd=None, scheduled=false, read_only=false))]
    #[allow(clippy::too_many_arguments)]
    fn ask(
        &self,
        py: Python<'_>,
        prompt: &str,
        category: Option<String>,
        system: Option<String>,
        validate: Option<Vec<String>>,
        test_cmd: Option<String>,
        scheduled: bool,
        read_only: bool,
    ) -> PyResult<AskReply> {
        let opts = ask_options(category, system, validate, test_cmd, scheduled, read_only);
        let c = &self.0.client;
        blocking(py, c.ask(prompt, &opts))
            .map(ask_reply)
            .map_err(|e| self.0.err(py, e))
    }
});

/// The asyncio client: `chat`, `stream` and `ask` are coroutines that run
/// on Nexus's own threads and never block the event loop.
#[pyclass(module = "nexus", frozen, subclass)]
struct AsyncClient(Arc<Shared>);

client_methods!(AsyncClient, {
    #[new]
    #[pyo3(signature = (home=None, env=None, vault=None))]
    fn new(
        home: Option<std::path::PathBuf>,
        env: Option<HashMap<String, String>>,
        vault: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        build(home, env, vault).map(AsyncClient)
    }

    /// Starts `chat`; `nexus.AsyncClient.chat` awaits the token.
    #[pyo3(signature = (completions, model, prompt, system=None, max_tokens=None, temperature=None, tools=None, schema=None))]
    #[allow(clippy::too_many_arguments)]
    fn _start_chat(
        &self,
        completions: &Completions,
        model: String,
        prompt: &Bound<'_, PyAny>,
        system: Option<String>,
        max_tokens: Option<u32>,
        temperature: Option<f64>,
        tools: Option<&Bound<'_, PyAny>>,
        schema: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let input = input(prompt)?;
        let opts = chat_options(system, max_tokens, temperature, tools, schema)?;
        let c = self.0.client.clone();
        let shared = self.0.clone();
        Ok(completions.spawn(
            async move { c.chat(&model, input, &opts).await },
            move |py, r| match r {
                Ok(r) => Ok(Py::new(py, reply(r))?.into_any()),
                Err(e) => Err(shared.err(py, e)),
            },
        ))
    }

    /// Starts `stream`; the token resolves to a `NativeAsyncStream`.
    #[pyo3(signature = (completions, model, prompt, system=None, max_tokens=None, temperature=None, tools=None, schema=None))]
    #[allow(clippy::too_many_arguments)]
    fn _start_stream(
        &self,
        completions: &Completions,
        model: String,
        prompt: &Bound<'_, PyAny>,
        system: Option<String>,
        max_tokens: Option<u32>,
        temperature: Option<f64>,
        tools: Option<&Bound<'_, PyAny>>,
        schema: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let input = input(prompt)?;
        let opts = chat_options(system, max_tokens, temperature, tools, schema)?;
        let c = self.0.client.clone();
        let shared = self.0.clone();
        Ok(completions.spawn(
            async move {
                let s = c.stream(&model, input, &opts).await?;
                Ok(s.read_ahead(READ_AHEAD))
            },
            move |py, r: sdk::Result<sdk::ReadAhead>| match r {
                Ok(ahead) => Ok(Py::new(
                    py,
                    NativeAsyncStream {
                        inner: Arc::new(tokio::sync::Mutex::new(ahead)),
                        ended: Arc::default(),
                        shared: shared.clone(),
                    },
                )?
                .into_any()),
                Err(e) => Err(shared.err(py, e)),
            },
        ))
    }

    /// Starts `ask`; `nexus.AsyncClient.ask` awaits the token.
    #[pyo3(signature = (completions, prompt, category=None, system=None, validate=None, test_cmd=None, scheduled=false, read_only=false))]
    #[allow(clippy::too_many_arguments)]
    fn _start_ask(
        &self,
        completions: &Completions,
        prompt: String,
        category: Option<String>,
        system: Option<String>,
        validate: Option<Vec<String>>,
        test_cmd: Option<String>,
        scheduled: bool,
        read_only: bool,
    ) -> u64 {
        let opts = ask_options(category, system, validate, test_cmd, scheduled, read_only);
        let c = self.0.client.clone();
        let shared = self.0.clone();
        completions.spawn(
            async move { c.ask(&prompt, &opts).await },
            move |py, r| match r {
                Ok(r) => Ok(Py::new(py, ask_reply(r))?.into_any()),
                Err(e) => Err(shared.err(py, e)),
            },
        )
    }
});

/// A blocking stream of events.
#[pyclass(module = "nexus")]
struct ChatStream {
    inner: Mutex<(sdk::ReadAhead, VecDeque<sdk::Result<sdk::StreamEvent>>)>,
    /// The consumer reached the end (so `reply` may show the answer).
    ended: std::sync::atomic::AtomicBool,
    shared: Arc<Shared>,
}

const BATCH: usize = 1024;
/// Events read ahead of the consumer, at most.
const READ_AHEAD: usize = 8192;

#[pymethods]
impl ChatStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<StreamEvent>> {
        let mut guard = self
            .inner
            .lock()
            .map_err(|_| PyTypeError::new_err("the stream was poisoned by a panic"))?;
        let (ahead, buf) = &mut *guard;
        if buf.is_empty() {
            // Everything read ahead so far, without releasing the GIL if
            // there is some; else wait for more with the GIL released.
            buf.extend(ahead.ready(BATCH));
            if buf.is_empty() {
                buf.extend(py.detach(|| ahead.blocking_next_batch(BATCH)));
            }
        }
        let next = buf.pop_front();
        if !matches!(next, Some(Ok(_))) {
            self.ended.store(true, std::sync::atomic::Ordering::Release);
        }
        match next {
            None => Ok(None),
            Some(Ok(ev)) => Ok(Some(event(ev))),
            Some(Err(e)) => Err(self.shared.err(py, e)),
        }
    }

    /// The whole answer, once the iteration has ended (else `None`).
    #[getter]
    fn reply(&self) -> Option<Reply> {
        if !self.ended.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let g = self.inner.lock().ok()?;
        g.0.reply().map(reply)
    }

    /// Reads the rest of the stream and returns the whole answer.
    fn collect(&self, py: Python<'_>) -> PyResult<Reply> {
        while self.__next__(py)?.is_some() {}
        self.reply()
            .ok_or_else(|| PyTypeError::new_err("the stream ended without an answer"))
    }
}

/// The native half of `nexus.AsyncChatStream`: hands events over in
/// batches, so a stream costs one trip to the event loop per network
/// read, not per token.
#[pyclass(module = "nexus._nexus", frozen)]
struct NativeAsyncStream {
    inner: Arc<tokio::sync::Mutex<sdk::ReadAhead>>,
    ended: Arc<std::sync::atomic::AtomicBool>,
    shared: Arc<Shared>,
}

#[pymethods]
impl NativeAsyncStream {
    /// Starts taking the next batch of events (an empty list at the end).
    fn _start_next_batch(&self, completions: &Completions) -> u64 {
        let inner = self.inner.clone();
        let shared = self.shared.clone();
        let ended = self.ended.clone();
        completions.spawn(
            async move {
                // A batch is events, or one error alone (after the events
                // before it were delivered).
                let batch = inner.lock().await.next_batch(BATCH).await;
                if batch.is_empty() || batch.iter().any(Result::is_err) {
                    ended.store(true, std::sync::atomic::Ordering::Release);
                }
                batch
            },
            move |py, batch| {
                let mut out = Vec::with_capacity(batch.len());
                for r in batch {
                    match r {
                        Ok(ev) => out.push(event(ev)),
                        Err(e) => return Err(shared.err(py, e)),
                    }
                }
                Ok(out.into_pyobject(py)?.into_any().unbind())
            },
        )
    }

    /// The whole answer, once the stream has ended.
    fn reply(&self) -> Option<Reply> {
        if !self.ended.load(std::sync::atomic::Ordering::Acquire) {
            return None;
        }
        let s = self.inner.try_lock().ok()?;
        s.reply().map(reply)
    }
}

/// The vault the client uses: named secrets.
#[pyclass(module = "nexus", frozen)]
struct Vault {
    inner: sdk::VaultHandle,
    shared: Arc<Shared>,
}

#[pymethods]
impl Vault {
    /// The backend's name.
    #[getter]
    fn backend(&self) -> String {
        self.inner.backend()
    }

    /// Reads a secret; `None` when absent.
    fn get(&self, py: Python<'_>, name: &str) -> PyResult<Option<String>> {
        self.inner
            .get(name)
            .map(|s| s.map(|s| s.expose().to_string()))
            .map_err(|e| self.shared.err(py, e))
    }

    /// Writes a secret.
    fn set(&self, py: Python<'_>, name: &str, value: &str) -> PyResult<()> {
        self.inner
            .set(name, value)
            .map_err(|e| self.shared.err(py, e))
    }

    /// Removes a secret; says whether there was one.
    fn delete(&self, py: Python<'_>, name: &str) -> PyResult<bool> {
        self.inner.delete(name).map_err(|e| self.shared.err(py, e))
    }

    /// Names (never values) starting with `prefix`.
    #[pyo3(signature = (prefix=""))]
    fn list(&self, py: Python<'_>, prefix: &str) -> PyResult<Vec<String>> {
        self.inner.list(prefix).map_err(|e| self.shared.err(py, e))
    }

    /// Stores a provider's API key where Nexus looks for it.
    fn set_key(&self, py: Python<'_>, provider: &str, key: &str) -> PyResult<()> {
        self.inner
            .set_key(provider, key)
            .map_err(|e| self.shared.err(py, e))
    }

    fn __repr__(&self) -> String {
        format!("<nexus.Vault backend={:?}>", self.inner.backend())
    }
}

/// The error codes, for `nexus.errors`.
#[pyfunction]
fn error_codes() -> Vec<&'static str> {
    sdk::ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}

#[pymodule]
fn _nexus(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Client>()?;
    m.add_class::<AsyncClient>()?;
    m.add_class::<ChatStream>()?;
    m.add_class::<NativeAsyncStream>()?;
    m.add_class::<Completions>()?;
    m.add_class::<Vault>()?;
    m.add_class::<mesh::Mesh>()?;
    m.add_class::<mesh::MeshFollow>()?;
    m.add_class::<Reply>()?;
    m.add_class::<convert::ToolRun>()?;
    m.add_class::<Usage>()?;
    m.add_class::<AskReply>()?;
    m.add_class::<Attempt>()?;
    m.add_class::<Route>()?;
    m.add_class::<Preset>()?;
    m.add_class::<StreamEvent>()?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    Ok(())
}

//! asyncio without touching Python from Nexus's threads.
//!
//! An async call starts a future on the tokio runtime and returns a token.
//! When the future finishes, its result waits here as Rust data and one
//! byte goes down a pipe the event loop watches (`loop.add_reader`); the
//! loop's callback then takes the results and converts them to Python
//! objects on its own thread. No tokio thread ever takes the GIL, so an
//! interpreter shutting down can never catch one mid-call (which crashes
//! CPython: a thread that re-acquires the GIL during finalization dies).

use std::fs::File;
use std::io::Write;
use std::os::fd::FromRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

type Done = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

struct Inner {
    ready: Mutex<Vec<(u64, Done)>>,
    wake: File,
    next: AtomicU64,
}

/// Finished async calls, waiting for their event loop (one per loop).
#[pyclass(module = "nexus._nexus", frozen)]
pub(crate) struct Completions {
    inner: Arc<Inner>,
}

#[pymethods]
impl Completions {
    /// Takes ownership of `wake_fd`, the non-blocking write end of a pipe
    /// whose read end the event loop watches.
    #[new]
    fn new(wake_fd: i32) -> PyResult<Self> {
        if wake_fd < 0 {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "a file descriptor is >= 0",
            ));
        }
        // SAFETY: the caller hands over an open descriptor it no longer
        // uses (`nexus._bridge` passes the write end of a fresh pipe); the
        // `File` closes it when the last call that can wake the loop ends.
        #[allow(unsafe_code)]
        let wake = unsafe { File::from_raw_fd(wake_fd) };
        Ok(Completions {
            inner: Arc::new(Inner {
                ready: Mutex::new(Vec::new()),
                wake,
                next: AtomicU64::new(1),
            }),
        })
    }

    /// The finished calls: `(token, ok, value or exception)`.
    fn take(&self, py: Python<'_>) -> Vec<(u64, bool, Py<PyAny>)> {
        let ready =
            std::mem::take(&mut *self.inner.ready.lock().unwrap_or_else(|p| p.into_inner()));
        ready
            .into_iter()
            .map(|(token, done)| match done(py) {
                Ok(v) => (token, true, v),
                Err(e) => (token, false, e.into_value(py).into_any()),
            })
            .collect()
    }
}

impl Completions {
    /// Runs `fut` on the runtime; `convert` turns its output into Python
    /// on the event loop's thread. Returns the call's token.
    pub(crate) fn spawn<T, F, C>(&self, fut: F, convert: C) -> u64
    where
        T: Send + 'static,
        F: std::future::Future<Output = T> + Send + 'static,
        C: FnOnce(Python<'_>, T) -> PyResult<Py<PyAny>> + Send + 'static,
    {
        let token = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let inner = self.inner.clone();
        crate::rt().spawn(async move {
            let value = fut.await;
            let done: Done = Box::new(move |py| convert(py, value));
            inner
                .ready
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((token, done));
            // A full pipe already holds a wake-up; nothing is lost.
            let _ = (&inner.wake).write(&[1]);
        });
        token
    }
}

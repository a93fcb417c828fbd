//! A JSON-RPC 2.0 peer over newline-delimited JSON, in both directions.
//!
//! Why our own and not jsonrpsee: jsonrpsee has no stdio transport, and its
//! client treats a request *from the other side* (one with an id) as a
//! notification and drops the id, so an extension could not call the host
//! and get an answer on the same pipe. What is needed is small: a capped
//! line reader, serde_json, and a map of pending ids, symmetric in both
//! directions. (Not tokio-util's `LinesCodec`: after its "line too long"
//! error a `FramedRead` ends the stream, so one long line would cut the
//! extension off; here it is skipped and counted.)
//!
//! Hostile input: a line is at most [`MAX_LINE`] bytes (longer ones are
//! skipped whole and counted); a line that is not JSON-RPC is counted and
//! logged, never fatal; an answer to an id nobody waits for is dropped; at
//! most [`MAX_INFLIGHT`] requests from the peer run at once (more are
//! answered with "server busy").

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{oneshot, Semaphore};

/// The longest line either side may send.
pub const MAX_LINE: usize = 1 << 20;

/// Requests from the peer handled at once; beyond that they are refused.
pub const MAX_INFLIGHT: usize = 64;

/// JSON-RPC error codes used here.
pub mod code {
    /// The message is not valid JSON-RPC.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// The parameters are wrong.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The handler failed.
    pub const INTERNAL: i64 = -32603;
    /// Too many requests at once.
    pub const BUSY: i64 = -32000;
    /// The permission is not granted (declared, approved).
    pub const PERMISSION_DENIED: i64 = -32001;
    /// The store's quota would be exceeded.
    pub const QUOTA_EXCEEDED: i64 = -32002;
}

/// An error answer, or why a call could not complete.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (JSON-RPC error {code})")]
pub struct RpcError {
    /// The JSON-RPC error code.
    pub code: i64,
    /// What went wrong.
    pub message: String,
    /// Extra data, if any.
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The peer went away before answering.
    pub fn closed() -> Self {
        RpcError::new(code::INTERNAL, "the extension's pipe closed")
    }
}

/// What answers the peer's requests and takes its notifications.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// A request: its result, or an error answer.
    async fn request(&self, method: &str, params: Value) -> Result<Value, RpcError>;
    /// A notification (no answer).
    async fn notify(&self, method: &str, params: Value) {
        let _ = (method, params);
    }
}

/// Counters of what came in.
#[derive(Debug, Default)]
pub struct Stats {
    /// Lines that were not JSON-RPC.
    pub garbage: AtomicU64,
    /// Lines over [`MAX_LINE`], skipped.
    pub oversize: AtomicU64,
    /// Requests refused because too many were in flight.
    pub refused: AtomicU64,
    /// Messages taken in.
    pub received: AtomicU64,
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Value, RpcError>>>>>;

/// One side of a JSON-RPC connection. Clone it to call from several tasks.
#[derive(Clone)]
pub struct Peer {
    /// The output; `None` once closed. Callers write their own lines (no
    /// hop through a writer task: a round trip is two wake-ups, not four).
    out: Arc<tokio::sync::Mutex<Option<Box<dyn AsyncWrite + Unpin + Send>>>>,
    pending: Pending,
    next: Arc<AtomicU64>,
    stats: Arc<Stats>,
    closed: Arc<tokio::sync::Notify>,
    is_closed: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peer").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Peer {
    /// Starts a peer reading `input` and writing `output`; `handler`
    /// answers the other side's calls; `label` names it in logs.
    pub fn start<R, W>(input: R, output: W, handler: Arc<dyn Handler>, label: String) -> Peer
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let pending: Pending = Arc::default();
        let stats = Arc::new(Stats::default());
        let closed = Arc::new(tokio::sync::Notify::new());
        let is_closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let peer = Peer {
            out: Arc::new(tokio::sync::Mutex::new(Some(Box::new(output)))),
            pending: pending.clone(),
            next: Arc::new(AtomicU64::new(1)),
            stats: stats.clone(),
            closed: closed.clone(),
            is_closed: is_closed.clone(),
        };
        let reader = peer.clone();
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(MAX_INFLIGHT));
            let mut input = BufReader::with_capacity(64 * 1024, input);
            let mut line: Vec<u8> = Vec::new();
            // Inside a line over MAX_LINE: skipped up to its newline.
            let mut discarding = false;
            loop {
                let buf = match input.fill_buf().await {
                    Ok([]) | Err(_) => break,
                    Ok(b) => b,
                };
                let (chunk, end) = match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => (&buf[..i], Some(i + 1)),
                    None => (buf, None),
                };
                if !discarding {
                    line.extend_from_slice(chunk);
                    if line.len() > MAX_LINE {
                        stats.oversize.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(extension = %label, "skipped a line over {MAX_LINE} bytes");
                        line = Vec::new();
                        discarding = true;
                    }
                }
                let used = end.unwrap_or(buf.len());
                input.consume(used);
                if end.is_some() {
                    if !discarding && !line.iter().all(u8::is_ascii_whitespace) {
                        stats.received.fetch_add(1, Ordering::Relaxed);
                        let text = String::from_utf8_lossy(&line);
                        reader.take(&text, &handler, &slots, &label);
                    }
                    line.clear();
                    discarding = false;
                }
            }
            // Whoever still waits learns the pipe closed.
            is_closed.store(true, Ordering::SeqCst);
            for (_, tx) in lock(&pending).drain() {
                let _ = tx.send(Err(RpcError::closed()));
            }
            closed.notify_waiters();
        });
        peer
    }

    /// What came in so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Whether the other side's output has ended.
    pub fn is_closed(&self) -> bool {
        self.is_closed.load(Ordering::SeqCst)
    }

    /// Waits until the other side's output ends.
    pub async fn closed(&self) {
        let wait = self.closed.notified();
        if self.is_closed() {
            return;
        }
        wait.await;
    }

    fn take(&self, line: &str, handler: &Arc<dyn Handler>, slots: &Arc<Semaphore>, label: &str) {
        let msg: Value = match serde_json::from_str(line) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                self.stats.garbage.fetch_add(1, Ordering::Relaxed);
                let shown: String = line.chars().take(120).collect();
                tracing::warn!(extension = %label, line = %shown, "not JSON-RPC on stdout; ignored");
                return;
            }
        };
        let method = msg.get("method").and_then(Value::as_str);
        let id = msg.get("id").cloned().filter(|i| !i.is_null());
        match (method, id) {
            // A request from the other side.
            (Some(method), Some(id)) => {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    self.stats.refused.fetch_add(1, Ordering::Relaxed);
                    let me = self.clone();
                    tokio::spawn(async move {
                        me.answer(
                            id,
                            Err(RpcError::new(
                                code::BUSY,
                                "too many requests at once; retry",
                            )),
                        )
                        .await;
                    });
                    return;
                };
                let handler = handler.clone();
                let me = self.clone();
                let method = method.to_string();
                let params = msg.get("params").cloned().unwrap_or(Value::Null);
                tokio::spawn(async move {
                    let r = handler.request(&method, params).await;
                    me.answer(id, r).await;
                    drop(permit);
                });
            }
            // A notification.
            (Some(method), None) => {
                let handler = handler.clone();
                let method = method.to_string();
                let params = msg.get("params").cloned().unwrap_or(Value::Null);
                tokio::spawn(async move { handler.notify(&method, params).await });
            }
            // An answer to one of ours.
            (None, Some(id)) => {
                let Some(n) = id.as_u64() else { return };
                let Some(tx) = lock(&self.pending).remove(&n) else {
                    return;
                };
                let result = match (msg.get("result"), msg.get("error")) {
                    (_, Some(e)) => Err(RpcError {
                        code: e
                            .get("code")
                            .and_then(Value::as_i64)
                            .unwrap_or(code::INTERNAL),
                        message: e
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("error")
                            .chars()
                            .take(4096)
                            .collect(),
                        data: e.get("data").cloned(),
                    }),
                    (Some(r), None) => Ok(r.clone()),
                    (None, None) => Err(RpcError::new(
                        code::INVALID_REQUEST,
                        "an answer with neither result nor error",
                    )),
                };
                let _ = tx.send(result);
            }
            (None, None) => {
                self.stats.garbage.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Writes one line; false when the output is closed or broken.
    async fn write_line(&self, mut line: String) -> bool {
        line.push('\n');
        let mut out = self.out.lock().await;
        let Some(w) = out.as_mut() else { return false };
        if w.write_all(line.as_bytes()).await.is_ok() && w.flush().await.is_ok() {
            return true;
        }
        *out = None;
        false
    }

    async fn answer(&self, id: Value, r: Result<Value, RpcError>) {
        let msg = match r {
            Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
            Err(e) => {
                let mut err = json!({"code": e.code, "message": e.message});
                if let Some(d) = e.data {
                    err["data"] = d;
                }
                json!({"jsonrpc": "2.0", "id": id, "error": err})
            }
        };
        let _ = self.write_line(msg.to_string()).await;
    }

    /// Calls `method` on the other side and waits for its answer.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        if self.is_closed() {
            return Err(RpcError::closed());
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let line =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        if line.len() > MAX_LINE {
            lock(&self.pending).remove(&id);
            return Err(RpcError::new(
                code::INVALID_PARAMS,
                format!("the request is over {MAX_LINE} bytes"),
            ));
        }
        if !self.write_line(line).await {
            lock(&self.pending).remove(&id);
            return Err(RpcError::closed());
        }
        rx.await.unwrap_or_else(|_| Err(RpcError::closed()))
    }

    /// Sends a notification.
    pub async fn notify(&self, method: &str, params: Value) -> Result<(), RpcError> {
        let line = json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string();
        if self.write_line(line).await {
            Ok(())
        } else {
            Err(RpcError::closed())
        }
    }

    /// Closes the output (the other side reads end of input); calls still
    /// waiting get their answers if the other side sends them.
    pub async fn close(&self) {
        if let Some(mut w) = self.out.lock().await.take() {
            let _ = w.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;

    #[async_trait::async_trait]
    impl Handler for Echo {
        async fn request(&self, method: &str, params: Value) -> Result<Value, RpcError> {
            match method {
                "echo" => Ok(params),
                _ => Err(RpcError::new(
                    code::METHOD_NOT_FOUND,
                    format!("no method {method}"),
                )),
            }
        }
    }

    #[tokio::test]
    async fn both_sides_call_each_other_on_one_pipe() {
        let (a_io, b_io) = tokio::io::duplex(1 << 16);
        let (ar, aw) = tokio::io::split(a_io);
        let (br, bw) = tokio::io::split(b_io);
        let a = Peer::start(ar, aw, Arc::new(Echo), "a".into());
        let b = Peer::start(br, bw, Arc::new(Echo), "b".into());
        assert_eq!(
            a.call("echo", json!({"x": 1})).await.unwrap(),
            json!({"x": 1})
        );
        assert_eq!(b.call("echo", json!([2])).await.unwrap(), json!([2]));
        let e = a.call("nope", json!(null)).await.unwrap_err();
        assert_eq!(e.code, code::METHOD_NOT_FOUND);
        // Many at once, answered by id.
        let calls: Vec<_> = (0..50).map(|i| a.call("echo", json!(i))).collect();
        let out = futures_util::future::join_all(calls).await;
        for (i, r) in out.into_iter().enumerate() {
            assert_eq!(r.unwrap(), json!(i));
        }
    }

    #[tokio::test]
    async fn garbage_and_oversize_lines_are_counted_not_fatal() {
        use tokio::io::AsyncWriteExt;
        let (host_io, mut ext) = tokio::io::duplex(4 << 20);
        let (hr, hw) = tokio::io::split(host_io);
        let host = Peer::start(hr, hw, Arc::new(Echo), "ext".into());
        ext.write_all(b"hello, I am not JSON\n[1,2]\n")
            .await
            .unwrap();
        ext.write_all(&vec![b'x'; MAX_LINE + 10]).await.unwrap();
        ext.write_all(
            b"\n{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"echo\",\"params\":\"still here\"}\n",
        )
        .await
        .unwrap();
        let mut buf = vec![0u8; 256];
        let n = tokio::io::AsyncReadExt::read(&mut ext, &mut buf)
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!(answer["id"], 7);
        assert_eq!(answer["result"], "still here");
        assert_eq!(host.stats().garbage.load(Ordering::Relaxed), 2);
        assert_eq!(host.stats().oversize.load(Ordering::Relaxed), 1);
        drop(ext);
        host.closed().await;
        assert_eq!(
            host.call("echo", json!(1)).await.unwrap_err(),
            RpcError::closed()
        );
    }
}

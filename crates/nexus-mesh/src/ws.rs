//! The WebSocket transport both ends share: a writer that batches, and
//! the reader's unpacking of batches.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{Sink, SinkExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::frame::{encode_batch, is_batch, split_batch};
use crate::MeshError;

/// What a connection's writer is asked to do.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Send an encoded frame.
    Frame(Bytes),
    /// Send what is queued before this, then close.
    Close,
}

/// Frames taken off the queue per wake-up.
const TAKE: usize = 512;

/// A batch stops growing at this many bytes.
const BATCH_BYTES: usize = 16 * 1024;

/// The WebSocket settings both ends use: a message (a frame or a batch)
/// is at most [`crate::frame::MAX_BATCH`] bytes; a frame over the broker's
/// limit but under that arrives, to be refused with an error frame, and a
/// larger message breaks the connection.
pub(crate) fn config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(crate::frame::MAX_BATCH))
        .max_frame_size(Some(crate::frame::MAX_BATCH))
}

/// Writes what arrives on `rx` to `sink`. Frames that queued up while the
/// writer was busy go out as batches (one WebSocket message each, see
/// [`crate::frame::BATCH`]) and all of them in one flush: under load, one
/// syscall and one message header carry many frames; alone, a frame goes
/// out at once, unbatched. Ends after a `Close` or a write error.
///
/// `queued`, when given, counts the bytes handed to this writer and not
/// yet written: the writer takes off each frame's bytes once the socket has
/// it (the server disconnects a reader whose count grows too large).
pub(crate) async fn pump<S>(
    mut sink: S,
    mut rx: mpsc::UnboundedReceiver<Outbound>,
    queued: Option<Arc<AtomicUsize>>,
) where
    S: Sink<Message> + Unpin,
{
    let counter = queued.as_deref();
    let mut queued: Vec<Outbound> = Vec::with_capacity(TAKE);
    let mut frames: Vec<Bytes> = Vec::new();
    while rx.recv_many(&mut queued, TAKE).await > 0 {
        let mut close = false;
        let mut size = 0;
        for o in queued.drain(..) {
            match o {
                Outbound::Frame(f) => {
                    // A batch already (a caller sent one raw) goes alone:
                    // batches do not nest.
                    let alone = is_batch(&f);
                    if alone && feed(&mut sink, &mut frames, counter).await.is_err() {
                        return;
                    }
                    size += f.len();
                    frames.push(f);
                    if (alone || size >= BATCH_BYTES)
                        && feed(&mut sink, &mut frames, counter).await.is_err()
                    {
                        return;
                    }
                    if alone || size >= BATCH_BYTES {
                        size = 0;
                    }
                }
                Outbound::Close => {
                    close = true;
                    break;
                }
            }
        }
        if feed(&mut sink, &mut frames, counter).await.is_err() {
            return;
        }
        if close {
            let _ = sink.send(Message::Close(None)).await;
            return;
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
    // Every sender is gone (the connection was dropped): close politely,
    // so the other side lets go of the socket at once.
    let _ = sink.send(Message::Close(None)).await;
}

/// Feeds `frames` to the sink as one message (a batch if several) and
/// empties it.
async fn feed<S>(
    sink: &mut S,
    frames: &mut Vec<Bytes>,
    queued: Option<&AtomicUsize>,
) -> Result<(), ()>
where
    S: Sink<Message> + Unpin,
{
    let bytes: usize = frames.iter().map(Bytes::len).sum();
    let m = match frames.len() {
        0 => return Ok(()),
        1 => frames.pop().unwrap_or_default(),
        _ => {
            let b = Bytes::from(encode_batch(frames));
            frames.clear();
            b
        }
    };
    let fed = sink.feed(Message::Binary(m)).await.map_err(|_| ());
    if let Some(q) = queued {
        q.fetch_sub(bytes, Ordering::Relaxed);
    }
    fed
}

/// The frames one WebSocket message carries: itself, or a batch's frames.
pub(crate) fn frames_of(message: Bytes) -> Result<Vec<Bytes>, MeshError> {
    if is_batch(&message) {
        split_batch(&message)
    } else {
        Ok(vec![message])
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::frame::Frame;
    use std::sync::{Arc, Mutex};

    #[tokio::test]
    async fn queued_frames_go_out_batched_in_order_and_batches_never_nest() {
        let sent: Arc<Mutex<Vec<Message>>> = Arc::default();
        let sink = futures_util::sink::unfold(sent.clone(), |s, m: Message| async move {
            s.lock().unwrap().push(m);
            Ok::<_, ()>(s)
        });
        let f = |id: &str| Bytes::from(Frame::Ack { id: id.into() }.encode());
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(Outbound::Frame(f("a"))).unwrap();
        tx.send(Outbound::Frame(f("b"))).unwrap();
        let raw = Bytes::from(encode_batch(&[f("c"), f("d")]));
        tx.send(Outbound::Frame(raw.clone())).unwrap();
        tx.send(Outbound::Frame(f("e"))).unwrap();
        tx.send(Outbound::Close).unwrap();
        pump(Box::pin(sink), rx, None).await;
        let sent = sent.lock().unwrap();
        let ids = |m: &Message| -> Vec<String> {
            let Message::Binary(b) = m else {
                return vec!["close".into()];
            };
            frames_of(b.clone())
                .unwrap()
                .iter()
                .map(|p| match Frame::decode(p).unwrap() {
                    Frame::Ack { id } => id,
                    other => format!("{other:?}"),
                })
                .collect()
        };
        let got: Vec<Vec<String>> = sent.iter().map(ids).collect();
        assert_eq!(
            got,
            [vec!["a", "b"], vec!["c", "d"], vec!["e"], vec!["close"]]
        );
        assert_eq!(
            sent[1],
            Message::Binary(raw),
            "the caller's batch went as it was"
        );
    }
}

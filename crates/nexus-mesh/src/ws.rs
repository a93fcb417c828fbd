//! The WebSocket transport both ends share: a writer that batches, and
//! the reader's unpacking of batches.

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

/// The WebSocket settings both ends use. Frames over the broker's limit
/// still arrive (to be refused with an error frame); only absurd ones
/// break the connection.
pub(crate) fn config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
}

/// Writes what arrives on `rx` to `sink`. Frames that queued up while the
/// writer was busy go out as batches (one WebSocket message each, see
/// [`crate::frame::BATCH`]) and all of them in one flush: under load, one
/// syscall and one message header carry many frames; alone, a frame goes
/// out at once, unbatched. Ends after a `Close` or a write error.
pub(crate) async fn pump<S>(mut sink: S, mut rx: mpsc::UnboundedReceiver<Outbound>)
where
    S: Sink<Message> + Unpin,
{
    let mut queued: Vec<Outbound> = Vec::with_capacity(TAKE);
    let mut frames: Vec<Bytes> = Vec::new();
    while rx.recv_many(&mut queued, TAKE).await > 0 {
        let mut close = false;
        let mut size = 0;
        for o in queued.drain(..) {
            match o {
                Outbound::Frame(f) => {
                    size += f.len();
                    frames.push(f);
                    if size >= BATCH_BYTES && feed(&mut sink, &mut frames).await.is_err() {
                        return;
                    }
                    if size >= BATCH_BYTES {
                        size = 0;
                    }
                }
                Outbound::Close => {
                    close = true;
                    break;
                }
            }
        }
        if feed(&mut sink, &mut frames).await.is_err() {
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
}

/// Feeds `frames` to the sink as one message (a batch if several) and
/// empties it.
async fn feed<S>(sink: &mut S, frames: &mut Vec<Bytes>) -> Result<(), ()>
where
    S: Sink<Message> + Unpin,
{
    let m = match frames.len() {
        0 => return Ok(()),
        1 => frames.pop().unwrap_or_default(),
        _ => {
            let b = Bytes::from(encode_batch(frames));
            frames.clear();
            b
        }
    };
    sink.feed(Message::Binary(m)).await.map_err(|_| ())
}

/// The frames one WebSocket message carries: itself, or a batch's frames.
pub(crate) fn frames_of(message: Bytes) -> Result<Vec<Bytes>, MeshError> {
    if is_batch(&message) {
        split_batch(&message)
    } else {
        Ok(vec![message])
    }
}

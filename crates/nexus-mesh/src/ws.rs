//! The WebSocket write side both ends share.

use futures_util::{Sink, SinkExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// Writes what arrives on `rx` to `sink`, feeding every message already
/// queued before one flush: under load, many frames go out in one write
/// instead of a syscall each. Ends after a `Close` or a write error.
pub(crate) async fn pump<S>(mut sink: S, mut rx: mpsc::UnboundedReceiver<Message>)
where
    S: Sink<Message> + Unpin,
{
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut close = false;
        while let Some(m) = next.take() {
            close |= matches!(m, Message::Close(_));
            if sink.feed(m).await.is_err() {
                return;
            }
            if !close {
                next = rx.try_recv().ok();
            }
        }
        if sink.flush().await.is_err() || close {
            return;
        }
    }
}

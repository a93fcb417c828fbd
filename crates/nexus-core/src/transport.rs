//! The `Transport` trait: an ordered, reliable, message-framed duplex link
//! (a WebSocket in production), and its in-memory implementation.

use async_trait::async_trait;
use futures_channel::mpsc;
use futures_util::lock::Mutex;
use futures_util::StreamExt;

/// A transport failure.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The other side is gone.
    #[error("the connection is closed")]
    Closed,
    /// The link failed.
    #[error("transport failed: {0}")]
    Io(String),
}

/// An ordered, reliable link carrying whole frames.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Sends one frame.
    async fn send(&self, frame: Vec<u8>) -> Result<(), TransportError>;
    /// The next frame, or `None` once the other side has closed.
    async fn recv(&self) -> Result<Option<Vec<u8>>, TransportError>;
    /// Closes the sending side.
    async fn close(&self);
}

/// One end of an in-memory link.
#[derive(Debug)]
pub struct MemoryTransport {
    tx: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    rx: Mutex<mpsc::UnboundedReceiver<Vec<u8>>>,
}

impl MemoryTransport {
    /// Two connected ends.
    pub fn pair() -> (MemoryTransport, MemoryTransport) {
        let (atx, brx) = mpsc::unbounded();
        let (btx, arx) = mpsc::unbounded();
        (
            MemoryTransport {
                tx: Mutex::new(Some(atx)),
                rx: Mutex::new(arx),
            },
            MemoryTransport {
                tx: Mutex::new(Some(btx)),
                rx: Mutex::new(brx),
            },
        )
    }
}

#[async_trait]
impl Transport for MemoryTransport {
    async fn send(&self, frame: Vec<u8>) -> Result<(), TransportError> {
        let guard = self.tx.lock().await;
        let tx = guard.as_ref().ok_or(TransportError::Closed)?;
        tx.unbounded_send(frame).map_err(|_| TransportError::Closed)
    }

    async fn recv(&self) -> Result<Option<Vec<u8>>, TransportError> {
        Ok(self.rx.lock().await.next().await)
    }

    async fn close(&self) {
        self.tx.lock().await.take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_transport_conformance() {
        let (a, b) = MemoryTransport::pair();
        crate::conformance::transport::ordered_duplex(&a, &b)
            .await
            .unwrap();
    }
}

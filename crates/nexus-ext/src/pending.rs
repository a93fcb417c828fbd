//! Approvals the daemon waits on: each question an extension raises is
//! listed (`nexus ext approvals`, later the desktop) with its deadline until
//! someone answers it (`nexus ext approve|deny N`), the desktop
//! notification is answered, or the time runs out (a deny).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_core::{Clock, SystemClock};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::approve::Notifications;
use crate::host::Approver;
use crate::permissions::Answer;

/// One open question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    /// Its number, for answering.
    pub n: u64,
    /// The extension that asks.
    pub extension: String,
    /// What for (`clipboard:read`, `net:example.com`).
    pub capability: String,
    /// What the extension said it needs it for.
    pub detail: String,
    /// When it was asked, ms since the epoch.
    pub asked_ms: u64,
    /// When no answer becomes a deny, ms since the epoch.
    pub expires_ms: u64,
}

struct Waiting {
    question: Question,
    reply: oneshot::Sender<Answer>,
}

/// The open questions, answered from anywhere; optionally also shown as a
/// desktop notification, whichever is answered first wins.
#[derive(Default)]
pub struct Pending {
    next: AtomicU64,
    waiting: Mutex<BTreeMap<u64, Waiting>>,
    desktop: Option<Notifications>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("open", &self.list().len())
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// Questions wait to be answered through [`Pending::answer`] only.
    pub fn new() -> Arc<Pending> {
        Arc::new(Pending::default())
    }

    /// Questions also go to the desktop's notifications.
    pub fn with_desktop(desktop: Notifications) -> Arc<Pending> {
        Arc::new(Pending {
            desktop: Some(desktop),
            ..Pending::default()
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Waiting>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The open questions, oldest first.
    pub fn list(&self) -> Vec<Question> {
        self.lock().values().map(|w| w.question.clone()).collect()
    }

    /// Answers question `n`; false when it is not open (answered, or its
    /// time ran out).
    pub fn answer(&self, n: u64, answer: Answer) -> bool {
        match self.lock().remove(&n) {
            Some(w) => w.reply.send(answer).is_ok(),
            None => false,
        }
    }
}

/// Removes a question when its asker stops waiting, however it ends.
struct Forget<'a>(&'a Pending, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.lock().remove(&self.1);
    }
}

#[async_trait::async_trait]
impl Approver for Pending {
    async fn ask(&self, id: &str, capability: &str, detail: &str, timeout: Duration) -> Answer {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let now = SystemClock.now_millis();
        let (reply, answered) = oneshot::channel();
        self.lock().insert(
            n,
            Waiting {
                question: Question {
                    n,
                    extension: id.to_string(),
                    capability: capability.to_string(),
                    detail: detail.to_string(),
                    asked_ms: now,
                    expires_ms: now + timeout.as_millis() as u64,
                },
                reply,
            },
        );
        let _forget = Forget(self, n);
        let here = async {
            match tokio::time::timeout(timeout, answered).await {
                Ok(Ok(a)) => a,
                _ => Answer::TimedOut,
            }
        };
        let Some(desktop) = &self.desktop else {
            return here.await;
        };
        let there = async {
            match desktop.try_ask(id, capability, detail, timeout).await {
                Some(a) => a,
                // No desktop to ask: wait for the other way.
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            a = here => a,
            a = there => a,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answered_listed_and_timed_out() {
        let p = Pending::new();
        let asker = {
            let p = p.clone();
            tokio::spawn(async move {
                p.ask(
                    "notes",
                    "clipboard:read",
                    "to paste",
                    Duration::from_secs(30),
                )
                .await
            })
        };
        let q = loop {
            if let Some(q) = p.list().pop() {
                break q;
            }
            tokio::task::yield_now().await;
        };
        assert_eq!(
            (
                q.extension.as_str(),
                q.capability.as_str(),
                q.detail.as_str()
            ),
            ("notes", "clipboard:read", "to paste")
        );
        assert_eq!(q.expires_ms - q.asked_ms, 30_000);
        assert!(!p.answer(q.n + 100, Answer::Allow));
        assert!(p.answer(q.n, Answer::AllowAlways));
        assert_eq!(asker.await.unwrap(), Answer::AllowAlways);
        assert!(p.list().is_empty());
        assert!(!p.answer(q.n, Answer::Deny), "answered once");

        let a = p.ask("notes", "exec", "", Duration::from_millis(30)).await;
        assert_eq!(a, Answer::TimedOut);
        assert!(p.list().is_empty(), "a timed-out question is gone");
    }

    #[tokio::test]
    async fn an_unreachable_desktop_leaves_the_question_open() {
        let p = Pending::with_desktop(Notifications {
            bus: Some("unix:path=/nonexistent/bus".into()),
        });
        let a = p.ask("notes", "exec", "", Duration::from_millis(300)).await;
        assert_eq!(a, Answer::TimedOut);
    }
}

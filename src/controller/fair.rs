//! Fair turns between namespaces: the reconciles of every kind share a fixed number of turns,
//! handed out round-robin over the namespaces that wait for one, so one namespace's thousands of
//! resources (or a resync of all of them) never hold back another namespace's first reconcile for
//! longer than the reconciles already running. kube-runtime's controllers start every due
//! reconcile at once; each then waits here for its turn, small (the reconcile itself is boxed
//! only once it runs). No I/O.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// The shared turns.
pub struct Turns {
    state: Mutex<State>,
}

struct State {
    free: usize,
    /// Per namespace, the reconciles waiting, oldest first.
    waiting: HashMap<String, VecDeque<oneshot::Sender<()>>>,
    /// The namespaces with someone waiting, in the order they get the next turn.
    order: VecDeque<String>,
}

/// A turn: the holder may reconcile until it drops this.
pub struct Turn {
    turns: Arc<Turns>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.turns.release();
    }
}

impl Turns {
    pub fn new(turns: usize) -> Arc<Turns> {
        Arc::new(Turns {
            state: Mutex::new(State { free: turns.max(1), waiting: HashMap::new(), order: VecDeque::new() }),
        })
    }

    /// Wait for a turn for a reconcile in `namespace`.
    pub async fn take(self: &Arc<Self>, namespace: &str) -> Turn {
        let rx = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.free > 0 && st.order.is_empty() {
                st.free -= 1;
                return Turn { turns: self.clone() };
            }
            let (tx, rx) = oneshot::channel();
            let queue = st.waiting.entry(namespace.to_string()).or_default();
            queue.push_back(tx);
            if queue.len() == 1 {
                st.order.push_back(namespace.to_string());
            }
            rx
        };
        // Handed over by `release` (the sender is only dropped with the whole pool).
        let _ = rx.await;
        Turn { turns: self.clone() }
    }

    /// A turn ends: give it to the next namespace in line (skipping waiters that gave up).
    fn release(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(ns) = st.order.pop_front() {
            let Some(queue) = st.waiting.get_mut(&ns) else { continue };
            let next = queue.pop_front();
            let more = !queue.is_empty();
            if more {
                st.order.push_back(ns.clone());
            } else {
                st.waiting.remove(&ns);
            }
            if let Some(tx) = next
                && tx.send(()).is_ok()
            {
                return;
            }
        }
        st.free += 1;
    }

    /// Reconciles waiting for a turn (for metrics and tests).
    pub fn waiting(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).waiting.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_flooding_namespace_waits_its_turn_behind_a_newcomer() {
        let turns = Turns::new(1);
        let first = turns.take("flood").await;
        let mut queued = Vec::new();
        let served = Arc::new(Mutex::new(Vec::new()));
        for i in 0..100 {
            let (t, s) = (turns.clone(), served.clone());
            queued.push(tokio::spawn(async move {
                let _turn = t.take("flood").await;
                s.lock().unwrap().push(format!("flood-{i}"));
                tokio::task::yield_now().await;
            }));
        }
        while turns.waiting() < 100 {
            tokio::task::yield_now().await;
        }
        let (t, s) = (turns.clone(), served.clone());
        let newcomer = tokio::spawn(async move {
            let _turn = t.take("team-b").await;
            s.lock().unwrap().push("team-b".to_string());
        });
        while turns.waiting() < 101 {
            tokio::task::yield_now().await;
        }
        drop(first);
        newcomer.await.unwrap();
        for q in queued {
            q.await.unwrap();
        }
        let served = served.lock().unwrap();
        let at = served.iter().position(|s| s == "team-b").unwrap();
        assert!(at <= 1, "the newcomer got the second turn at the latest, not the 101st: {at}");
        assert_eq!(served.len(), 101);
    }

    #[tokio::test]
    async fn a_waiter_that_gave_up_does_not_swallow_a_turn() {
        let turns = Turns::new(1);
        let first = turns.take("a").await;
        let t = turns.clone();
        let gave_up = tokio::spawn(async move {
            let _ = t.take("b").await;
        });
        while turns.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        gave_up.abort();
        let _ = gave_up.await;
        drop(first);
        let _again =
            tokio::time::timeout(std::time::Duration::from_secs(5), turns.take("c")).await.expect("a turn is free");
    }
}

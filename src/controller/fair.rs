//! Fair turns between namespaces: the reconciles of every kind share a fixed number of turns,
//! handed out round-robin over the namespaces that wait for one, so one namespace's thousands of
//! resources (or a resync of all of them) never hold back another namespace's first reconcile for
//! longer than the reconciles already running. kube-runtime's controllers start every due
//! reconcile at once; each then waits here for its turn, small (the reconcile itself is boxed
//! only once it runs). No I/O.
//!
//! One turn is kept in reserve for namespaces that hold none: a namespace that already holds a
//! turn takes a free one only while more than one is free, so a burst from one namespace that
//! arrives first never holds every turn, and a newcomer starts at once instead of waiting for the
//! first release (which can take as long as a slow Azure long-running operation). With a single
//! turn, the namespace holding none takes it and nobody holds two.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// The shared turns.
pub struct Turns {
    state: Mutex<State>,
}

struct State {
    free: usize,
    /// Per namespace, the turns it holds (only namespaces holding at least one).
    held: HashMap<String, usize>,
    /// Per namespace, the reconciles waiting, oldest first; each is sent its turn.
    waiting: HashMap<String, VecDeque<oneshot::Sender<Turn>>>,
    /// The namespaces with someone waiting, in the order they get the next turn they may take.
    order: VecDeque<String>,
}

impl State {
    /// The reserve rule: the last free turn only goes to a namespace holding none.
    fn may_take(&self, namespace: &str) -> bool {
        match self.held.get(namespace) {
            None => self.free > 0,
            Some(_) => self.free > 1,
        }
    }

    fn hand_out(&mut self, turns: &Arc<Turns>, namespace: &str) -> Turn {
        self.free -= 1;
        *self.held.entry(namespace.to_string()).or_default() += 1;
        Turn { turns: turns.clone(), namespace: namespace.to_string() }
    }

    /// Hands free turns to waiters, round-robin over the namespaces that may take one (skipping
    /// waiters that gave up), until none may. A skipped namespace keeps its place in line. The
    /// turns are returned to be sent once the lock is let go: a turn dropped under the lock
    /// (its waiter gave up meanwhile) would release into the lock.
    fn dispatch(&mut self, turns: &Arc<Turns>) -> Vec<(oneshot::Sender<Turn>, Turn)> {
        let mut handed = Vec::new();
        while let Some(at) = self.order.iter().position(|ns| self.may_take(ns)) {
            let Some(ns) = self.order.remove(at) else { break };
            let Some(queue) = self.waiting.get_mut(&ns) else { continue };
            let mut next = None;
            while let Some(tx) = queue.pop_front() {
                if !tx.is_closed() {
                    next = Some(tx);
                    break;
                }
            }
            if queue.is_empty() {
                self.waiting.remove(&ns);
            } else {
                self.order.push_back(ns.clone());
            }
            if let Some(tx) = next {
                let turn = self.hand_out(turns, &ns);
                handed.push((tx, turn));
            }
        }
        handed
    }
}

/// A turn: the holder may reconcile until it drops this.
pub struct Turn {
    turns: Arc<Turns>,
    namespace: String,
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.turns.release(&self.namespace);
    }
}

impl Turns {
    pub fn new(turns: usize) -> Arc<Turns> {
        Arc::new(Turns {
            state: Mutex::new(State {
                free: turns.max(1),
                held: HashMap::new(),
                waiting: HashMap::new(),
                order: VecDeque::new(),
            }),
        })
    }

    /// Wait for a turn for a reconcile in `namespace`.
    pub async fn take(self: &Arc<Self>, namespace: &str) -> Turn {
        loop {
            let rx = {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                // Nobody waiting may take a free turn (every change that could let them runs
                // `dispatch`), so one this namespace may take is not anyone else's.
                if st.may_take(namespace) {
                    return st.hand_out(self, namespace);
                }
                let (tx, rx) = oneshot::channel();
                let queue = st.waiting.entry(namespace.to_string()).or_default();
                queue.push_back(tx);
                if queue.len() == 1 {
                    st.order.push_back(namespace.to_string());
                }
                rx
            };
            // Handed over by `release`; a turn sent after this future is dropped is dropped with
            // the receiver and so released again. A sender is dropped unsent only once closed.
            if let Ok(turn) = rx.await {
                return turn;
            }
        }
    }

    /// A turn of `namespace` ends: give it to the next namespace in line that may take it.
    fn release(self: &Arc<Self>, namespace: &str) {
        let handed = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = st.held.get_mut(namespace) {
                *n -= 1;
                if *n == 0 {
                    st.held.remove(namespace);
                }
            }
            st.free += 1;
            st.dispatch(self)
        };
        for (tx, turn) in handed {
            // A waiter that gave up since: its turn drops here, outside the lock, and is released.
            let _ = tx.send(turn);
        }
    }

    /// Reconciles waiting for a turn (what the tests wait on).
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

    use futures::FutureExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn held(turns: &Turns, namespace: &str) -> usize {
        turns.state.lock().unwrap().held.get(namespace).copied().unwrap_or(0)
    }

    fn free(turns: &Turns) -> usize {
        turns.state.lock().unwrap().free
    }

    async fn waiting_reaches(turns: &Turns, n: usize) {
        let reached = async {
            while turns.waiting() < n {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), reached).await.expect("the waiters queue up");
    }

    #[tokio::test]
    async fn a_namespace_holding_turns_never_takes_the_last_one() {
        let turns = Turns::new(4);
        let mut flood: Vec<Turn> =
            (0..3).map(|_| turns.take("flood").now_or_never().expect("a free turn, at once")).collect();
        let t = turns.clone();
        let fourth = tokio::spawn(async move { t.take("flood").await });
        waiting_reaches(&turns, 1).await;
        let team_b = turns.take("team-b").now_or_never().expect("the reserve, at once, without any release");
        assert_eq!((held(&turns, "flood"), held(&turns, "team-b"), free(&turns)), (3, 1, 0));
        // team-b's own second turn waits like anyone's: none is free.
        assert!(turns.take("team-b").now_or_never().is_none());
        drop(team_b);
        assert_eq!(free(&turns), 1, "the freed turn is the reserve again, not the flood's");
        assert_eq!(turns.waiting(), 1);
        assert!(!fourth.is_finished());
        drop(flood.pop());
        let fourth = tokio::time::timeout(Duration::from_secs(5), fourth).await.expect("served").unwrap();
        assert_eq!((held(&turns, "flood"), free(&turns)), (3, 1));
        drop(fourth);
    }

    #[tokio::test]
    async fn a_released_turn_goes_to_a_waiting_namespace_that_holds_none_first() {
        let turns = Turns::new(2);
        let flood = turns.take("flood").now_or_never().expect("a free turn");
        let t = turns.clone();
        let flood_waiter = tokio::spawn(async move { t.take("flood").await });
        waiting_reaches(&turns, 1).await;
        let team_b = turns.take("team-b").now_or_never().expect("the reserve");
        let t = turns.clone();
        let team_c = tokio::spawn(async move { t.take("team-c").await });
        waiting_reaches(&turns, 2).await;
        // The flood is first in line but holds a turn, and only one is free: team-c gets it.
        drop(team_b);
        let team_c = tokio::time::timeout(Duration::from_secs(5), team_c).await.expect("served").unwrap();
        assert_eq!(turns.waiting(), 1);
        assert_eq!((held(&turns, "flood"), held(&turns, "team-c")), (1, 1));
        // Nobody holding none waits: the freed turn stays in reserve.
        drop(team_c);
        assert_eq!((free(&turns), turns.waiting()), (1, 1));
        // The flood's own release lets its waiter in.
        drop(flood);
        let again = tokio::time::timeout(Duration::from_secs(5), flood_waiter).await.expect("served").unwrap();
        assert_eq!((held(&turns, "flood"), free(&turns)), (1, 1));
        drop(again);
        assert_eq!(free(&turns), 2);
    }

    #[tokio::test]
    async fn a_flooding_namespace_is_still_served_while_the_reserve_stays() {
        let turns = Turns::new(4);
        let first: Vec<Turn> = (0..3).map(|_| turns.take("flood").now_or_never().expect("a free turn")).collect();
        let most = Arc::new(AtomicUsize::new(0));
        let mut queued = Vec::new();
        for _ in 0..30 {
            let (t, most) = (turns.clone(), most.clone());
            queued.push(tokio::spawn(async move {
                let _turn = t.take("flood").await;
                most.fetch_max(held(&t, "flood"), Ordering::SeqCst);
                assert!(free(&t) >= 1, "the reserve stays free");
                tokio::task::yield_now().await;
            }));
        }
        waiting_reaches(&turns, 30).await;
        drop(first);
        for q in queued {
            tokio::time::timeout(Duration::from_secs(5), q).await.expect("every flood waiter is served").unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 3, "the flood keeps all but the reserve busy");
        assert_eq!((free(&turns), turns.waiting(), held(&turns, "flood")), (4, 0, 0));
    }

    #[tokio::test]
    async fn with_one_turn_a_namespace_holding_none_takes_it_and_nobody_holds_two() {
        let turns = Turns::new(1);
        let only = turns.take("flood").now_or_never().expect("the only turn");
        assert!(turns.take("flood").now_or_never().is_none());
        assert!(turns.take("team-b").now_or_never().is_none());
        drop(only);
        let again = turns.take("team-b").now_or_never().expect("freed, and the gave-up waiters skipped");
        assert_eq!((held(&turns, "team-b"), free(&turns), turns.waiting()), (1, 0, 0));
        drop(again);
    }
}

//! A single-flight memo of Azure reads: each key is read at most once while its entry lives,
//! concurrent askers wait for the one read in flight, a failed read is not kept (the next ask
//! reads again), and entries can be given a maximum age. Used by the observer (one pass's reads,
//! the dependents search) and by the Azure client (provider registrations).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::azure::AzureError;

type Shared<T> = Arc<OnceCell<Result<T, AzureError>>>;

pub(crate) struct Memo<K, T> {
    cells: Mutex<HashMap<K, (Instant, Shared<T>)>>,
    /// Entries older than this are read again; `None`: kept until forgotten.
    max_age: Option<Duration>,
}

impl<K: Eq + Hash + Clone, T: Clone> Memo<K, T> {
    pub(crate) fn new() -> Self {
        Memo { cells: Mutex::new(HashMap::new()), max_age: None }
    }

    pub(crate) fn with_max_age(max_age: Duration) -> Self {
        Memo { cells: Mutex::new(HashMap::new()), max_age: Some(max_age) }
    }

    pub(crate) async fn get<F, Fut>(&self, key: K, fetch: F) -> Result<T, AzureError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AzureError>>,
    {
        self.get_within(key, self.max_age, fetch).await
    }

    /// [`get`](Memo::get), reusing an answer only when it is younger than `max_age` (`None`:
    /// however old); an older one is read again and replaces it for every asker.
    pub(crate) async fn get_within<F, Fut>(&self, key: K, max_age: Option<Duration>, fetch: F) -> Result<T, AzureError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, AzureError>>,
    {
        let cell = {
            let mut cells = self.cells.lock().unwrap_or_else(|e| e.into_inner());
            match cells.get(&key) {
                // A read still under way is joined whatever its age: a slow search is never
                // started again on top of itself.
                Some((at, cell)) if !cell.initialized() || max_age.is_none_or(|m| at.elapsed() < m) => cell.clone(),
                _ => {
                    let cell: Shared<T> = Arc::new(OnceCell::new());
                    cells.insert(key, (Instant::now(), cell.clone()));
                    cell
                }
            }
        };
        let result = cell.get_or_init(fetch).await.clone();
        if result.is_err() {
            // Concurrent askers share the failure, but the next ask reads Azure again.
            self.forget_cell(&cell);
        }
        result
    }

    /// Forget the entry `cell` belongs to (if it is still the current one).
    fn forget_cell(&self, cell: &Shared<T>) {
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, (_, c)| !Arc::ptr_eq(c, cell));
    }

    /// Forget the reads whose key matches, so the next ask reads Azure again (after a write).
    /// Keep `value` as the answer for `key`, read now (a write's own read-back).
    pub(crate) fn put(&self, key: K, value: T) {
        let cell: Shared<T> = Arc::new(OnceCell::new_with(Some(Ok(value))));
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).insert(key, (Instant::now(), cell));
    }

    pub(crate) fn forget(&self, matches: impl Fn(&K) -> bool) {
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).retain(|k, _| !matches(k));
    }

    pub(crate) fn len(&self) -> usize {
        self.cells.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

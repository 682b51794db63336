//! The namespace cache the gate reads each namespace's `iothubaccess.io/allowed-scopes` from.
//! Fail closed: until the cache has listed the namespaces, and while its watch fails, no
//! namespace gets a verdict (`ScopesUnknown`). A watch that fails is started over with a fresh
//! list (after a jittered backoff), so the cache comes back by itself, without waiting for a
//! namespace to change (a resumed watch sends nothing when nothing changed). I/O: one watch on
//! namespaces.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use rand::Rng;

use crate::crd::common::ALLOWED_SCOPES_ANNOTATION;
use crate::gate::NamespaceScopes;

/// Longest wait before the watch is started over.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The namespaces as the gate sees them.
#[derive(Clone)]
pub struct NamespaceCache {
    store: Store<Namespace>,
    /// Why the cache cannot be trusted now: not listed yet, or the watch failing.
    unknown: Arc<Mutex<Option<String>>>,
}

impl NamespaceCache {
    /// Start watching `api`'s namespaces (in the background, until the runtime stops).
    pub fn start(api: Api<Namespace>) -> NamespaceCache {
        let (store, writer) = reflector::store::<Namespace>();
        let unknown = Arc::new(Mutex::new(Some("the namespaces have not been listed yet".to_string())));
        tokio::spawn(keep_watching(api, writer, unknown.clone()));
        NamespaceCache { store, unknown }
    }

    /// Wait until the namespaces have been listed once (the controllers start after it, so no
    /// resource is told `ScopesUnknown` only because the operator has just started).
    pub async fn wait_listed(&self) {
        // The store is ready once its first list is applied (its writer lives as long as the
        // watch task, which never ends).
        let _ = self.store.wait_until_ready().await;
    }

    /// The allowed-scopes annotation of `ns`, or why it cannot be known now.
    pub fn annotation(&self, ns: &str) -> Result<Option<String>, String> {
        if let Some(why) = self.unknown.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return Err(why.clone());
        }
        // A resource's namespace exists, so one missing from the cache means the cache lags.
        let n =
            self.store.get(&ObjectRef::new(ns)).ok_or_else(|| "the namespace cache has not seen it yet".to_string())?;
        Ok(n.annotations().get(ALLOWED_SCOPES_ANNOTATION).cloned())
    }

    /// The cache as the gate's namespace lookup.
    pub fn scopes(&self) -> NamespaceScopes {
        let cache = self.clone();
        Arc::new(move |ns: &str| cache.annotation(ns))
    }
}

/// Watch from a fresh list; on any error, mark the cache unknown, back off and list again.
async fn keep_watching(
    api: Api<Namespace>,
    mut writer: reflector::store::Writer<Namespace>,
    unknown: Arc<Mutex<Option<String>>>,
) {
    let mut failures = 0u32;
    loop {
        let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    writer.apply_watcher_event(&event);
                    // The store is whole again once a list has been applied.
                    if matches!(event, watcher::Event::InitDone) {
                        *unknown.lock().unwrap_or_else(|e| e.into_inner()) = None;
                        failures = 0;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "namespace watch failed; listing the namespaces again");
                    *unknown.lock().unwrap_or_else(|e| e.into_inner()) =
                        Some(format!("the namespace watch is failing: {e}"));
                    break;
                }
            }
        }
        failures = failures.saturating_add(1);
        let cap = (Duration::from_millis(250) * 2u32.saturating_pow(failures.min(8))).min(MAX_BACKOFF);
        let wait = rand::rng().random_range(cap / 2..=cap);
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use http::{Request, Response, StatusCode};
    use kube::client::Body;
    use serde_json::json;

    use super::*;

    fn reply(code: StatusCode, body: serde_json::Value) -> Response<Body> {
        Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Body::from(serde_json::to_vec(&body).unwrap()))
            .unwrap()
    }

    fn list(version: u32, annotation: &str) -> serde_json::Value {
        json!({
            "kind": "NamespaceList", "apiVersion": "v1",
            "metadata": {"resourceVersion": version.to_string()},
            "items": [{"metadata": {"name": "team-a", "resourceVersion": version.to_string(),
                "annotations": {ALLOWED_SCOPES_ANNOTATION: annotation}}}]
        })
    }

    /// Poll `f` until it holds (10 s at most).
    async fn until(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn a_namespace_watch_that_breaks_lists_again_without_waiting_for_a_change() {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let cache = NamespaceCache::start(Api::all(kube::Client::new(service, "default")));
        assert!(cache.annotation("team-a").is_err(), "not listed yet: no verdict");
        // The API server: the first watch fails (a 500, as during an API server restart), the
        // second is held open and never sends an event; the annotation changed in between.
        let lists = Arc::new(Mutex::new(0u32));
        let seen = lists.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some((request, send)) = handle.next_request().await {
                let watch = request.uri().query().unwrap_or_default().contains("watch=true");
                let mut n = seen.lock().unwrap();
                match (watch, *n) {
                    (false, _) => {
                        *n += 1;
                        let scope = if *n == 1 { "/subscriptions/a" } else { "/subscriptions/b" };
                        send.send_response(reply(StatusCode::OK, list(*n, scope)));
                    }
                    (true, 1) => send.send_response(reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500, "reason": "InternalError", "message": "etcd leader changed"}),
                    )),
                    (true, _) => held.push(send),
                }
            }
        });
        let scopes = |want: &str| cache.annotation("team-a") == Ok(Some(want.to_string()));
        until("the first list is applied", || scopes("/subscriptions/a") || scopes("/subscriptions/b")).await;
        until("the broken watch is replaced by a fresh list", || scopes("/subscriptions/b")).await;
        assert_eq!(*lists.lock().unwrap(), 2, "listed again once, with no namespace event in between");
    }
}

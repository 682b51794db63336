//! A small in-memory Kubernetes API server behind `tower_test`'s mock service: enough of the
//! API for the reconcilers (GET, JSON patch of objects and of `/status`, Events), with real
//! patch semantics (json-patch), `resourceVersion` bumps and deletion once the last finalizer
//! goes. Every request is recorded so tests can assert what the controller wrote.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};

/// One request the controller made.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: Method,
    pub path: String,
}

#[derive(Default)]
pub struct State {
    /// (plural, namespace, name) -> object.
    pub objects: BTreeMap<(String, String, String), Value>,
    pub events: Vec<Value>,
    pub requests: Vec<Seen>,
    /// Every change, in order, for watches: (plural, ADDED | MODIFIED | DELETED, object).
    pub changes: Vec<(String, String, Value)>,
    /// Woken on every change.
    pub changed: Arc<tokio::sync::Notify>,
    version: u64,
}

impl State {
    fn record(&mut self, plural: &str, kind: &str, obj: &Value) {
        self.changes.push((plural.to_string(), kind.to_string(), obj.clone()));
        self.changed.notify_waiters();
    }

    /// The current resourceVersion of the store.
    pub fn resource_version(&self) -> u64 {
        self.version
    }
}

#[derive(Clone, Default)]
pub struct FakeApi(pub Arc<Mutex<State>>);

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason, "code": code.as_u16()});
    Response::builder()
        .status(code)
        .body(Body::from(serde_json::to_vec(&body).unwrap_or_default()))
        .expect("valid response")
}

fn ok(code: StatusCode, v: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(v).unwrap_or_default()))
        .expect("valid response")
}

impl FakeApi {
    /// A kube client talking to this fake, and the task serving it.
    pub fn client(&self) -> kube::Client {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let me = self.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let response = me.handle(request).await;
                send.send_response(response);
            }
        });
        kube::Client::new(service, "default")
    }

    /// Store an object (typed resource serialized); returns it as stored.
    pub fn put<K: serde::Serialize + kube::Resource<DynamicType = ()>>(&self, obj: &K) -> Value {
        let mut v = serde_json::to_value(obj).unwrap_or_default();
        let kind = K::kind(&()).to_string();
        v["apiVersion"] = json!(K::api_version(&()));
        v["kind"] = json!(kind);
        let mut s = self.0.lock().unwrap();
        s.version += 1;
        let meta = &mut v["metadata"];
        meta["resourceVersion"] = json!(s.version.to_string());
        if meta.get("generation").is_none_or(Value::is_null) {
            meta["generation"] = json!(1);
        }
        if meta.get("uid").is_none_or(Value::is_null) {
            meta["uid"] = json!(format!("uid-{}", s.version));
        }
        if meta.get("creationTimestamp").is_none_or(Value::is_null) {
            // As the API server does, to the second (one second per change here, so creations
            // are ordered as they were made).
            let t = jiff::Timestamp::from_second(1_800_000_000 + s.version as i64).unwrap_or_default();
            meta["creationTimestamp"] = json!(t.to_string());
        }
        if meta.get("finalizers").is_none() {
            meta["finalizers"] = Value::Null;
        }
        let key = (
            K::plural(&()).to_string(),
            meta["namespace"].as_str().unwrap_or("default").to_string(),
            meta["name"].as_str().unwrap_or_default().to_string(),
        );
        let kind = if s.objects.contains_key(&key) { "MODIFIED" } else { "ADDED" };
        s.record(&key.0, kind, &v);
        s.objects.insert(key, v.clone());
        v
    }

    /// The stored object, typed.
    pub fn get<K: serde::de::DeserializeOwned + kube::Resource<DynamicType = ()>>(
        &self,
        ns: &str,
        name: &str,
    ) -> Option<K> {
        let s = self.0.lock().unwrap();
        let v = s.objects.get(&(K::plural(&()).to_string(), ns.to_string(), name.to_string()))?;
        serde_json::from_value(v.clone()).ok()
    }

    /// Change the spec (bumps generation), as `kubectl apply` would.
    pub fn edit<K>(&self, ns: &str, name: &str, f: impl FnOnce(&mut K))
    where
        K: serde::Serialize + serde::de::DeserializeOwned + kube::Resource<DynamicType = ()>,
    {
        let mut obj: K = self.get(ns, name).expect("object exists");
        f(&mut obj);
        let generation = obj.meta().generation.unwrap_or(1) + 1;
        obj.meta_mut().generation = Some(generation);
        self.put(&obj);
    }

    /// Mark for deletion, as `kubectl delete` does when finalizers are present.
    pub fn delete<K: kube::Resource<DynamicType = ()>>(&self, ns: &str, name: &str) {
        let mut s = self.0.lock().unwrap();
        let key = (K::plural(&()).to_string(), ns.to_string(), name.to_string());
        let has_finalizers =
            s.objects.get(&key).is_some_and(|o| o["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty()));
        if has_finalizers {
            s.version += 1;
            let version = s.version.to_string();
            if let Some(o) = s.objects.get_mut(&key) {
                o["metadata"]["deletionTimestamp"] = json!("2026-11-23T00:00:00Z");
                o["metadata"]["resourceVersion"] = json!(version);
            }
            if let Some(o) = s.objects.get(&key).cloned() {
                s.record(&key.0, "MODIFIED", &o);
            }
        } else if let Some(o) = s.objects.remove(&key) {
            s.record(&key.0, "DELETED", &o);
        }
    }

    /// Every stored object of a kind.
    pub fn all<K: serde::de::DeserializeOwned + kube::Resource<DynamicType = ()>>(&self) -> Vec<K> {
        let plural = K::plural(&()).to_string();
        let s = self.0.lock().unwrap();
        s.objects
            .iter()
            .filter(|(k, _)| k.0 == plural)
            .filter_map(|(_, v)| serde_json::from_value(v.clone()).ok())
            .collect()
    }

    pub fn exists<K: kube::Resource<DynamicType = ()>>(&self, ns: &str, name: &str) -> bool {
        self.0.lock().unwrap().objects.contains_key(&(K::plural(&()).to_string(), ns.to_string(), name.to_string()))
    }

    /// Events published so far: (reason, note).
    pub fn events(&self) -> Vec<(String, String)> {
        self.0
            .lock()
            .unwrap()
            .events
            .iter()
            .map(|e| {
                (
                    e["reason"].as_str().unwrap_or_default().to_string(),
                    e["note"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Status writes so far.
    pub fn status_writes(&self) -> usize {
        self.0
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.method == Method::PATCH && r.path.ends_with("/status"))
            .count()
    }

    pub async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let path = parts.uri.path().to_string();
        let mut s = self.0.lock().unwrap();
        s.requests.push(Seen { method: parts.method.clone(), path: path.clone() });
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // /apis/events.k8s.io/v1/namespaces/{ns}/events[/{name}]
        if segs.len() >= 6 && segs[1] == "events.k8s.io" {
            if parts.method == Method::POST {
                s.events.push(body.clone());
                return ok(StatusCode::CREATED, &body);
            }
            return ok(StatusCode::OK, &body);
        }
        // /apis/{group}/{version}/namespaces/{ns}/{plural}/{name}[/status]
        if segs.len() < 7 || segs[0] != "apis" || segs[3] != "namespaces" {
            return status(StatusCode::NOT_FOUND, "NotFound", &format!("the fake API server does not serve {path}"));
        }
        let key = (segs[5].to_string(), segs[4].to_string(), segs[6].to_string());
        let Some(current) = s.objects.get(&key).cloned() else {
            return status(StatusCode::NOT_FOUND, "NotFound", &format!("{} {} not found", key.0, key.2));
        };
        match parts.method {
            Method::GET => ok(StatusCode::OK, &current),
            Method::PATCH => {
                let mut next = current.clone();
                let ct = parts.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
                let result = if ct.contains("json-patch") {
                    match serde_json::from_value::<json_patch::Patch>(body) {
                        Ok(p) => json_patch::patch(&mut next, &p).map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    }
                } else {
                    json_patch::merge(&mut next, &body);
                    Ok(())
                };
                if let Err(e) = result {
                    return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", &e);
                }
                if segs.len() == 8 && segs[7] == "status" {
                    // The status subresource only changes status.
                    let st = next["status"].clone();
                    next = current.clone();
                    next["status"] = st;
                } else {
                    next["status"] = current["status"].clone();
                }
                s.version += 1;
                next["metadata"]["resourceVersion"] = json!(s.version.to_string());
                let gone = !next["metadata"]["deletionTimestamp"].is_null()
                    && next["metadata"]["finalizers"].as_array().is_none_or(Vec::is_empty);
                if gone {
                    s.objects.remove(&key);
                    s.record(&key.0, "DELETED", &next);
                } else {
                    s.record(&key.0, "MODIFIED", &next);
                    s.objects.insert(key, next.clone());
                }
                ok(StatusCode::OK, &next)
            }
            _ => status(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "not served by the fake"),
        }
    }
}

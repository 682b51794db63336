//! `principal.idFrom.configMapKeyRef`: the ConfigMap keys role assignments read their principal
//! from. The operator keeps only what is referenced, the value of each referenced key as the
//! referencing resource's own reconcile last read it (fresh, from the API server), so ten thousand
//! unrelated ConfigMaps cost nothing. ConfigMaps are watched by metadata only: an event about one
//! forgets its values (until read again) and reconciles the resources that reference it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::{Api, Client};

use crate::desire::RefValue;

/// The referenced ConfigMap keys and what they held when last read.
#[derive(Debug, Default)]
pub struct PrincipalRefs {
    values: Mutex<HashMap<(String, String, String), RefValue>>,
    referenced: Mutex<HashSet<(String, String)>>,
    /// Changes seen per ConfigMap: a read that started before a change is not remembered.
    changes: Mutex<HashMap<(String, String), u64>>,
}

impl PrincipalRefs {
    /// Read `key` of ConfigMap `ns/name` now (and remember it). A failed read is `Unknown`.
    pub async fn read(&self, client: &Client, ns: &str, name: &str, key: &str) -> RefValue {
        self.referenced.lock().unwrap_or_else(|e| e.into_inner()).insert((ns.into(), name.into()));
        let generation = self.generation(ns, name);
        let value = match Api::<ConfigMap>::namespaced(client.clone(), ns).get_opt(name).await {
            Ok(Some(cm)) => match cm.data.as_ref().and_then(|d| d.get(key)) {
                Some(v) => RefValue::Value(v.clone()),
                None => RefValue::Missing(format!(
                    "ConfigMap {ns}/{name} has no key '{key}' (in data); waiting for it to be written"
                )),
            },
            Ok(None) => RefValue::Missing(format!("ConfigMap {ns}/{name} not found; waiting for it to be created")),
            Err(e) => {
                tracing::warn!(configmap = %format!("{ns}/{name}"), error = %e, "cannot read a principal reference");
                RefValue::Unknown
            }
        };
        let mut values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        if self.generation(ns, name) == generation {
            values.insert((ns.into(), name.into(), key.into()), value.clone());
        }
        value
    }

    fn generation(&self, ns: &str, name: &str) -> u64 {
        self.changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(ns.to_string(), name.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// What `key` of `ns/name` held when last read (`Unknown` when not read since it changed).
    pub fn lookup(&self, ns: &str, name: &str, key: &str) -> RefValue {
        self.values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(ns.into(), name.into(), key.into()))
            .cloned()
            .unwrap_or(RefValue::Unknown)
    }

    /// `ns/name` changed: forget what it held. `true` when some resource references it.
    pub fn changed(&self, ns: &str, name: &str) -> bool {
        if !self.referenced.lock().unwrap_or_else(|e| e.into_inner()).contains(&(ns.to_string(), name.to_string())) {
            return false;
        }
        *self
            .changes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry((ns.to_string(), name.to_string()))
            .or_default() += 1;
        self.values.lock().unwrap_or_else(|e| e.into_inner()).retain(|(n, c, _), _| !(n == ns && c == name));
        true
    }
}

//! Against a real Kubernetes API server (etcd + kube-apiserver + the namespace controller, started
//! by `scripts/envtest`, one per run of this test binary) and the bundled Azure emulator on
//! loopback: the CRDs as a real server admits them, the real `run` binary end to end, leader
//! election on real Leases, health as the kstatus library (Flux, `helm --wait`) judges it, and a
//! short crash soak. Each test works in a namespace of its own.
//!
//!     cargo test --test cluster            # the first run builds the server (see README)

#[path = "../support/mod.rs"]
mod support;

mod admission;
mod gitops;
mod identity;
mod leader;
mod operator;
mod soak;

pub use iothub_access_operator::crd::{IotHubCustomRole, IotHubRoleAssignment, IotHubSharedAccess};
pub use iothub_access_operator::manifest::Resource;
pub use kube::api::{Api, ListParams, Patch, PatchParams};
pub use kube::{Client, ResourceExt};
pub use serde_json::{Value, json};
pub use support::cluster::*;
pub use support::*;

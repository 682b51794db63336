//! iothub-access-operator: keeps Azure IoT Hub access (RBAC data roles, custom roles, shared
//! access policies) the way the custom resources in Git say it should be.
//!
//! Every front end runs one pipeline: `desire` (validate specs, pure) and `observe` (read Azure)
//! feed `plan` (a pure diff), `apply` carries the plan out, and status reports it.

pub mod cli;
pub mod crd;
pub mod desire;
pub mod domain;
pub mod manifest;
pub mod plan;

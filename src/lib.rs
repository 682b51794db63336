//! iothub-access-operator: keeps Azure IoT Hub access (RBAC data roles, custom roles, shared
//! access policies) the way the custom resources in Git say it should be.
//!
//! Every front end runs one pipeline: `desire` (validate specs, pure) and `observe` (read Azure)
//! feed `plan` (a pure diff), `apply` carries the plan out, and status reports it.

pub mod apply;
pub mod azure;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod desire;
pub mod domain;
pub mod engine;
pub mod gate;
pub mod interlock;
pub mod manifest;
mod memo;
pub mod observe;
pub mod outcome;
pub mod pipeline;
pub mod plan;
pub mod reason;
pub mod telemetry;

/// Install the process-wide TLS crypto provider (aws-lc-rs) once. Several dependencies bring
/// rustls with different providers; without one explicit choice rustls panics at run time.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

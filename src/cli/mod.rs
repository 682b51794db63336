//! Command-line front ends over the pipeline. Each returns the process exit code; `main.rs` only
//! parses arguments and dispatches. I/O: standard output/error and the files named by the user.

pub mod audit;
pub mod crds;
pub mod demo;
pub mod emulator;
pub mod identity;
pub mod reconcile;
pub mod render;
pub mod report;
pub mod setup;
pub mod validate;

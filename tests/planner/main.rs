//! The planner's rules as tables of (desired, observed) -> the exact plan, one module per kind.

mod custom_role;
mod exposure;
mod fixtures;
mod identity_check;
mod role_assignment;
mod shared_access;

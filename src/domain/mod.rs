//! The IoT Hub access domain: the permission catalog, built-in roles, ARM ids and scopes,
//! derived names (the proof of ownership) and clouds. Pure data and functions: nothing here does I/O.

pub mod catalog;
pub mod cloud;
pub mod dependents;
pub mod grant;
pub mod ids;
pub mod naming;
pub mod observed;
pub mod roles;

pub use cloud::Cloud;
pub use dependents::{
    Dependents, DependentsObservation, DpsLink, LinkAuth, ManagedIdentity, ObservedDeviceUpdate, ObservedDps,
};
pub use grant::{Grant, NewRoleAssignment, PrincipalType};
pub use ids::{HubId, RoleAssignmentId, RoleDefinitionId, Scope};
pub use observed::{Access, ObservedAssignment, ObservedDeny, ObservedEligibility, ObservedHub, ObservedPolicy};
pub use roles::{BuiltInRole, Permission, RoleDefinition, RoleType};

//! Desire for `IotHubSharedAccess`: the hub properties the spec asks for. Pure, no I/O.

use super::{FieldErrors, check_hub};
use crate::crd::{Access, IotHubSharedAccessSpec};
use crate::domain::HubId;

/// The hub access properties wanted. `None` leaves a property as Azure has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredSharedAccess {
    pub hub: HubId,
    /// `disableLocalAuth`.
    pub disable_local_auth: bool,
    /// `disableDeviceSAS`.
    pub disable_device_sas: Option<bool>,
    /// `disableModuleSAS`.
    pub disable_module_sas: Option<bool>,
}

/// The admission rules of `IotHubSharedAccess`.
pub fn validate_shared_access(spec: &IotHubSharedAccessSpec) -> Result<(), FieldErrors> {
    let mut errs = FieldErrors::default();
    check_hub(&mut errs, "spec.hub", &spec.hub);
    errs.into_result()
}

/// Validate and convert.
pub fn desire_shared_access(spec: &IotHubSharedAccessSpec) -> Result<DesiredSharedAccess, FieldErrors> {
    validate_shared_access(spec)?;
    let deny = |a: Access| a == Access::Deny;
    Ok(DesiredSharedAccess {
        hub: spec.hub.to_hub_id(),
        disable_local_auth: deny(spec.shared_access_policies),
        disable_device_sas: spec.device_sas.map(deny),
        disable_module_sas: spec.module_sas.map(deny),
    })
}

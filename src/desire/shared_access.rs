//! Desire for `IotHubSharedAccess`: the hub properties the spec asks for. Pure, no I/O.

use super::{FieldErrors, check_hub};
use crate::crd::{Access, IotHubSharedAccessSpec};
use crate::domain::HubId;

/// The hub access properties wanted. `None` leaves a property as Azure has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredSharedAccess {
    pub hub: HubId,
    /// Shared access policies (`disableLocalAuth`).
    pub shared_access: Access,
    /// Device-scoped SAS (`disableDeviceSAS`).
    pub device_sas: Option<Access>,
    /// Module-scoped SAS (`disableModuleSAS`).
    pub module_sas: Option<Access>,
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
    Ok(DesiredSharedAccess {
        hub: spec.hub.to_hub_id(),
        shared_access: spec.shared_access_policies,
        device_sas: spec.device_sas,
        module_sas: spec.module_sas,
    })
}

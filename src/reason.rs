//! One vocabulary of reasons: planner findings, the `Ready` condition, Events and metric labels
//! all use [`Reason`] (a bounded set, so also safe as a label). No I/O.

use std::fmt;

/// Why something is as it is: a finding, a condition, an Event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// A DPS links the hub by shared access policy.
    DpsLinked,
    /// The search for what reaches the hub by key could not be completed.
    DpsCheckFailed,
    /// A DPS links the hub with an identity that cannot register devices on it.
    DpsIdentityLacksRole,
    /// A Device Update instance uses the hub (it needs local authentication).
    DeviceUpdateLinked,
    /// Azure Policy refused the write.
    PolicyDenied,
    /// A principal can newly reach a hub's keys while shared access is allowed (Event).
    KeyHolderAppeared,
    /// `principal.idFrom` names a ConfigMap or key that is not there (yet).
    PrincipalRefNotFound,
    /// Azure refused a role assignment write or delete (403): the delegation condition on the
    /// operator's identity, most likely.
    DelegationDenied,
    /// Azure holds something else than was written (a Modify policy).
    OverriddenByPolicy,
    /// Deny was written, then a dependent appeared: shared access was allowed again.
    DenyReverted,
    /// Nobody would keep access to the hub's service APIs.
    WouldLockOut,
    /// The hub does not exist (or cannot be read).
    HubNotFound,
    /// Another custom role already has this name in the tenant.
    RoleNameTaken,
    /// The role grants more than IoT Hub data access (or cannot be read to tell).
    RoleNotGrantable,
    /// Outside the scopes the operator may manage (`--allowed-scope`, the namespace annotation).
    ScopeNotAllowed,
    /// A role definition cannot be deleted while assignments use it.
    RoleDefinitionHasAssignments,
    /// The assignment is broader than the hub.
    BroaderScopeThanHub,
    /// The principal can read every SAS key through listkeys.
    PrincipalHoldsListKeys,
    /// An equal assignment existed under another name and satisfies the spec.
    AdoptedExisting,
    /// Left in Azure because of `deletionPolicy: Orphan`.
    Orphaned,
    /// Left in Azure for another resource that wants the same grant.
    HandedOver,
    /// Made for a resource that no longer exists; this one now owns it.
    TakenOver,
    /// Azure matches the spec.
    Reconciled,
    /// The spec is invalid; nothing is read or written until it changes.
    InvalidSpec,
    /// The referenced IotHubCustomRole is missing or not Ready yet.
    WaitingForCustomRole,
    /// Observe mode: the changes are reported, not written.
    PendingChanges,
    /// The principal is not (yet) known to the directory.
    PrincipalNotFound,
    /// Azure throttled the requests; retried after what it asked.
    Throttled,
    /// Another Azure failure; retried with backoff.
    AzureError,
    /// A Kubernetes API failure; retried with backoff.
    KubernetesError,
    /// Deletion refused while something still uses the object; retried calmly.
    InUse,
    /// Cleanup is under way.
    Deleting,
    /// The `LeastPrivilege` condition's reason.
    LeastPrivilege,
    /// The reconcile annotation has an unknown value (observe mode is used).
    UnknownReconcileMode,
    /// The namespace's allowed scopes are not known yet (the guardrail fails closed).
    ScopesUnknown,
    /// A new generation was seen and is being reconciled.
    Progressing,
    /// An Azure write was made (the Event's action names it).
    Written,
    /// An Azure write failed (the Event's action names it); retried.
    WriteFailed,
    /// Azure had drifted from the spec and was put back.
    DriftRepaired,
    /// Azure holds something else than the spec right after the write (changed meanwhile);
    /// looked at again soon.
    Drifted,
    /// Deleted while not managed (observe or skip): Azure left as it is.
    LeftInAzure,
    /// Deletion refused for now (the object is in use).
    DeletionRefused,
    /// A write withheld because this replica does not provably hold the leader Lease; retried.
    NotLeader,
    /// Another `IotHubSharedAccess` already manages this hub's shared access.
    Conflict,
    /// A grant this resource made was revoked: its role no longer passes the role check.
    GrantRevoked,
    /// The role is a custom role another namespace's `IotHubCustomRole` made.
    CustomRoleOfAnotherNamespace,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::DpsLinked => "DpsLinked",
            Reason::DpsCheckFailed => "DpsCheckFailed",
            Reason::DpsIdentityLacksRole => "DpsIdentityLacksRole",
            Reason::DeviceUpdateLinked => "DeviceUpdateLinked",
            Reason::PolicyDenied => "PolicyDenied",
            Reason::KeyHolderAppeared => "KeyHolderAppeared",
            Reason::PrincipalRefNotFound => "PrincipalRefNotFound",
            Reason::DelegationDenied => "DelegationDenied",
            Reason::OverriddenByPolicy => "OverriddenByPolicy",
            Reason::DenyReverted => "DenyReverted",
            Reason::WouldLockOut => "WouldLockOut",
            Reason::HubNotFound => "HubNotFound",
            Reason::RoleNameTaken => "RoleNameTaken",
            Reason::RoleNotGrantable => "RoleNotGrantable",
            Reason::ScopeNotAllowed => "ScopeNotAllowed",
            Reason::RoleDefinitionHasAssignments => "RoleDefinitionHasAssignments",
            Reason::BroaderScopeThanHub => "BroaderScopeThanHub",
            Reason::PrincipalHoldsListKeys => "PrincipalHoldsListKeys",
            Reason::AdoptedExisting => "AdoptedExisting",
            Reason::Orphaned => "Orphaned",
            Reason::HandedOver => "HandedOver",
            Reason::TakenOver => "TakenOver",
            Reason::Reconciled => "Reconciled",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::WaitingForCustomRole => "WaitingForCustomRole",
            Reason::PendingChanges => "PendingChanges",
            Reason::PrincipalNotFound => "PrincipalNotFound",
            Reason::Throttled => "Throttled",
            Reason::AzureError => "AzureError",
            Reason::KubernetesError => "KubernetesError",
            Reason::InUse => "InUse",
            Reason::Deleting => "Deleting",
            Reason::LeastPrivilege => "LeastPrivilege",
            Reason::UnknownReconcileMode => "UnknownReconcileMode",
            Reason::ScopesUnknown => "ScopesUnknown",
            Reason::Progressing => "Progressing",
            Reason::Written => "Written",
            Reason::WriteFailed => "WriteFailed",
            Reason::DriftRepaired => "DriftRepaired",
            Reason::Drifted => "Drifted",
            Reason::LeftInAzure => "LeftInAzure",
            Reason::DeletionRefused => "DeletionRefused",
            Reason::NotLeader => "NotLeader",
            Reason::Conflict => "Conflict",
            Reason::GrantRevoked => "GrantRevoked",
            Reason::CustomRoleOfAnotherNamespace => "CustomRoleOfAnotherNamespace",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

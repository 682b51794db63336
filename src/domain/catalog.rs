//! The IoT Hub permission catalog: the documented IoT Hub data actions, the wildcard forms a
//! custom role may use, the named `operations` that expand to data actions, and Azure's
//! action-pattern matching. Pure data and functions, no I/O.
//!
//! Azure compares actions case-insensitively and a `*` in a pattern matches any run of
//! characters, `/` included (`Microsoft.Devices/IotHubs/*/read` matches
//! `Microsoft.Devices/IotHubs/devices/read`). Everything here follows those two rules.

use std::collections::BTreeSet;
use std::sync::LazyLock;

/// The provider prefix every IoT Hub data action starts with (canonical casing of the docs).
pub const DATA_ACTION_PREFIX: &str = "Microsoft.Devices/IotHubs/";

/// The control-plane action that returns every shared access key of a hub. A role that grants it
/// hands out full SAS access whatever its data actions say.
pub const LISTKEYS_ACTION: &str = "Microsoft.Devices/iotHubs/listkeys/action";

/// Every action that reads shared access keys: the hub-wide list and the per-policy one.
pub const LISTKEYS_ACTIONS: &[&str] = &[LISTKEYS_ACTION, "Microsoft.Devices/iotHubs/iotHubKeys/listkeys/action"];

/// The documented IoT Hub data actions ("Permissions for IoT Hub service APIs"), canonical casing.
pub const DATA_ACTIONS: &[&str] = &[
    "Microsoft.Devices/IotHubs/devices/read",
    "Microsoft.Devices/IotHubs/devices/write",
    "Microsoft.Devices/IotHubs/devices/delete",
    "Microsoft.Devices/IotHubs/twins/read",
    "Microsoft.Devices/IotHubs/twins/write",
    "Microsoft.Devices/IotHubs/jobs/read",
    "Microsoft.Devices/IotHubs/jobs/write",
    "Microsoft.Devices/IotHubs/jobs/delete",
    "Microsoft.Devices/IotHubs/cloudToDeviceMessages/send/action",
    "Microsoft.Devices/IotHubs/cloudToDeviceMessages/feedback/action",
    "Microsoft.Devices/IotHubs/cloudToDeviceMessages/queue/purge/action",
    "Microsoft.Devices/IotHubs/directMethods/invoke/action",
    "Microsoft.Devices/IotHubs/fileUpload/notifications/action",
    "Microsoft.Devices/IotHubs/statistics/read",
    "Microsoft.Devices/IotHubs/configurations/read",
    "Microsoft.Devices/IotHubs/configurations/write",
    "Microsoft.Devices/IotHubs/configurations/delete",
    "Microsoft.Devices/IotHubs/configurations/applyToEdgeDevice/action",
    "Microsoft.Devices/IotHubs/configurations/testQueries/action",
];

/// Does `pattern` (an Azure action pattern, `*` wildcards allowed) match `action`?
/// Case-insensitive; `*` matches any run of characters including `/`.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    let action = action.to_ascii_lowercase();
    glob(pattern.as_bytes(), action.as_bytes())
}

fn glob(pattern: &[u8], text: &[u8]) -> bool {
    // Iterative wildcard matching with backtracking to the last star: linear in practice.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Every data-action pattern a custom role may use: the documented actions and the wildcard
/// forms derived from them, canonical casing, sorted. For an action `…/IotHubs/s1/…/sn` the
/// wildcard forms are the prefixes `…/IotHubs/s1/…/sk/*` (k < n, including `…/IotHubs/*`) and the
/// suffixes `…/IotHubs/*/sk/…/sn` (k > 1). Admission (CEL) and the Rust validation both check
/// against this one list, so they cannot disagree.
pub static ALLOWED_DATA_ACTION_PATTERNS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut out = BTreeSet::new();
    for action in DATA_ACTIONS {
        out.insert((*action).to_string());
        let rest = &action[DATA_ACTION_PREFIX.len()..];
        let segments: Vec<&str> = rest.split('/').collect();
        for k in 0..segments.len() {
            let prefix = segments[..k].join("/");
            let sep = if k == 0 { "" } else { "/" };
            out.insert(format!("{DATA_ACTION_PREFIX}{prefix}{sep}*"));
        }
        for k in 1..segments.len() {
            out.insert(format!("{DATA_ACTION_PREFIX}*/{}", segments[k..].join("/")));
        }
    }
    out.into_iter().collect()
});

/// The canonical spelling of an allowed data-action pattern, compared case-insensitively, or
/// `None` when it is neither a documented IoT Hub data action nor one of their wildcard forms.
pub fn canonical_data_action(pattern: &str) -> Option<&'static str> {
    ALLOWED_DATA_ACTION_PATTERNS.iter().find(|p| p.eq_ignore_ascii_case(pattern)).map(String::as_str)
}

/// The closest allowed pattern to a rejected one, for "did you mean" hints.
pub fn suggest_data_action(pattern: &str) -> Option<&'static str> {
    let lower = pattern.to_ascii_lowercase();
    ALLOWED_DATA_ACTION_PATTERNS
        .iter()
        .map(|p| (edit_distance(&p.to_ascii_lowercase(), &lower), p))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, p)| p.as_str())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The documented data actions that `allowed` grants and `denied` does not take away, in
/// catalog order.
pub fn effective_data_actions<'a>(
    allowed: impl IntoIterator<Item = &'a str> + Clone,
    denied: impl IntoIterator<Item = &'a str> + Clone,
) -> Vec<&'static str> {
    DATA_ACTIONS
        .iter()
        .copied()
        .filter(|a| allowed.clone().into_iter().any(|p| action_matches(p, a)))
        .filter(|a| !denied.clone().into_iter().any(|p| action_matches(p, a)))
        .collect()
}

/// Named IoT Hub service operations a custom role can ask for instead of spelling out data
/// actions. Each expands to the data actions the IoT Hub docs say it requires.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub enum Operation {
    /// Bulk create/update/delete of device identities (import/export and bulk registry update).
    BulkRegistryUpdate,
    /// Query device and module twins.
    TwinQuery,
    /// Read a device's or module's identity.
    GetDevice,
    /// Create, update or delete device identities.
    ManageDevices,
    /// Read twins.
    GetTwin,
    /// Update twins (desired properties, tags).
    UpdateTwin,
    /// Read an IoT Plug and Play digital twin.
    GetDigitalTwin,
    /// Update an IoT Plug and Play digital twin.
    UpdateDigitalTwin,
    /// Invoke a command on a Plug and Play component.
    InvokeComponentCommand,
    /// Invoke a root-level Plug and Play command.
    InvokeRootLevelCommand,
    /// Invoke a direct method on a device or module.
    InvokeDirectMethod,
    /// Send cloud-to-device messages.
    SendCloudToDeviceMessage,
    /// Receive delivery feedback for cloud-to-device messages.
    ReceiveCloudToDeviceFeedback,
    /// Purge a device's cloud-to-device queue.
    PurgeCloudToDeviceQueue,
    /// Receive file upload notifications.
    ReceiveFileUploadNotifications,
    /// Schedule and manage jobs.
    ManageJobs,
    /// Read jobs.
    ReadJobs,
    /// Read automatic device and module configurations.
    ReadConfigurations,
    /// Create, update, delete, apply and test configurations.
    ManageConfigurations,
    /// Apply a configuration to an IoT Edge device.
    ApplyToEdgeDevice,
    /// Read service and device statistics.
    ReadStatistics,
}

impl Operation {
    /// Every operation, in declaration order.
    pub const ALL: &'static [Operation] = &[
        Operation::BulkRegistryUpdate,
        Operation::TwinQuery,
        Operation::GetDevice,
        Operation::ManageDevices,
        Operation::GetTwin,
        Operation::UpdateTwin,
        Operation::GetDigitalTwin,
        Operation::UpdateDigitalTwin,
        Operation::InvokeComponentCommand,
        Operation::InvokeRootLevelCommand,
        Operation::InvokeDirectMethod,
        Operation::SendCloudToDeviceMessage,
        Operation::ReceiveCloudToDeviceFeedback,
        Operation::PurgeCloudToDeviceQueue,
        Operation::ReceiveFileUploadNotifications,
        Operation::ManageJobs,
        Operation::ReadJobs,
        Operation::ReadConfigurations,
        Operation::ManageConfigurations,
        Operation::ApplyToEdgeDevice,
        Operation::ReadStatistics,
    ];

    /// The spec spelling (`BulkRegistryUpdate`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Operation::BulkRegistryUpdate => "BulkRegistryUpdate",
            Operation::TwinQuery => "TwinQuery",
            Operation::GetDevice => "GetDevice",
            Operation::ManageDevices => "ManageDevices",
            Operation::GetTwin => "GetTwin",
            Operation::UpdateTwin => "UpdateTwin",
            Operation::GetDigitalTwin => "GetDigitalTwin",
            Operation::UpdateDigitalTwin => "UpdateDigitalTwin",
            Operation::InvokeComponentCommand => "InvokeComponentCommand",
            Operation::InvokeRootLevelCommand => "InvokeRootLevelCommand",
            Operation::InvokeDirectMethod => "InvokeDirectMethod",
            Operation::SendCloudToDeviceMessage => "SendCloudToDeviceMessage",
            Operation::ReceiveCloudToDeviceFeedback => "ReceiveCloudToDeviceFeedback",
            Operation::PurgeCloudToDeviceQueue => "PurgeCloudToDeviceQueue",
            Operation::ReceiveFileUploadNotifications => "ReceiveFileUploadNotifications",
            Operation::ManageJobs => "ManageJobs",
            Operation::ReadJobs => "ReadJobs",
            Operation::ReadConfigurations => "ReadConfigurations",
            Operation::ManageConfigurations => "ManageConfigurations",
            Operation::ApplyToEdgeDevice => "ApplyToEdgeDevice",
            Operation::ReadStatistics => "ReadStatistics",
        }
    }

    /// Parse the spec spelling, case-sensitively as the CRD enum does.
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.iter().copied().find(|o| o.name() == name)
    }

    /// The data actions this operation requires (canonical casing, catalog entries only).
    /// Digital twin and Plug and Play commands go through the twin and direct method APIs, as
    /// the IoT Hub RBAC guide maps them.
    pub fn data_actions(self) -> &'static [&'static str] {
        macro_rules! acts { ($($a:literal),*) => { &[$(concat!("Microsoft.Devices/IotHubs/", $a)),*] } }
        match self {
            Operation::BulkRegistryUpdate => acts!("devices/write", "devices/delete"),
            Operation::TwinQuery => acts!("twins/read"),
            Operation::GetDevice => acts!("devices/read"),
            Operation::ManageDevices => acts!("devices/read", "devices/write", "devices/delete"),
            Operation::GetTwin => acts!("twins/read"),
            Operation::UpdateTwin => acts!("twins/write"),
            Operation::GetDigitalTwin => acts!("twins/read"),
            Operation::UpdateDigitalTwin => acts!("twins/write"),
            Operation::InvokeComponentCommand => acts!("directMethods/invoke/action"),
            Operation::InvokeRootLevelCommand => acts!("directMethods/invoke/action"),
            Operation::InvokeDirectMethod => acts!("directMethods/invoke/action"),
            Operation::SendCloudToDeviceMessage => acts!("cloudToDeviceMessages/send/action"),
            Operation::ReceiveCloudToDeviceFeedback => {
                acts!("cloudToDeviceMessages/feedback/action")
            }
            Operation::PurgeCloudToDeviceQueue => acts!("cloudToDeviceMessages/queue/purge/action"),
            Operation::ReceiveFileUploadNotifications => acts!("fileUpload/notifications/action"),
            Operation::ManageJobs => acts!("jobs/read", "jobs/write", "jobs/delete"),
            Operation::ReadJobs => acts!("jobs/read"),
            Operation::ReadConfigurations => acts!("configurations/read"),
            Operation::ManageConfigurations => acts!(
                "configurations/read",
                "configurations/write",
                "configurations/delete",
                "configurations/testQueries/action"
            ),
            Operation::ApplyToEdgeDevice => acts!("configurations/applyToEdgeDevice/action"),
            Operation::ReadStatistics => acts!("statistics/read"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_like_azure() {
        assert!(action_matches("Microsoft.Devices/IotHubs/*", "microsoft.devices/iothubs/devices/read"));
        assert!(action_matches("Microsoft.Devices/IotHubs/*/read", "Microsoft.Devices/IotHubs/twins/read"));
        assert!(action_matches("*", LISTKEYS_ACTION));
        assert!(action_matches("*/action", LISTKEYS_ACTION));
        assert!(action_matches("Microsoft.Devices/*/listkeys/action", LISTKEYS_ACTION));
        assert!(!action_matches("*/read", LISTKEYS_ACTION));
        assert!(!action_matches("Microsoft.Devices/IotHubs/*/read", "Microsoft.Devices/IotHubs/devices/write"));
        assert!(!action_matches("Microsoft.Devices/IotHubs/devices/read", "Microsoft.Devices/IotHubs/devices/reads"));
    }

    #[test]
    fn allowed_patterns_cover_documented_actions_and_their_wildcards_only() {
        for a in DATA_ACTIONS {
            assert_eq!(canonical_data_action(&a.to_lowercase()), Some(*a));
        }
        assert_eq!(canonical_data_action("microsoft.devices/iothubs/*"), Some("Microsoft.Devices/IotHubs/*"));
        assert!(canonical_data_action("Microsoft.Devices/IotHubs/*/read").is_some());
        assert!(canonical_data_action("Microsoft.Devices/IotHubs/devices/*").is_some());
        assert!(canonical_data_action("Microsoft.Devices/IotHubs/cloudToDeviceMessages/queue/*").is_some());
        assert!(canonical_data_action("Microsoft.Devices/IotHubs/devices/reed").is_none());
        assert!(canonical_data_action("*").is_none());
        assert!(canonical_data_action("Microsoft.Devices/*").is_none());
        assert!(canonical_data_action(LISTKEYS_ACTION).is_none());
        // every allowed wildcard grants at least one documented action
        for p in ALLOWED_DATA_ACTION_PATTERNS.iter() {
            assert!(DATA_ACTIONS.iter().any(|a| action_matches(p, a)), "{p}");
        }
    }

    #[test]
    fn typo_gets_a_suggestion() {
        assert_eq!(
            suggest_data_action("Microsoft.Devices/IotHubs/devices/reed"),
            Some("Microsoft.Devices/IotHubs/devices/read")
        );
    }

    #[test]
    fn effective_actions_subtract_not_data_actions() {
        let eff = effective_data_actions(["Microsoft.Devices/IotHubs/devices/*"], ["*/delete"]);
        assert_eq!(eff, vec!["Microsoft.Devices/IotHubs/devices/read", "Microsoft.Devices/IotHubs/devices/write"]);
    }

    #[test]
    fn bulk_registry_update_needs_write_and_delete() {
        assert_eq!(
            Operation::BulkRegistryUpdate.data_actions(),
            &["Microsoft.Devices/IotHubs/devices/write", "Microsoft.Devices/IotHubs/devices/delete"]
        );
        for op in Operation::ALL {
            assert_eq!(Operation::from_name(op.name()), Some(*op));
            for a in op.data_actions() {
                assert!(DATA_ACTIONS.contains(a), "{a}");
            }
        }
    }
}

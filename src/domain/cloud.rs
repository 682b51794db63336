//! Azure clouds: the endpoints, token scopes and host suffixes that differ between Azure public
//! cloud, Azure China (21Vianet) and Azure US Government. Values from the ARM cloud metadata and
//! the IoT SDKs; the China IoT Hub data-plane scope is unverified and therefore overridable.
//! Pure data, no I/O.

use std::fmt;
use std::str::FromStr;

/// A sovereign cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum Cloud {
    #[default]
    #[value(name = "AzurePublicCloud")]
    AzurePublicCloud,
    #[value(name = "AzureChinaCloud")]
    AzureChinaCloud,
    #[value(name = "AzureUSGovernment")]
    AzureUsGovernment,
}

impl Cloud {
    pub const ALL: &'static [Cloud] = &[Cloud::AzurePublicCloud, Cloud::AzureChinaCloud, Cloud::AzureUsGovernment];

    pub fn name(self) -> &'static str {
        match self {
            Cloud::AzurePublicCloud => "AzurePublicCloud",
            Cloud::AzureChinaCloud => "AzureChinaCloud",
            Cloud::AzureUsGovernment => "AzureUSGovernment",
        }
    }

    /// Azure Resource Manager endpoint (no trailing slash).
    pub fn arm_endpoint(self) -> &'static str {
        match self {
            Cloud::AzurePublicCloud => "https://management.azure.com",
            Cloud::AzureChinaCloud => "https://management.chinacloudapi.cn",
            Cloud::AzureUsGovernment => "https://management.usgovcloudapi.net",
        }
    }

    /// Token scope for ARM.
    pub fn arm_scope(self) -> String {
        format!("{}/.default", self.arm_endpoint())
    }

    /// Microsoft Entra authority host (no trailing slash).
    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::AzurePublicCloud => "https://login.microsoftonline.com",
            Cloud::AzureChinaCloud => "https://login.chinacloudapi.cn",
            Cloud::AzureUsGovernment => "https://login.microsoftonline.us",
        }
    }

    /// Token scope of the IoT Hub service APIs (for data-plane calls, e.g. checks).
    pub fn iothub_data_scope(self) -> &'static str {
        match self {
            Cloud::AzurePublicCloud => "https://iothubs.azure.net/.default",
            Cloud::AzureChinaCloud => "https://iothubs.azure.cn/.default",
            Cloud::AzureUsGovernment => "https://iothubs.azure.us/.default",
        }
    }

    /// Host suffix of IoT hubs: a hub `h` is `h.{suffix}`.
    pub fn iothub_host_suffix(self) -> &'static str {
        match self {
            Cloud::AzurePublicCloud => "azure-devices.net",
            Cloud::AzureChinaCloud => "azure-devices.cn",
            Cloud::AzureUsGovernment => "azure-devices.us",
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Cloud {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cloud::ALL
            .iter()
            .copied()
            .find(|c| c.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown cloud '{s}': use AzurePublicCloud, AzureChinaCloud or AzureUSGovernment"))
    }
}

/// Every IoT Hub host suffix of every cloud, for matching host names whose cloud is unknown.
pub fn all_iothub_host_suffixes() -> impl Iterator<Item = &'static str> {
    Cloud::ALL.iter().map(|c| c.iothub_host_suffix())
}

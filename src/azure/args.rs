//! The Azure settings every command that talks to Azure shares: the cloud and its endpoint
//! overrides, credentials from the usual `AZURE_*` variables, and the client's tunables.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::arm::{ArmClient, ArmConfig, http_client};
use super::credential::{CloudEndpoints, CredentialKind, token_source};
use crate::domain::Cloud;

/// `--cloud`, `--arm-endpoint`, `--authority-host` and the client's limits.
#[derive(clap::Args, Clone, Debug)]
pub struct AzureArgs {
    /// The Azure cloud: selects the ARM endpoint, the Entra authority host and the IoT Hub host
    /// name suffix.
    #[arg(long, value_enum, default_value_t = Cloud::AzurePublicCloud, env = "IOTHUB_ACCESS_CLOUD")]
    pub cloud: Cloud,
    /// Override the cloud's ARM endpoint (a private endpoint, or the local emulator:
    /// `http://127.0.0.1:PORT`). The token audience stays the cloud's.
    #[arg(long, env = "IOTHUB_ACCESS_ARM_ENDPOINT")]
    pub arm_endpoint: Option<String>,
    /// Override the cloud's Entra authority host (also read from `AZURE_AUTHORITY_HOST`, which
    /// the workload identity webhook sets).
    #[arg(long, env = "AZURE_AUTHORITY_HOST")]
    pub authority_host: Option<String>,
    /// How long a new principal's `PrincipalNotFound` (directory replication) is retried before
    /// it is reported as a wrong principal id, in seconds.
    #[arg(long, default_value_t = 120)]
    pub principal_not_found_timeout: u64,
    /// Timeout of one HTTP request to Azure, in seconds.
    #[arg(long, default_value_t = 30)]
    pub request_timeout: u64,
    /// DPS api-version used to read hub links. Unset: picked per subscription from what the
    /// Microsoft.Devices provider registration lists, the newest stable version that reports
    /// each link's `authenticationType` (2026-08-01 or later), else 2022-12-12, where every link
    /// counts as key-based (fail closed).
    #[arg(long, env = "IOTHUB_ACCESS_DPS_API_VERSION")]
    pub dps_api_version: Option<String>,
    /// IoT Hub api-version. Unset: picked per subscription from the provider registration, the
    /// newest that reports the hubs' device and service host names (2026-03-01-preview or
    /// later), else 2023-06-30.
    #[arg(long, env = "IOTHUB_ACCESS_IOTHUB_API_VERSION")]
    pub iothub_api_version: Option<String>,
    /// Azure writes in flight at once (the client also paces inside ARM's token buckets).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

impl AzureArgs {
    /// The client configuration these flags describe.
    pub fn arm_config(&self) -> ArmConfig {
        let endpoints = CloudEndpoints::new(self.cloud, self.arm_endpoint.as_deref(), self.authority_host.as_deref());
        let mut config = ArmConfig::new(endpoints);
        config.retry.principal_not_found_timeout = Duration::from_secs(self.principal_not_found_timeout);
        config.request_timeout = Duration::from_secs(self.request_timeout.max(1));
        config.dps_api_version = self.dps_api_version.clone().filter(|v| !v.trim().is_empty());
        config.iothub_api_version = self.iothub_api_version.clone().filter(|v| !v.trim().is_empty());
        config
    }

    /// Build the Azure client, with credentials chosen from the environment.
    pub fn client(&self) -> anyhow::Result<Arc<ArmClient>> {
        let kind = CredentialKind::from_env(|k| std::env::var(k).ok()).map_err(anyhow::Error::msg)?;
        connect(self.arm_config(), &kind)
    }
}

/// Build an Azure client for `config` with the credential `kind`.
pub fn connect(config: ArmConfig, kind: &CredentialKind) -> anyhow::Result<Arc<ArmClient>> {
    let http = http_client(config.request_timeout)?;
    let tokens = token_source(kind, &config.endpoints, http.clone()).context("setting up Azure credentials")?;
    Ok(Arc::new(ArmClient::new(config, tokens, http)?))
}

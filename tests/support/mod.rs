//! Shared by the integration tests: the bundled emulator on loopback, seeded with the demo's
//! Azure, and the real ARM client pointed at it (client secret through the emulator's token
//! endpoint), with retry delays short enough for tests.
#![allow(dead_code)]

pub mod cluster;
pub mod envtest;
pub mod proof;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use iothub_access_emulator::{EmulatorConfig, EmulatorHandle, Seed};
use iothub_access_operator::azure::args::connect;
use iothub_access_operator::azure::arm::{ArmClient, ArmConfig};
use iothub_access_operator::azure::credential::{CloudEndpoints, CredentialKind};
use iothub_access_operator::domain::Cloud;

pub const DEMO_SEED: &str = include_str!("../../data/demo/seed.yaml");
pub const SUB: &str = "5f0c7a9e-3b2d-4c1a-9e8f-7d6b5a4c3b2a";
pub const RG: &str = "rg-iot-prod";
/// The platform team's subscription, where the demo's DPS lives.
pub const PLATFORM_SUB: &str = "2c9d8e7f-6a5b-4c3d-9e1f-0a1b2c3d4e5f";
pub const FACTORY_HUB: &str = "contoso-factory-hub";
pub const FLEET_HUB: &str = "contoso-fleet-hub";
pub const TENANT: &str = "3c6f1d2e-8a4b-4f5c-9d7e-1a2b3c4d5e6f";
pub const CLIENT_ID: &str = "2b1a0f9e-8d7c-4b6a-9e5d-4c3b2a1f0e9d";
pub const CLIENT_SECRET: &str = "demo-only-secret";
pub const TELEMETRY_SP: &str = "0b7e4f3a-9c1d-4e2b-8a6f-5d3c2b1a0f9e";
pub const SYNC_SP: &str = "7c2a9e1f-4b3d-4a5c-9e8f-1d2c3b4a5f6e";
pub const OPS_GROUP: &str = "e4d3c2b1-a0f9-4e8d-b7c6-a5b4c3d2e1f0";

pub fn rg_scope() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}")
}

pub fn hub_scope(hub: &str) -> String {
    format!("{}/providers/Microsoft.Devices/IotHubs/{hub}", rg_scope())
}

/// Start the emulator with `seed` (YAML), letting the test adjust the configuration.
pub async fn emulator(seed: &str, tweak: impl FnOnce(&mut EmulatorConfig)) -> EmulatorHandle {
    let mut config =
        EmulatorConfig { seed: Seed::from_str_auto(seed).expect("seed parses"), ..EmulatorConfig::default() };
    tweak(&mut config);
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("address");
    iothub_access_emulator::start(addr, config).await.expect("emulator starts")
}

/// Client settings for the emulator in `cloud`, with short retry delays.
pub fn config(emu: &EmulatorHandle, cloud: Cloud) -> ArmConfig {
    let base = emu.base_url();
    let mut c = ArmConfig::new(CloudEndpoints::new(cloud, Some(&base), Some(&base)));
    c.retry.base_delay = Duration::from_millis(10);
    c.retry.max_delay = Duration::from_millis(200);
    c.retry.principal_not_found_timeout = Duration::from_secs(2);
    c.request_timeout = Duration::from_secs(5);
    c
}

pub fn credential() -> CredentialKind {
    CredentialKind::ClientSecret { tenant_id: TENANT.into(), client_id: CLIENT_ID.into(), secret: CLIENT_SECRET.into() }
}

/// The real ARM client against the emulator.
pub fn client_with(config: ArmConfig) -> Arc<ArmClient> {
    connect(config, &credential()).expect("client builds")
}

pub fn client(emu: &EmulatorHandle) -> Arc<ArmClient> {
    client_with(config(emu, Cloud::AzurePublicCloud))
}

//! `iothub-access-operator emulator`: serve the local Azure emulator (ARM role assignments and
//! definitions, IoT Hub, DPS, the Entra token endpoint and IMDS) on loopback, for local
//! development and GitOps pipeline tests. Seeded from `--state FILE` (YAML or JSON; the demo's
//! Azure when omitted), optionally written back after every change (`--persist`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use iothub_access_emulator::{EmulatorConfig, Faults, Seed, ThrottleConfig};

/// The demo's Azure (two hubs, a DPS linked by key, principals, a client for the operator).
pub const DEMO_SEED: &str = include_str!("../../data/demo/seed.yaml");

/// Flags of `emulator`.
#[derive(clap::Args, Clone, Debug)]
pub struct EmulatorArgs {
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Seed state (hubs, DPS instances and links, principals, assignments, role definitions,
    /// clients), YAML or JSON. Default: the demo's Azure.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Write the state back to `--state` after every change (and load it from there on start).
    #[arg(long, requires = "state")]
    pub persist: bool,
    /// Fault injection as JSON, e.g. `{"errorRate":0.1,"throttleRate":0.05,"latency":"20ms"}`
    /// (also settable at run time: `PUT /_emulator/faults`).
    #[arg(long)]
    pub faults: Option<String>,
    /// Enforce ARM's token buckets (reads 250 at 25/s, writes 200 at 10/s per subscription).
    #[arg(long)]
    pub arm_throttling: bool,
    /// IoT Hub host name suffix (azure-devices.net; azure-devices.cn for China, azure-devices.us
    /// for US Government).
    #[arg(long, default_value = "azure-devices.net")]
    pub hub_host_suffix: String,
}

/// Build the emulator configuration from the flags.
pub fn config(args: &EmulatorArgs) -> anyhow::Result<EmulatorConfig> {
    let seed = match &args.state {
        Some(p) if !args.persist || p.exists() => {
            Seed::from_path(p).map_err(|e| anyhow::anyhow!("--state {}: {e}", p.display()))?
        }
        _ => Seed::from_str_auto(DEMO_SEED).map_err(|e| anyhow::anyhow!("built-in demo seed: {e}"))?,
    };
    let faults: Faults = match &args.faults {
        Some(json) => serde_json::from_str(json).context("--faults: not valid fault JSON")?,
        None => Faults::default(),
    };
    Ok(EmulatorConfig {
        seed,
        faults,
        throttle: args.arm_throttling.then(ThrottleConfig::arm_default),
        persist_to: if args.persist { args.state.clone() } else { None },
        hub_host_suffix: args.hub_host_suffix.clone(),
        ..EmulatorConfig::default()
    })
}

/// Run until Ctrl+C / SIGTERM.
pub async fn run(args: EmulatorArgs) -> anyhow::Result<()> {
    let config = config(&args)?;
    let tenant = config.seed.tenant_id.clone();
    let client = config.seed.clients.first().map(|c| c.client_id.clone());
    let handle = iothub_access_emulator::start(args.listen, config).await.context("starting the emulator")?;
    let url = handle.base_url();
    // The banner is a courtesy: whoever reads standard output may close it (a closed pipe is
    // not an error; the emulator keeps serving).
    let mut banner =
        format!("Azure emulator listening on {url}\nPoint the operator at it:\n  export AZURE_TENANT_ID={tenant}\n");
    if let Some(c) = client {
        banner.push_str(&format!(
            "  export AZURE_CLIENT_ID={c} AZURE_CLIENT_SECRET=<the client's secret in the state file>\n"
        ));
    }
    banner.push_str(&format!(
        "  iothub-access-operator plan -f examples/ --arm-endpoint {url} --authority-host {url}\nState: GET {url}/_emulator/state   faults: PUT {url}/_emulator/faults   stats: GET {url}/_emulator/stats\n"
    ));
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    tokio::signal::ctrl_c().await.ok();
    handle.shutdown().await;
    Ok(())
}

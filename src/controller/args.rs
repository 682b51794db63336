//! The flags of `run`, parsed by the operator's own code, and the named parts of the controller
//! they describe (the gate, the settings). No I/O.

use std::net::SocketAddr;
use std::time::Duration;

use crate::azure::args::AzureArgs;
use crate::gate::GateArgs;
use crate::telemetry::LogFormat;

/// Parse an interval flag: `600s`, `10m`, `1h`, `1500ms`, `1h30m` (jiff's friendly duration
/// format, a unit required: a bare number reads as seconds to one person and milliseconds to
/// another), more than zero.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("'{t}': add a unit, e.g. {t}s, {t}ms or 10m"));
    }
    let d: jiff::SignedDuration = t.parse().map_err(|e| {
        format!("'{t}' is not a duration such as 600s, 10m or 1h (an unknown duration unit or syntax: {e})")
    })?;
    if d.is_negative() || d.is_zero() {
        return Err(format!("'{t}': must be more than zero"));
    }
    Duration::try_from(d).map_err(|e| format!("'{t}': {e}"))
}

/// Flags of `run`.
#[derive(clap::Args, Clone, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub azure: AzureArgs,
    #[command(flatten)]
    pub guard: GateArgs,
    /// This operator instance, part of every Azure name it derives: two operators managing one
    /// subscription must have different ids, or they claim each other's objects. Default: the
    /// UID of this cluster's `kube-system` namespace (stable for the cluster's life).
    #[arg(long, env = "IOTHUB_ACCESS_INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// How often everything is re-observed and drift repaired.
    #[arg(long, default_value = "10m", value_parser = parse_interval)]
    pub resync_interval: Duration,
    /// How soon a refused or unverifiable shared access Deny (a DPS or Device Update instance
    /// still linked, a failed check, nobody holding a data role) is checked again in Azure.
    #[arg(long, default_value = "30s", value_parser = parse_interval)]
    pub interlock_recheck: Duration,
    /// Only one replica writes: take a Lease first.
    #[arg(long)]
    pub leader_elect: bool,
    #[arg(long, default_value = "iothub-access-operator")]
    pub leader_election_id: String,
    /// Namespace of the Lease (default: the pod's namespace from POD_NAMESPACE, else default).
    #[arg(long, env = "POD_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// `/healthz`, `/readyz` and `/metrics`.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_listen: SocketAddr,
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Watch one namespace only (default: all).
    #[arg(long)]
    pub watch_namespace: Option<String>,
    /// Reconciles in flight per kind: the three kinds share three times this many turns, handed
    /// out fairly between namespaces (one namespace's many resources never hold back another
    /// namespace's first).
    #[arg(long, default_value_t = 8)]
    pub reconcile_concurrency: u16,
}

impl RunArgs {
    /// The Lease's namespace.
    pub fn lease_namespace(&self) -> String {
        self.leader_election_namespace.clone().unwrap_or_else(|| "default".into())
    }

    /// The controller's tunables, for the operator instance `instance_id`.
    pub fn settings(&self, instance_id: String) -> super::Settings {
        super::Settings {
            resync_interval: self.resync_interval,
            instance_id,
            watch_namespace: self.watch_namespace.clone(),
            interlock_recheck: self.interlock_recheck,
            reconcile_concurrency: usize::from(self.reconcile_concurrency.max(1)) * 3,
            ..super::Settings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resync_intervals_read_like_kubectl_durations() {
        assert!(parse_interval("600").unwrap_err().contains("add a unit"));
        assert_eq!(parse_interval("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_interval("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_interval("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_interval("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_interval("0s").unwrap_err().contains("more than zero"));
        assert!(parse_interval("-5s").unwrap_err().contains("more than zero"));
        assert!(parse_interval("10d").unwrap_err().contains("unknown duration unit"));
        assert!(parse_interval("soon").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn an_allowed_scope_that_is_not_canonical_is_refused_at_start_naming_the_flag() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            run: RunArgs,
        }
        let bad = Cli::try_parse_from(["x", "--allowed-scope", "/subscriptions/a/resourceGroups/b/../.."]);
        let e = bad.err().expect("refused").to_string();
        assert!(e.contains("--allowed-scope") && e.contains("dot segment"), "{e}");
        // An empty value (an empty variable, a trailing comma, `allowedScopes: [""]`) never
        // widens to every scope: it is refused at start.
        for empty in [vec!["x", "--allowed-scope", ""], vec!["x", "--allowed-scope", "/subscriptions/a,"]] {
            let e = Cli::try_parse_from(empty).err().expect("refused").to_string();
            assert!(e.contains("--allowed-scope") && e.contains("empty value"), "{e}");
        }
        let ok = Cli::try_parse_from(["x", "--allowed-scope", "/subscriptions/a,/"]).expect("parses");
        assert_eq!(ok.run.guard.allowed_scopes.len(), 2);
    }
}

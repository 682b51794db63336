//! The `iothub-access-operator` command: parses arguments and dispatches to the front ends in
//! `iothub_access_operator::cli`. Nothing else lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use iothub_access_operator::azure::args::AzureArgs;
use iothub_access_operator::cli;
use iothub_access_operator::cli::reconcile::OutputFormat;

#[derive(Parser)]
#[command(name = "iothub-access-operator", version, about = "Keeps Azure IoT Hub access the way Git says it should be")]
struct Cli {
    /// Without a command, runs `demo`.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print all CustomResourceDefinitions as one multi-document YAML stream.
    Crds {
        /// Write one file per kind into this folder instead (what `crds/` holds).
        #[arg(long)]
        output_dir: Option<PathBuf>,
    },
    /// Check manifests offline with the admission rules (no Azure, no cluster).
    Validate {
        /// Files or folders of manifests (`-` for standard input).
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
    },
    /// Show what would change in Azure for these manifests (read-only). Exit 0: Azure matches;
    /// 2: changes pending or refused; 1: error.
    Plan {
        /// Files or folders of manifests (`-` for standard input).
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
        #[command(flatten)]
        azure: AzureArgs,
        #[command(flatten)]
        policy: cli::reconcile::Policy,
    },
    /// Make Azure match these manifests, then re-observe. Idempotent. Exit 0: Azure matches;
    /// 2: changes refused (e.g. Deny while a DPS is linked); 1: error.
    Apply {
        /// Files or folders of manifests (`-` for standard input).
        #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
        paths: Vec<PathBuf>,
        #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Table)]
        output: OutputFormat,
        #[command(flatten)]
        azure: AzureArgs,
        #[command(flatten)]
        policy: cli::reconcile::Policy,
    },
    /// Serve the local Azure emulator (ARM roles, IoT Hub, DPS, token endpoints) on loopback.
    Emulator(iothub_access_operator::cli::emulator::EmulatorArgs),
    /// Show the whole pipeline on the bundled emulator: plan, apply, drift repair, the DPS refusal.
    Demo {
        /// Where the embedded emulator listens (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
    /// Run the operator: watch the custom resources in Kubernetes and keep Azure matching them.
    Run(Box<iothub_access_operator::controller::run::RunArgs>),
    /// Print what the operator's own Azure identity needs (least privilege, limited by a
    /// delegation condition), as az commands, Bicep, Terraform or JSON. Offline.
    Setup(cli::setup::SetupArgs),
    /// Who can reach these hubs: every principal that can read their keys, use their data plane
    /// or grant roles on them, and through which role, scope and kind of assignment. Read-only.
    Audit(Box<cli::audit::AuditArgs>),
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn main() -> ExitCode {
    // A usage error exits 1 ("error"), never 2, which `plan` and `apply` use for "changes".
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(1);
        }
        Err(e) => e.exit(),
    };
    let command = cli.command.unwrap_or(Command::Demo { listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)) });
    let result = match command {
        Command::Crds { output_dir } => cli::crds::run(output_dir.as_deref(), &mut std::io::stdout()),
        Command::Validate { paths } => cli::validate::run(&paths, &mut std::io::stdout()).map_err(anyhow::Error::from),
        Command::Emulator(args) => runtime().and_then(|rt| rt.block_on(cli::emulator::run(args))).map(|()| 0),
        Command::Demo { listen } => {
            runtime().and_then(|rt| rt.block_on(cli::demo::run(listen, &mut std::io::stdout())))
        }
        Command::Run(args) => {
            runtime().and_then(|rt| rt.block_on(iothub_access_operator::controller::run::run(*args))).map(|()| 0)
        }
        Command::Setup(args) => cli::setup::run(&args, &mut std::io::stdout(), &mut std::io::stderr()),
        Command::Audit(args) => runtime().and_then(|rt| rt.block_on(cli::audit::run(&args, &mut std::io::stdout()))),
        Command::Plan { paths, output, azure, policy } => runtime().and_then(|rt| {
            rt.block_on(async {
                let manifests = iothub_access_operator::manifest::load(&paths);
                let client = azure.client()?;
                let oid = client.caller_object_id().await.ok();
                let mut out = std::io::stdout();
                Ok(cli::reconcile::run_plan(client, &manifests, &policy, oid.as_deref(), output, &mut out).await?)
            })
        }),
        Command::Apply { paths, output, azure, policy } => runtime().and_then(|rt| {
            rt.block_on(async {
                let manifests = iothub_access_operator::manifest::load(&paths);
                let client = azure.client()?;
                let concurrency = azure.concurrency;
                let mut out = std::io::stdout();
                Ok(cli::reconcile::run_apply(client, &manifests, concurrency, &policy, output, &mut out).await?)
            })
        }),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

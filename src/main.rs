//! The `iothub-access-operator` command: parses arguments and dispatches to the front ends in
//! `iothub_access_operator::cli`. Nothing else lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use iothub_access_operator::cli;

#[derive(Parser)]
#[command(name = "iothub-access-operator", version, about = "Keeps Azure IoT Hub access the way Git says it should be")]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Crds { output_dir } => cli::crds::run(output_dir.as_deref(), &mut std::io::stdout()),
        Command::Validate { paths } => cli::validate::run(&paths, &mut std::io::stdout()).map_err(anyhow::Error::from),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

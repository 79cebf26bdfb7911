//! `billing-admin`: what an operator looks at and repairs, through billing-core's ports and
//! adapters, against AWS (the usual credentials and profile) or the local emulators
//! (`set -a; . local/.run/env; set +a`, or `make admin ARGS="..."`).
//!
//! Exit codes: 0 done, 1 a service failed (the message says which), 2 bad arguments.

use std::process::ExitCode;

use billing_core::adapters::aws::{AwsLimits, load_sdk_config};
use billing_core::adapters::dynamo::DynamoStore;
use billing_core::error::Chain;
use billing_core::ports::{EventLog, SyncStore};
use clap::{Parser, Subcommand};

mod output;

#[derive(Debug, Parser)]
#[command(name = "billing-admin", version, about)]
struct Cli {
    /// The deployment's DynamoDB table.
    #[arg(long, env = "TABLE_NAME")]
    table: String,
    /// JSON lines for scripts instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verified Stripe events of a type we use that could not be read (kept 35 days).
    Unreadable {
        #[command(subcommand)]
        action: ListOnly,
    },
    /// Events about customers nobody is linked to (kept 35 days).
    Unmapped {
        #[command(subcommand)]
        action: ListOnly,
    },
}

#[derive(Debug, Subcommand)]
enum ListOnly {
    /// List them, oldest first.
    List,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let sdk = load_sdk_config(AwsLimits::HTTP).await;
    let store = DynamoStore::from_sdk(&sdk, &cli.table);
    let printed = match cli.command {
        Command::Unreadable {
            action: ListOnly::List,
        } => store
            .unreadable_events()
            .await
            .map(|events| output::unreadable(&events, cli.json)),
        Command::Unmapped {
            action: ListOnly::List,
        } => store
            .unmapped_events()
            .await
            .map(|events| output::unmapped(&events, cli.json)),
    };
    match printed {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(failure) => {
            eprintln!("billing-admin: {}", Chain(&failure));
            ExitCode::FAILURE
        }
    }
}

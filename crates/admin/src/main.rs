//! `billing-admin`: what an operator looks at and repairs, through billing-core's ports and
//! adapters, against AWS (the usual credentials and profile) or the local emulators
//! (`set -a; . local/.run/env; set +a`, or `make admin ARGS="..."`).
//!
//! Exit codes: 0 done, 1 a service failed (the message says which), 2 bad arguments.

use std::process::ExitCode;

use std::time::Duration;

use billing_core::adapters::aws::{AwsLimits, load_sdk_config};
use billing_core::adapters::dynamo::DynamoStore;
use billing_core::config::EnvReader;
use billing_core::error::Chain;
use billing_core::ports::{EventLog, SyncStore};
use billing_core::reconciler::{Reconciler, RunLimits, RunOptions};
use clap::{Parser, Subcommand};
use webhook::{Aws, Deps};

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
    /// One reconciler run now: Stripe's events the webhook missed, reviews that are due
    /// (grace ends, trials and cancellations past their period), stacks being deleted. Reads
    /// the functions' configuration from the environment (STRIPE_SECRET_KEY, PLANS, ...).
    Reconcile {
        /// List Stripe's events from this time (unix seconds) instead of the stored cursor;
        /// the cursor still only moves forward.
        #[arg(long)]
        since: Option<i64>,
        /// Judge the reviews as of this time (unix seconds) instead of now: what the schedule
        /// will do by then (graces that end act at once). For rehearsals and tests.
        #[arg(long)]
        reviews_as_of: Option<i64>,
        /// How long the run may start new work.
        #[arg(long, default_value_t = 300)]
        budget_seconds: u64,
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
        Command::Reconcile {
            since,
            reviews_as_of,
            budget_seconds,
        } => {
            let deps = match production_deps(&sdk).await {
                Ok(deps) => deps,
                Err(failure) => return failure,
            };
            let reconciler = Reconciler {
                sync: deps.sync(),
                livemode: deps.livemode,
            };
            let limits = RunLimits::for_duration(Duration::from_secs(budget_seconds));
            let options = RunOptions {
                since,
                reviews_as_of,
            };
            reconciler
                .run(billing_core::http::now(), options, limits)
                .await
                .map(|report| output::reconcile(&report, cli.json))
        }
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

/// The webhook's ports, configured from the environment like the functions.
async fn production_deps(sdk: &aws_config::SdkConfig) -> Result<Deps<Aws>, ExitCode> {
    let config = webhook::config::Config::from_env(&EnvReader::process(), false).map_err(|e| {
        eprintln!("billing-admin: {e}");
        ExitCode::from(2)
    })?;
    Deps::<Aws>::from_config(config, sdk).await.map_err(|e| {
        eprintln!("billing-admin: {}", Chain(&e));
        ExitCode::FAILURE
    })
}

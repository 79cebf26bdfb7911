//! `billing-admin`: what an operator looks at and repairs, through billing-core's ports and
//! adapters, against AWS (the usual credentials and profile) or the local emulators
//! (`set -a; . local/.run/env; set +a`, or `make admin ARGS="..."`).
//!
//! Exit codes: 0 done, 1 a service failed (or some customers could not be synced; the message
//! or report says which), 2 bad arguments or nothing found to act on, 3 drift found and not
//! repaired (`audit` without `--fix`, or with `--dry-run`).

use std::process::ExitCode;
use std::time::Duration;

use billing_core::adapters::aws::{AwsLimits, load_sdk_config};
use billing_core::adapters::dynamo::DynamoStore;
use billing_core::config::EnvReader;
use billing_core::domain::CustomerId;
use billing_core::error::Chain;
use billing_core::import::Importer;
use billing_core::ports::ApiKeys;
use billing_core::ports::{CustomerLinks, EventLog, OperatorStore, SyncStore, UserQuery};
use billing_core::reconciler::{Reconciler, RunLimits, RunOptions};
use billing_core::usage::{ReportLimits, UtcDay};
use billing_core::webhook::sync::{HandLink, Writes};
use clap::{Parser, Subcommand};
use webhook::{Aws, Deps};

mod output;
mod progress;

/// Exit code: drift found and left as it is.
const DRIFT_LEFT: u8 = 3;

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
    /// Backfill from the Stripe account: catalogue, customers and their subscriptions in every
    /// status; links each customer to its Cognito user (metadata cognito_sub, then a verified
    /// e-mail) and provisions plan, key and stacks. Writes only what differs: a second run
    /// changes nothing. Also the full resync after events were lost.
    Import {
        /// Read and compare only: report what an import would write.
        #[arg(long)]
        dry_run: bool,
    },
    /// One reconciler run now: Stripe's events the webhook missed, reviews that are due
    /// (grace ends, trials and cancellations past their period), stacks being deleted. Reads
    /// the functions' configuration from the environment (STRIPE_SECRET_KEY, PLANS, ...).
    Reconcile {
        /// List Stripe's events from this time (unix seconds) instead of the stored cursor;
        /// the cursor still only moves forward.
        #[arg(long)]
        since: Option<i64>,
        /// Judge the reviews and rotated-out keys as of this time (unix seconds) instead of
        /// now: what the schedule will do by then (graces that end act at once). For
        /// rehearsals and tests.
        #[arg(long)]
        reviews_as_of: Option<i64>,
        /// How long the run may start new work.
        #[arg(long, default_value_t = 300)]
        budget_seconds: u64,
        /// List the events and due reviews a run would look at, without applying any.
        #[arg(long)]
        dry_run: bool,
    },
    /// Drift between what the stored subscriptions entitle each linked user to and what
    /// Cognito (plan attribute), API Gateway (key, usage plan, enabled) and CloudFormation
    /// (stacks) hold.
    Audit {
        /// Repair the drift through the webhook's provisioning path.
        #[arg(long)]
        fix: bool,
        /// With --fix: say what would be repaired, repair nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only this user (sub, e-mail, username or customer id) instead of every link.
        #[arg(long)]
        user: Option<String>,
    },
    /// Events about customers nobody is linked to (kept 35 days).
    Unmapped {
        #[command(subcommand)]
        action: UnmappedAction,
    },
    /// Verified Stripe events of a type we use that could not be read (kept 35 days).
    Unreadable {
        #[command(subcommand)]
        action: ListOnly,
    },
    /// One user: links, plan, subscriptions, key, stacks, last events, drift.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Metered usage: API Gateway's counts and what Stripe's meters have (METERED_PLANS).
    Usage {
        #[command(subcommand)]
        action: UsageAction,
    },
}

#[derive(Debug, Subcommand)]
enum UsageAction {
    /// A user's calls per day on the metered usage plans, counted and reported.
    Show {
        /// Sub, e-mail, username or customer id.
        user: String,
        /// How many days back (Stripe takes usage up to 35 days old).
        #[arg(long, default_value_t = 35)]
        days: i64,
    },
    /// One usage report now: what Stripe does not have yet is sent.
    Report {
        /// Only this UTC day (YYYY-MM-DD) instead of today and the three days before.
        #[arg(long)]
        day: Option<String>,
        /// Say what would be sent, send nothing.
        #[arg(long)]
        dry_run: bool,
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

#[derive(Debug, Subcommand)]
enum UnmappedAction {
    /// List them, oldest first.
    List,
    /// Link a customer to a user by hand, sync the customer from Stripe (which applies what
    /// its parked events were about) and forget its parked events.
    Link {
        /// The Stripe customer, cus_...
        customer: String,
        /// The user: sub, e-mail or username.
        user: String,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UserAction {
    /// Show a user named by sub, e-mail, username or Stripe customer id.
    Show {
        user: String,
        /// Print the API key's value too.
        #[arg(long)]
        show_key: bool,
    },
}

/// How a command ended: its text and exit code.
struct Done {
    text: String,
    code: ExitCode,
}

impl Done {
    fn ok(text: String) -> Self {
        Self {
            text,
            code: ExitCode::SUCCESS,
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let sdk = load_sdk_config(AwsLimits::HTTP).await;
    let json = cli.json;
    let done = match cli.command {
        Command::Unreadable {
            action: ListOnly::List,
        } => {
            let store = DynamoStore::from_sdk(&sdk, &cli.table);
            store
                .unreadable_events()
                .await
                .map(|events| Done::ok(output::unreadable(&events, json)))
        }
        Command::Unmapped {
            action: UnmappedAction::List,
        } => {
            let store = DynamoStore::from_sdk(&sdk, &cli.table);
            store
                .unmapped_events()
                .await
                .map(|events| Done::ok(output::unmapped(&events, json)))
        }
        command => {
            let deps = match production_deps(&sdk).await {
                Ok(deps) => deps,
                Err(failure) => return failure,
            };
            run(&deps, command, json).await
        }
    };
    match done {
        Ok(done) => {
            print!("{}", done.text);
            done.code
        }
        Err(failure) => {
            eprintln!("billing-admin: {}", Chain(&failure));
            ExitCode::FAILURE
        }
    }
}

/// The commands that need the functions' configuration.
async fn run(deps: &Deps<Aws>, command: Command, json: bool) -> billing_core::Result<Done> {
    let now = billing_core::http::now();
    let sync = deps.sync();
    let writes = |dry_run: bool| {
        if dry_run {
            Writes::DryRun
        } else {
            Writes::Apply
        }
    };
    match command {
        Command::Import { dry_run } => {
            let bar = progress::Bar::new(json);
            let importer = Importer { sync };
            let report = importer
                .run(now, writes(dry_run), &|step| bar.step(step))
                .await;
            bar.finish();
            let report = report?;
            let code = if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            };
            Ok(Done {
                text: output::import(&report, json),
                code,
            })
        }
        Command::Reconcile {
            since,
            reviews_as_of,
            budget_seconds,
            dry_run,
        } => {
            let reconciler = Reconciler {
                sync,
                livemode: deps.livemode,
            };
            let options = RunOptions {
                since,
                reviews_as_of,
            };
            if dry_run {
                let plan = reconciler.rehearse(now, options).await?;
                return Ok(Done::ok(output::rehearsal(&plan, json)));
            }
            let limits = RunLimits::for_duration(Duration::from_secs(budget_seconds));
            let report = reconciler.run(now, options, limits).await?;
            Ok(Done::ok(output::reconcile(&report, json)))
        }
        Command::Audit { fix, dry_run, user } => {
            let repair = fix && !dry_run;
            let links = match user {
                None => deps.store.all_links().await?,
                Some(user) => {
                    let Some(query) = UserQuery::parse(&user) else {
                        return Ok(refused(format!("{user:?} names no user")));
                    };
                    let mut links = Vec::new();
                    for named in sync.users_named(&query).await? {
                        links.extend(deps.store.customer_of_user(&named.sub).await?);
                    }
                    if links.is_empty() {
                        return Ok(refused(format!("{user:?} names no linked user")));
                    }
                    links
                }
            };
            let bar = progress::Bar::new(json);
            bar.step(billing_core::import::ImportStep::Phase {
                name: "user",
                total: Some(links.len()),
            });
            let mut rows = Vec::new();
            for link in &links {
                let audited = sync.audit(link, now, writes(!repair)).await;
                bar.step(billing_core::import::ImportStep::Item);
                rows.push((link.clone(), audited?));
            }
            bar.finish();
            let left = rows
                .iter()
                .any(|(_, (drift, repaired))| !drift.is_empty() && !repaired);
            Ok(Done {
                text: output::audit(&rows, links.len(), json),
                code: if left {
                    ExitCode::from(DRIFT_LEFT)
                } else {
                    ExitCode::SUCCESS
                },
            })
        }
        Command::Unmapped {
            action:
                UnmappedAction::Link {
                    customer,
                    user,
                    dry_run,
                },
        } => {
            let Ok(customer_id) = CustomerId::parse(customer.as_str()) else {
                return Ok(refused(format!(
                    "{customer:?} is not a customer id (cus_...)"
                )));
            };
            let Some(query) = UserQuery::parse(&user) else {
                return Ok(refused(format!("{user:?} names no user")));
            };
            let named = sync.users_named(&query).await?;
            let [user] = named.as_slice() else {
                return Ok(refused(format!(
                    "{user:?} names {} users; name one by sub or username",
                    named.len()
                )));
            };
            let reference = billing_core::ports::CognitoUserRef {
                username: user.username.clone(),
                sub: user.sub.clone(),
            };
            let linked = sync
                .link_by_hand(&customer_id, reference, now, writes(dry_run))
                .await?;
            let code = match linked {
                HandLink::Linked { .. } => ExitCode::SUCCESS,
                _ => ExitCode::from(2),
            };
            Ok(Done {
                text: output::hand_link(&linked, json),
                code,
            })
        }
        Command::User {
            action: UserAction::Show { user, show_key },
        } => {
            let Some(query) = UserQuery::parse(&user) else {
                return Ok(refused(format!("{user:?} names no user")));
            };
            let overviews = sync.user_overviews(&query, now, show_key).await?;
            if overviews.is_empty() {
                return Ok(refused(format!("no user found for {user:?}")));
            }
            Ok(Done::ok(output::users(&overviews, json)))
        }
        Command::Usage { action } => usage(deps, action, now, json).await,
        Command::Unreadable { .. }
        | Command::Unmapped {
            action: UnmappedAction::List,
        } => Ok(refused("handled before".to_owned())),
    }
}

async fn usage(
    deps: &Deps<Aws>,
    action: UsageAction,
    now: i64,
    json: bool,
) -> billing_core::Result<Done> {
    let reporter = deps.usage_reporter();
    if deps.usage.metered_usage_plans.is_empty() {
        return Ok(refused(
            "no metered plans: set METERED_PLANS as the usage reporter has it".to_owned(),
        ));
    }
    let today = UtcDay::of(now);
    match action {
        UsageAction::Show { user, days } => {
            let Some(query) = UserQuery::parse(&user) else {
                return Ok(refused(format!("{user:?} names no user")));
            };
            let named = deps.sync().users_named(&query).await?;
            let [user] = named.as_slice() else {
                return Ok(refused(format!("{user:?} names {} users", named.len())));
            };
            let Some(key) = deps.keys.find(&user.sub).await? else {
                return Ok(refused(format!("{} has no API key", user.username)));
            };
            let from = today.plus(-days.clamp(0, 90));
            let rows = reporter.key_usage(&key.id, from, today).await?;
            Ok(Done::ok(output::key_usage(&key.id, &rows, json)))
        }
        UsageAction::Report {
            day,
            dry_run,
            budget_seconds,
        } => {
            let days = match day {
                None => (today.plus(-deps.usage.lookback_days), today),
                Some(raw) => match UtcDay::parse(&raw) {
                    Some(day) if day <= today && day.days_until(today) <= 35 => (day, day),
                    _ => {
                        return Ok(refused(format!(
                            "{raw:?}: a UTC day (YYYY-MM-DD) of the last 35 days"
                        )));
                    }
                },
            };
            let writes = if dry_run {
                Writes::DryRun
            } else {
                Writes::Apply
            };
            let limits = ReportLimits::for_duration(Duration::from_secs(budget_seconds));
            let report = reporter.run_days(now, days, limits, writes).await?;
            Ok(Done::ok(output::usage_report(&report, json)))
        }
    }
}

fn refused(message: String) -> Done {
    Done {
        text: format!("billing-admin: {message}\n"),
        code: ExitCode::from(2),
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

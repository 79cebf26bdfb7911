//! Reads the trigger event, runs onboarding within Cognito's time limit, and always returns the
//! event unchanged: a failure is logged, never allowed to block the sign-up (checkout creates a
//! missing customer later).

use std::time::{Duration, SystemTime};

use aws_lambda_events::cognito::{
    CognitoEventUserPoolsPostConfirmation, CognitoEventUserPoolsPostConfirmationTriggerSource,
};
use billing_core::adapters::cognito::CUSTOMER_ID_ATTRIBUTE;
use billing_core::domain::{CognitoUser, Email, UserPoolId, UserSub, Username};
use billing_core::error::Chain;
use billing_core::onboarding::CustomerSource;
use billing_core::ports::{Billing, CustomerLinks, Directory};
use billing_core::telemetry::{self, Unit};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;
use tracing::{error, info, warn};

use crate::Deps;

/// Kept back from Lambda's deadline for returning the response.
const DEADLINE_MARGIN: Duration = Duration::from_millis(300);

/// What the trigger is asked to do.
#[derive(Debug, PartialEq, Eq)]
enum Trigger {
    ConfirmSignUp {
        user: CognitoUser,
        known_customer_id: Option<String>,
    },
    /// Another source (forgot-password confirmation): nothing to do.
    Ignored,
    Unreadable(String),
}

fn read_trigger(event: &Value) -> Trigger {
    let parsed: CognitoEventUserPoolsPostConfirmation = match serde_json::from_value(event.clone())
    {
        Ok(parsed) => parsed,
        Err(e) => return Trigger::Unreadable(format!("not a post-confirmation event: {e}")),
    };
    let header = parsed.cognito_event_user_pools_header;
    match header.trigger_source {
        Some(CognitoEventUserPoolsPostConfirmationTriggerSource::ConfirmSignUp) => {}
        Some(_) => return Trigger::Ignored,
        None => return Trigger::Unreadable("no triggerSource".into()),
    }
    let attributes = parsed.request.user_attributes;
    let user = (|| {
        Ok::<_, billing_core::domain::ParseError>(CognitoUser {
            pool_id: UserPoolId::parse(header.user_pool_id.unwrap_or_default())?,
            username: Username::parse(header.user_name.unwrap_or_default())?,
            sub: UserSub::parse(attributes.get("sub").cloned().unwrap_or_default())?,
            // A malformed email is dropped rather than blocking the customer.
            email: attributes
                .get("email")
                .and_then(|email| Email::parse(email.as_str()).ok()),
            email_verified: attributes.get("email_verified").map(String::as_str) == Some("true"),
        })
    })();
    match user {
        Ok(user) => Trigger::ConfirmSignUp {
            user,
            known_customer_id: attributes.get(CUSTOMER_ID_ATTRIBUTE).cloned(),
        },
        Err(e) => Trigger::Unreadable(e.to_string()),
    }
}

/// Time left for the work: the configured budget, cut short by Lambda's deadline. A deadline
/// that is unset or already past is not a real one (`cargo lambda watch` sends a fixed value
/// from 1970), so the budget alone applies.
fn time_budget(budget: Duration, deadline: SystemTime) -> Duration {
    match deadline.duration_since(SystemTime::now()) {
        Ok(remaining) if !remaining.is_zero() => {
            budget.min(remaining.saturating_sub(DEADLINE_MARGIN))
        }
        _ => budget,
    }
}

pub async fn handle<L, B, D>(
    deps: &Deps<L, B, D>,
    event: LambdaEvent<Value>,
) -> Result<Value, Error>
where
    L: CustomerLinks,
    B: Billing,
    D: Directory,
{
    let (payload, context) = event.into_parts();
    let (user, known_customer_id) = match read_trigger(&payload) {
        Trigger::ConfirmSignUp {
            user,
            known_customer_id,
        } => (user, known_customer_id),
        Trigger::Ignored => return Ok(payload),
        Trigger::Unreadable(reason) => {
            warn!(%reason, "post-confirmation event not understood; nothing done");
            return Ok(payload);
        }
    };

    let onboarding = deps.onboarding();
    let budget = time_budget(deps.budget, context.deadline());
    let work = onboarding.ensure_customer(&user, known_customer_id.as_deref());
    let started = std::time::Instant::now();
    let outcome = match tokio::time::timeout(budget, work).await {
        Ok(Ok(onboarded)) => {
            info!(
                sub = %user.sub,
                customer_id = %onboarded.customer_id,
                source = onboarded.source.as_str(),
                directory_updated = onboarded.directory_updated,
                "stripe customer ensured"
            );
            match onboarded.source {
                CustomerSource::AlreadyLinked => "already_linked",
                CustomerSource::FoundInStripe | CustomerSource::Created => "linked",
            }
        }
        Ok(Err(e)) => {
            error!(
                sub = %user.sub,
                error_kind = e.kind(),
                retryable = e.is_retryable(),
                error = %Chain(&e),
                "could not ensure the stripe customer; sign-up goes on, checkout will create it"
            );
            "failed"
        }
        Err(_) => {
            error!(
                sub = %user.sub,
                error_kind = "timeout",
                budget_ms = budget.as_millis() as u64,
                "stripe customer not ensured in time; sign-up goes on, checkout will create it"
            );
            "failed"
        }
    };
    // Against Cognito's 5 seconds for the whole trigger.
    telemetry::record(
        Some(("Outcome", outcome)),
        &[
            ("TriggerOutcome", Unit::Count, 1.0),
            (
                "TriggerLatency",
                Unit::Milliseconds,
                started.elapsed().as_secs_f64() * 1000.0,
            ),
        ],
    );
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_should_shrink_to_the_lambda_deadline() {
        let soon = SystemTime::now() + Duration::from_millis(1_000);
        assert!(time_budget(Duration::from_secs(4), soon) <= Duration::from_millis(700));
        let later = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(
            time_budget(Duration::from_secs(4), later),
            Duration::from_secs(4)
        );
    }

    #[test]
    fn when_deadline_is_unset_or_past_should_use_the_budget() {
        let budget = Duration::from_secs(4);
        assert_eq!(time_budget(budget, SystemTime::UNIX_EPOCH), budget);
        let local_emulator = SystemTime::UNIX_EPOCH + Duration::from_millis(600_000);
        assert_eq!(time_budget(budget, local_emulator), budget);
    }
}

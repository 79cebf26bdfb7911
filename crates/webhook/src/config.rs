use std::time::Duration;

use billing_core::adapters::apigateway::Deployment;
use billing_core::adapters::cloudformation::StackServiceRole;
use billing_core::config::{ConfigError, EnvReader, SecretSource, StripeConfig, flag};
use billing_core::domain::UserPoolId;
use billing_core::plans::{AccessPolicy, PlanCatalog, PlanName};
use billing_core::stack_templates::StackTemplatePolicy;
use billing_core::usage::UsageSettings;
use billing_core::webhook::sync::SyncSettings;
use secrecy::SecretString;

const STRIPE_TIMEOUT: Duration = Duration::from_secs(8);

#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME`
    pub table_name: String,
    pub stripe: StripeConfig,
    /// `STRIPE_WEBHOOK_SECRETS` (comma-separated, for rotation) or
    /// `STRIPE_WEBHOOK_SECRETS_PARAMETER` (an SSM SecureString holding them). Only the HTTPS
    /// webhook needs them: EventBridge events are not signed.
    pub webhook_secrets: Option<SecretSource>,
    /// `LIVEMODE`: events of the other mode are refused.
    pub livemode: bool,
    pub sync: SyncSettings,
    /// `DEPLOYMENT_NAME`: the tag of the API keys this deployment creates and manages.
    pub deployment: Deployment,
    /// `STACK_ROLE_ARN`: the CloudFormation service role of the subscriptions' stacks.
    pub stack_role: Option<StackServiceRole>,
    /// `RECONCILER_BUDGET_SECONDS` (default 60): how long one scheduled reconciler run may
    /// start new work; keep it under the function's timeout.
    pub reconciler_budget: Duration,
    /// `METERED_PLANS` (comma-separated plan names, each with a usage plan in `PLANS`): the
    /// plans billed by usage, whose keys' calls the usage reporter sends to Stripe. Empty: the
    /// reporter reads nothing.
    pub usage: UsageSettings,
}

impl Config {
    pub fn from_env(env: &EnvReader<'_>, needs_webhook_secrets: bool) -> Result<Self, ConfigError> {
        let webhook_secrets = match (
            env.optional("STRIPE_WEBHOOK_SECRETS"),
            env.optional("STRIPE_WEBHOOK_SECRETS_PARAMETER"),
        ) {
            (Some(plain), None) => Some(SecretSource::Plain(SecretString::from(plain))),
            (None, Some(name)) => Some(SecretSource::SsmParameter(name)),
            (None, None) if !needs_webhook_secrets => None,
            (None, None) => {
                return Err(ConfigError::Missing(
                    "STRIPE_WEBHOOK_SECRETS or STRIPE_WEBHOOK_SECRETS_PARAMETER",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    name: "STRIPE_WEBHOOK_SECRETS",
                    reason: "set only one of STRIPE_WEBHOOK_SECRETS and STRIPE_WEBHOOK_SECRETS_PARAMETER".into(),
                });
            }
        };
        let policy = match env.optional("PAST_DUE_POLICY") {
            Some(raw) => AccessPolicy::parse(&raw)?,
            None => AccessPolicy::default(),
        };
        let user_pool_id =
            UserPoolId::parse(env.required("USER_POOL_ID")?).map_err(|e| ConfigError::Invalid {
                name: "USER_POOL_ID",
                reason: e.to_string(),
            })?;
        let plans = PlanCatalog::parse(&env.required("PLANS")?)?;
        let usage = usage_settings(env, &plans)?;
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            stripe: StripeConfig::from_env(env, STRIPE_TIMEOUT)?,
            webhook_secrets,
            livemode: flag(env, "LIVEMODE", false)?,
            sync: SyncSettings {
                plans,
                policy,
                user_pool_id,
                create_users: flag(env, "CREATE_USERS_FROM_PAYMENTS", false)?,
                // STACK_TEMPLATE_BUCKET and STACK_TEMPLATE_PREFIX (no bucket: no stacks).
                stack_templates: StackTemplatePolicy::from_env(env)?,
            },
            deployment: Deployment::from_env(env)?,
            stack_role: StackServiceRole::from_env(env)?,
            reconciler_budget: Duration::from_secs(reconciler_budget_secs(env)?),
            usage,
        })
    }
}

/// Days before today the usage reporter reads again: API Gateway's counts can arrive late.
const USAGE_LOOKBACK_DAYS: i64 = 3;

/// Stripe finalizes an invoice an hour after its period ends unless the account sets another
/// finalization grace period (at most 72 hours).
const STRIPE_DEFAULT_INVOICE_GRACE_SECS: i64 = 3600;
const MAX_INVOICE_GRACE_SECS: i64 = 72 * 3600;

fn usage_settings(env: &EnvReader<'_>, plans: &PlanCatalog) -> Result<UsageSettings, ConfigError> {
    let mut metered_usage_plans = Vec::new();
    for name in env
        .optional("METERED_PLANS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        let usage_plan = PlanName::parse(name)
            .and_then(|plan| plans.get(&plan))
            .and_then(|plan| plan.usage_plan_id.clone())
            .ok_or_else(|| ConfigError::Invalid {
                name: "METERED_PLANS",
                reason: format!("{name:?} is not a plan of PLANS with a usage plan"),
            })?;
        metered_usage_plans.push(usage_plan);
    }
    let invoice_grace_secs = match env.optional("USAGE_INVOICE_GRACE_SECONDS") {
        None => STRIPE_DEFAULT_INVOICE_GRACE_SECS,
        Some(raw) => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|secs| (0..=MAX_INVOICE_GRACE_SECS).contains(secs))
            .ok_or_else(|| ConfigError::Invalid {
                name: "USAGE_INVOICE_GRACE_SECONDS",
                reason: format!(
                    "{raw:?} is not a number of seconds from 0 to {MAX_INVOICE_GRACE_SECS}"
                ),
            })?,
    };
    Ok(UsageSettings {
        metered_usage_plans,
        lookback_days: USAGE_LOOKBACK_DAYS,
        invoice_grace_secs,
    })
}

fn reconciler_budget_secs(env: &EnvReader<'_>) -> Result<u64, ConfigError> {
    let Some(raw) = env.optional("RECONCILER_BUDGET_SECONDS") else {
        return Ok(DEFAULT_RECONCILER_BUDGET_SECS);
    };
    raw.trim()
        .parse::<u64>()
        .ok()
        .filter(|secs| (1..=840).contains(secs))
        .ok_or_else(|| ConfigError::Invalid {
            name: "RECONCILER_BUDGET_SECONDS",
            reason: format!("expected whole seconds from 1 to 840, got {raw:?}"),
        })
}

const DEFAULT_RECONCILER_BUDGET_SECS: u64 = 60;

/// The comma-separated secrets of one value.
pub fn split_secrets(value: &SecretString) -> Vec<SecretString> {
    use secrecy::ExposeSecret;
    value
        .expose_secret()
        .split(',')
        .map(str::trim)
        .filter(|secret| !secret.is_empty())
        .map(|secret| SecretString::from(secret.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn env(extra: &'static [(&'static str, &'static str)]) -> EnvReader<'static> {
        const BASE: &[(&str, &str)] = &[
            ("TABLE_NAME", "billing"),
            ("STRIPE_SECRET_KEY", "sk_test_x"),
            ("PLANS", "free,pro=up"),
            ("USER_POOL_ID", "us-east-1_Abc"),
            ("DEPLOYMENT_NAME", "billing-test"),
        ];
        EnvReader::from_fn(move |name| {
            extra
                .iter()
                .chain(BASE)
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    #[test]
    fn when_https_webhook_has_no_secret_should_fail_naming_it() {
        let error = Config::from_env(&env(&[]), true).unwrap_err();
        assert!(error.to_string().contains("STRIPE_WEBHOOK_SECRETS"));
        assert!(Config::from_env(&env(&[]), false).is_ok());
    }

    #[test]
    fn several_secrets_should_all_be_accepted_for_rotation() {
        let config = Config::from_env(
            &env(&[("STRIPE_WEBHOOK_SECRETS", "whsec_new, whsec_old")]),
            true,
        )
        .unwrap();
        let Some(SecretSource::Plain(value)) = &config.webhook_secrets else {
            panic!("plain secrets expected");
        };
        let secrets: Vec<String> = split_secrets(value)
            .iter()
            .map(|s| s.expose_secret().to_owned())
            .collect();
        assert_eq!(secrets, ["whsec_new", "whsec_old"]);
        assert!(!format!("{config:?}").contains("whsec_new"));
        assert!(!config.livemode);
    }

    #[test]
    fn the_reconciler_budget_should_default_and_refuse_nonsense() {
        let config = Config::from_env(&env(&[]), false).unwrap();
        assert_eq!(config.reconciler_budget, Duration::from_secs(60));
        let set = Config::from_env(&env(&[("RECONCILER_BUDGET_SECONDS", "120")]), false).unwrap();
        assert_eq!(set.reconciler_budget, Duration::from_secs(120));
        const BAD: [&[(&str, &str)]; 4] = [
            &[("RECONCILER_BUDGET_SECONDS", "0")],
            &[("RECONCILER_BUDGET_SECONDS", "-1")],
            &[("RECONCILER_BUDGET_SECONDS", "ten")],
            &[("RECONCILER_BUDGET_SECONDS", "900")],
        ];
        for bad in BAD {
            let error = Config::from_env(&env(bad), false).unwrap_err();
            assert!(
                error.to_string().contains("RECONCILER_BUDGET_SECONDS"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn metered_plans_should_name_plans_with_a_usage_plan() {
        let none = Config::from_env(&env(&[]), false).unwrap();
        assert!(none.usage.metered_usage_plans.is_empty());
        let pro = Config::from_env(&env(&[("METERED_PLANS", " pro ")]), false).unwrap();
        assert_eq!(pro.usage.metered_usage_plans, ["up"]);
        assert_eq!(pro.usage.lookback_days, 3);
        for bad in ["free", "gold", "pro,gold"] {
            let refused = Config::from_env(
                &EnvReader::from_fn(move |name| match name {
                    "METERED_PLANS" => Some(bad.to_owned()),
                    other => env(&[]).optional(other),
                }),
                false,
            );
            assert!(refused.is_err(), "{bad}");
        }
    }

    #[test]
    fn the_invoice_grace_should_default_to_stripes_hour_and_refuse_what_stripe_cannot_set() {
        let default = Config::from_env(&env(&[]), false).unwrap();
        assert_eq!(default.usage.invoice_grace_secs, 3600);
        let day = Config::from_env(&env(&[("USAGE_INVOICE_GRACE_SECONDS", "86400")]), false);
        assert_eq!(day.unwrap().usage.invoice_grace_secs, 86_400);
        const BAD: &[&[(&str, &str)]] = &[
            &[("USAGE_INVOICE_GRACE_SECONDS", "-1")],
            &[("USAGE_INVOICE_GRACE_SECONDS", "an hour")],
            &[("USAGE_INVOICE_GRACE_SECONDS", "259201")],
        ];
        for bad in BAD {
            let error = Config::from_env(&env(bad), false).unwrap_err();
            assert!(
                error.to_string().contains("USAGE_INVOICE_GRACE_SECONDS"),
                "{bad:?}"
            );
        }
    }
}

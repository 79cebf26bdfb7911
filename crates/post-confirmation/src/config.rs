use std::time::Duration;

use billing_core::config::{ConfigError, EnvReader, StripeConfig};

/// Cognito waits 5 seconds for the trigger; the work must end well before that.
const DEFAULT_BUDGET: Duration = Duration::from_millis(4_000);
const DEFAULT_STRIPE_TIMEOUT: Duration = Duration::from_millis(1_500);

#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME`: the billing table.
    pub table_name: String,
    pub stripe: StripeConfig,
    /// `TRIGGER_BUDGET_MS`: time allowed for the whole onboarding before giving up.
    pub budget: Duration,
}

impl Config {
    pub fn from_env(env: &EnvReader<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            stripe: StripeConfig::from_env(env, DEFAULT_STRIPE_TIMEOUT)?,
            budget: env
                .optional_parsed::<u64>("TRIGGER_BUDGET_MS")?
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_BUDGET),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_table_name_is_missing_should_fail_naming_it() {
        let env = EnvReader::from_fn(|name| (name == "STRIPE_SECRET_KEY").then(|| "sk".into()));
        assert_eq!(
            Config::from_env(&env).unwrap_err(),
            ConfigError::Missing("TABLE_NAME")
        );
    }

    #[test]
    fn when_all_is_set_should_read_it_with_default_budget() {
        let env = EnvReader::from_fn(|name| match name {
            "TABLE_NAME" => Some("billing".into()),
            "STRIPE_SECRET_KEY" => Some("sk_test_x".into()),
            _ => None,
        });
        let config = Config::from_env(&env).unwrap();
        assert_eq!(config.table_name, "billing");
        assert_eq!(config.budget, DEFAULT_BUDGET);
    }
}

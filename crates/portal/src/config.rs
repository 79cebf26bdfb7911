use std::time::Duration;

use billing_core::config::{AccountSettings, ConfigError, EnvReader, StripeConfig};

const STRIPE_TIMEOUT: Duration = Duration::from_secs(8);

#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME`
    pub table_name: String,
    pub stripe: StripeConfig,
    pub account: AccountSettings,
}

impl Config {
    pub fn from_env(env: &EnvReader<'_>) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            stripe: StripeConfig::from_env(env, STRIPE_TIMEOUT)?,
            account: AccountSettings::from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_site_origin_is_missing_should_name_it() {
        let env = EnvReader::from_fn(|name| match name {
            "TABLE_NAME" => Some("billing".into()),
            "STRIPE_SECRET_KEY" => Some("sk_test_x".into()),
            "PLANS" => Some("free,pro=up".into()),
            _ => None,
        });
        assert_eq!(
            Config::from_env(&env).unwrap_err(),
            ConfigError::Missing("SITE_ORIGIN")
        );
    }
}

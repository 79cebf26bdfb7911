use std::time::Duration;

use billing_core::checkout::CheckoutSettings;
use billing_core::config::{AccountSettings, ConfigError, EnvReader, StripeConfig, flag};
use billing_core::inputs::ReturnPath;

const STRIPE_TIMEOUT: Duration = Duration::from_secs(8);

#[derive(Debug, Clone)]
pub struct Config {
    /// `TABLE_NAME`
    pub table_name: String,
    pub stripe: StripeConfig,
    pub account: AccountSettings,
    pub checkout: CheckoutSettings,
}

impl Config {
    pub fn from_env(env: &EnvReader<'_>) -> Result<Self, ConfigError> {
        let account = AccountSettings::from_env(env)?;
        let billing_address = env.optional("BILLING_ADDRESS_COLLECTION");
        let billing_address_required = match billing_address.as_deref() {
            None | Some("auto") => false,
            Some("required") => true,
            Some(_) => {
                return Err(ConfigError::Invalid {
                    name: "BILLING_ADDRESS_COLLECTION",
                    reason: "expected auto or required".into(),
                });
            }
        };
        let checkout = CheckoutSettings {
            site_origin: account.site_origin.clone(),
            success_path: path(env, "SUCCESS_PATH", "/billing/success")?,
            cancel_path: path(env, "CANCEL_PATH", "/billing/cancel")?,
            allow_multiple_subscriptions: flag(env, "ALLOW_MULTIPLE_SUBSCRIPTIONS", false)?,
            automatic_tax: flag(env, "AUTOMATIC_TAX", false)?,
            billing_address_required,
            extra_sellable_lookup_keys: env
                .optional("SELLABLE_LOOKUP_KEYS")
                .map(|keys| {
                    keys.split(',')
                        .map(str::trim)
                        .filter(|key| !key.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        };
        Ok(Self {
            table_name: env.required("TABLE_NAME")?,
            stripe: StripeConfig::from_env(env, STRIPE_TIMEOUT)?,
            account,
            checkout,
        })
    }
}

fn path(env: &EnvReader<'_>, name: &'static str, default: &str) -> Result<ReturnPath, ConfigError> {
    let value = env.optional(name).unwrap_or_else(|| default.to_owned());
    ReturnPath::parse(value).map_err(|_| ConfigError::Invalid {
        name,
        reason: "expected an absolute path such as /billing/success".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> EnvReader<'static> {
        EnvReader::from_fn(move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
        })
    }

    const BASE: &[(&str, &str)] = &[
        ("TABLE_NAME", "billing"),
        ("STRIPE_SECRET_KEY", "sk_test_x"),
        ("PLANS", "free,pro=up_pro"),
        ("SITE_ORIGIN", "https://app.example.com"),
        ("USER_POOL_ID", "us-east-1_Abc"),
    ];

    #[test]
    fn when_required_settings_are_there_should_use_defaults_for_the_rest() {
        let config = Config::from_env(&env(BASE)).unwrap();
        assert_eq!(
            config.checkout.success_url(),
            "https://app.example.com/billing/success"
        );
        assert!(!config.checkout.allow_multiple_subscriptions);
    }

    #[test]
    fn when_plans_are_missing_should_name_the_variable() {
        let error = Config::from_env(&env(&[("TABLE_NAME", "b")])).unwrap_err();
        assert_eq!(error, ConfigError::Missing("PLANS"));
    }

    #[test]
    fn when_cancel_path_is_not_a_path_should_refuse() {
        let mut pairs = BASE.to_vec();
        pairs.push(("CANCEL_PATH", "https://evil.com"));
        let pairs: &'static [(&str, &str)] = Box::leak(pairs.into_boxed_slice());
        assert!(Config::from_env(&env(pairs)).is_err());
    }
}

//! Typed configuration read once at cold start.
//!
//! Every function builds its own `Config` from these pieces. A missing or malformed variable is
//! an error that names the variable, so the cold start fails loudly instead of running with a
//! default nobody chose. Secrets are `SecretString`: their Debug output is redacted.

use std::time::Duration;

use secrecy::SecretString;

use crate::domain::UserPoolId;
use crate::plans::{AccessPolicy, PlanCatalog, PlanParseError};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    #[error("invalid environment variable {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A plan setting that cannot be read, named after the variable it comes from.
impl From<PlanParseError> for ConfigError {
    fn from(error: PlanParseError) -> Self {
        let name = match error {
            PlanParseError::BadPastDuePolicy(_) => "PAST_DUE_POLICY",
            PlanParseError::BadPlanName(_)
            | PlanParseError::ListedTwice(_)
            | PlanParseError::NoPlan => "PLANS",
        };
        Self::Invalid {
            name,
            reason: error.to_string(),
        }
    }
}

type Lookup<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

/// Reads variables from a lookup function: the process environment in `main`, a map in tests.
pub struct EnvReader<'a> {
    lookup: Lookup<'a>,
}

impl std::fmt::Debug for EnvReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EnvReader")
    }
}

impl<'a> EnvReader<'a> {
    pub fn process() -> EnvReader<'static> {
        EnvReader {
            lookup: Box::new(|name| std::env::var(name).ok()),
        }
    }

    pub fn from_fn(lookup: impl Fn(&str) -> Option<String> + 'a) -> Self {
        Self {
            lookup: Box::new(lookup),
        }
    }

    /// A set variable that is empty counts as unset.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    pub fn optional_parsed<T>(&self, name: &'static str) -> Result<Option<T>, ConfigError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        self.optional(name)
            .map(|raw| {
                raw.trim()
                    .parse()
                    .map_err(|error: T::Err| ConfigError::Invalid {
                        name,
                        reason: error.to_string(),
                    })
            })
            .transpose()
    }
}

/// Where the Stripe secret key comes from.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// The value itself, from an environment variable (local development).
    Plain(SecretString),
    /// The name of an SSM Parameter Store SecureString parameter.
    SsmParameter(String),
    /// The name or ARN of a Secrets Manager secret.
    SecretsManager(String),
}

pub const STRIPE_SECRET_KEY: &str = "STRIPE_SECRET_KEY";
pub const STRIPE_SECRET_KEY_PARAMETER: &str = "STRIPE_SECRET_KEY_PARAMETER";
pub const STRIPE_SECRET_KEY_SECRET_ID: &str = "STRIPE_SECRET_KEY_SECRET_ID";
const STRIPE_KEY_VARIABLES: &str =
    "STRIPE_SECRET_KEY, STRIPE_SECRET_KEY_PARAMETER or STRIPE_SECRET_KEY_SECRET_ID";

#[derive(Debug, Clone)]
pub struct StripeConfig {
    pub secret_key: SecretSource,
    /// `STRIPE_API_BASE`: a local Stripe emulator instead of api.stripe.com.
    pub api_base: Option<String>,
    /// Per-request timeout (`STRIPE_TIMEOUT_MS`).
    pub timeout: Duration,
}

impl StripeConfig {
    pub fn from_env(env: &EnvReader<'_>, default_timeout: Duration) -> Result<Self, ConfigError> {
        let plain = env.optional(STRIPE_SECRET_KEY);
        let parameter = env.optional(STRIPE_SECRET_KEY_PARAMETER);
        let secret_id = env.optional(STRIPE_SECRET_KEY_SECRET_ID);
        let secret_key = match (plain, parameter, secret_id) {
            (Some(key), None, None) => SecretSource::Plain(SecretString::from(key)),
            (None, Some(name), None) => SecretSource::SsmParameter(name),
            (None, None, Some(id)) => SecretSource::SecretsManager(id),
            (None, None, None) => return Err(ConfigError::Missing(STRIPE_KEY_VARIABLES)),
            _ => {
                return Err(ConfigError::Invalid {
                    name: STRIPE_SECRET_KEY,
                    reason: format!("set only one of {STRIPE_KEY_VARIABLES}"),
                });
            }
        };
        let api_base = env.optional("STRIPE_API_BASE");
        if let Some(base) = &api_base
            && !(base.starts_with("https://") || base.starts_with("http://"))
        {
            return Err(ConfigError::Invalid {
                name: "STRIPE_API_BASE",
                reason: "must be an http(s) URL".into(),
            });
        }
        let timeout = env
            .optional_parsed::<u64>("STRIPE_TIMEOUT_MS")?
            .map(Duration::from_millis)
            .unwrap_or(default_timeout);
        Ok(Self {
            secret_key,
            api_base,
            timeout,
        })
    }
}

/// Settings every customer-facing function shares: plans, dunning policy, the site.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    /// `PLANS`: `free=<usage plan id>,pro=<usage plan id>`, lowest first.
    pub plans: PlanCatalog,
    /// `PAST_DUE_POLICY`: `grace:<days>` (default `grace:7`) or `suspend`.
    pub policy: AccessPolicy,
    /// `SITE_ORIGIN`: `https://app.example.com`; redirects and return URLs stay under it.
    pub site_origin: String,
    /// `USER_POOL_ID`: used where no token says which pool (the success return).
    pub user_pool_id: UserPoolId,
    /// `KEY_VALUE_DISCLOSURE`: `always` (default) or `once`.
    pub key_disclosure: KeyDisclosure,
}

/// When `GET /me` shows the API key's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyDisclosure {
    /// Every time its owner asks.
    #[default]
    Always,
    /// Only in the answer that made it; afterwards its id, a prefix and its creation date.
    Once,
}

impl AccountSettings {
    pub fn from_env(env: &EnvReader<'_>) -> Result<Self, ConfigError> {
        let plans = PlanCatalog::parse(&env.required("PLANS")?)?;
        let policy = match env.optional("PAST_DUE_POLICY") {
            Some(raw) => AccessPolicy::parse(&raw)?,
            None => AccessPolicy::default(),
        };
        let site_origin = parse_origin(&env.required("SITE_ORIGIN")?)?;
        let user_pool_id =
            UserPoolId::parse(env.required("USER_POOL_ID")?).map_err(|e| ConfigError::Invalid {
                name: "USER_POOL_ID",
                reason: e.to_string(),
            })?;
        let key_disclosure = match env
            .optional("KEY_VALUE_DISCLOSURE")
            .as_deref()
            .map(str::trim)
        {
            None | Some("always") => KeyDisclosure::Always,
            Some("once") => KeyDisclosure::Once,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    name: "KEY_VALUE_DISCLOSURE",
                    reason: format!("{other:?} is neither always nor once"),
                });
            }
        };
        Ok(Self {
            plans,
            policy,
            site_origin,
            user_pool_id,
            key_disclosure,
        })
    }
}

/// An origin is a scheme and a host, nothing after: `https://app.example.com`. Plain http is
/// only accepted for local hosts.
pub fn parse_origin(raw: &str) -> Result<String, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: "SITE_ORIGIN",
        reason: reason.to_owned(),
    };
    let origin = raw.trim().trim_end_matches('/');
    let host = if let Some(host) = origin.strip_prefix("https://") {
        host
    } else if let Some(host) = origin.strip_prefix("http://") {
        let name = host.split_once(':').map_or(host, |(name, _)| name);
        let local = name == "127.0.0.1" || name == "localhost";
        if !local {
            return Err(invalid("http is only allowed for 127.0.0.1 or localhost"));
        }
        host
    } else {
        return Err(invalid("expected https://<host>"));
    };
    if host.is_empty() || host.contains(['/', '?', '#', '@', ' ']) {
        return Err(invalid("expected scheme and host only"));
    }
    Ok(origin.to_owned())
}

/// A boolean variable: `true`/`false`, `1`/`0`; unset is `default`.
pub fn flag(env: &EnvReader<'_>, name: &'static str, default: bool) -> Result<bool, ConfigError> {
    match env.optional(name).as_deref().map(str::trim) {
        None => Ok(default),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(_) => Err(ConfigError::Invalid {
            name,
            reason: "expected true or false".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn stripe_config(vars: &HashMap<String, String>) -> Result<StripeConfig, ConfigError> {
        let reader = EnvReader::from_fn(|name| vars.get(name).cloned());
        StripeConfig::from_env(&reader, Duration::from_secs(2))
    }

    #[test]
    fn when_no_key_source_is_set_should_name_the_variables() {
        let error = stripe_config(&env(&[])).unwrap_err();
        assert_eq!(error, ConfigError::Missing(STRIPE_KEY_VARIABLES));
        assert!(error.to_string().contains("STRIPE_SECRET_KEY_PARAMETER"));
    }

    #[test]
    fn when_two_key_sources_are_set_should_refuse() {
        let vars = env(&[
            ("STRIPE_SECRET_KEY", "sk_test_1"),
            ("STRIPE_SECRET_KEY_PARAMETER", "/billing/stripe"),
        ]);
        assert!(matches!(
            stripe_config(&vars),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn when_key_is_plain_should_keep_it_secret_in_debug() {
        let vars = env(&[("STRIPE_SECRET_KEY", "sk_test_verysecret")]);
        let config = stripe_config(&vars).unwrap();
        let SecretSource::Plain(key) = &config.secret_key else {
            panic!("expected a plain key");
        };
        assert_eq!(key.expose_secret(), "sk_test_verysecret");
        assert!(!format!("{config:?}").contains("verysecret"));
    }

    #[test]
    fn when_timeout_is_not_a_number_should_name_it() {
        let vars = env(&[("STRIPE_SECRET_KEY", "sk"), ("STRIPE_TIMEOUT_MS", "soon")]);
        let error = stripe_config(&vars).unwrap_err();
        assert!(error.to_string().contains("STRIPE_TIMEOUT_MS"));
    }

    #[test]
    fn when_api_base_is_not_a_url_should_refuse() {
        let vars = env(&[
            ("STRIPE_SECRET_KEY", "sk"),
            ("STRIPE_API_BASE", "localhost"),
        ]);
        assert!(stripe_config(&vars).is_err());
    }

    #[test]
    fn empty_variable_counts_as_missing() {
        let vars = env(&[("TABLE_NAME", "  ")]);
        let reader = EnvReader::from_fn(|name| vars.get(name).cloned());
        assert_eq!(
            reader.required("TABLE_NAME"),
            Err(ConfigError::Missing("TABLE_NAME"))
        );
    }

    #[test]
    fn when_a_plan_setting_is_malformed_should_name_its_variable() {
        assert_eq!(
            ConfigError::from(PlanCatalog::parse("free,free").unwrap_err()),
            ConfigError::Invalid {
                name: "PLANS",
                reason: "plan free listed twice".into()
            }
        );
        assert_eq!(
            ConfigError::from(AccessPolicy::parse("weekly").unwrap_err()).to_string(),
            r#"invalid environment variable PAST_DUE_POLICY: expected suspend or grace:<days>, got "weekly""#
        );
    }

    #[test]
    fn when_origin_has_a_path_or_is_plain_http_should_refuse() {
        assert_eq!(
            parse_origin("https://app.example.com/").unwrap(),
            "https://app.example.com"
        );
        assert!(parse_origin("http://app.example.com").is_err());
        assert!(parse_origin("https://app.example.com/x").is_err());
        assert!(parse_origin("app.example.com").is_err());
        assert!(parse_origin("https://a@b.com").is_err());
        assert!(parse_origin("http://localhost.evil.com").is_err());
        assert!(parse_origin("http://127.0.0.1.evil.com").is_err());
        assert_eq!(
            parse_origin("http://localhost:8080").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            parse_origin("http://127.0.0.1:3000").unwrap(),
            "http://127.0.0.1:3000"
        );
    }
}

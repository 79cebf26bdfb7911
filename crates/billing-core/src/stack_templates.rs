//! Which CloudFormation templates a Stripe product may name for its subscriptions' stacks.
//!
//! Anyone who can edit a product in Stripe can set its `stack_template_url`; the webhook then
//! asks CloudFormation for a stack of it. So a URL is admitted only when it names an object of
//! the one configured S3 bucket, under the configured prefix, in one of the https S3 URL forms
//! CloudFormation takes:
//!
//! - `https://<bucket>.s3.amazonaws.com/<key>`
//! - `https://<bucket>.s3.<region>.amazonaws.com/<key>`
//! - `https://s3.amazonaws.com/<bucket>/<key>`
//! - `https://s3.<region>.amazonaws.com/<bucket>/<key>`
//!
//! Anything else is refused: other buckets and hosts, http, user info, ports, queries,
//! fragments, and keys with `.`/`..` segments, empty segments or any character outside S3's
//! safe set (so no percent-encoding either). The URL must also be exactly how it parses, so
//! nothing the parser would normalise (case, default port, dot segments) slips through.

use url::{Host, Url};

use crate::config::{ConfigError, EnvReader};

/// Product metadata naming the CloudFormation template of a subscription's resources.
pub const STACK_TEMPLATE_METADATA: &str = "stack_template_url";

/// The template URL a product's metadata names, if it is an http(s) URL at all (whether it
/// may be used is `StackTemplatePolicy::admit`'s decision).
pub fn named_template(url: Option<&String>) -> Option<String> {
    url.filter(|url| url.starts_with("https://") || url.starts_with("http://"))
        .cloned()
}

pub const STACK_TEMPLATE_BUCKET: &str = "STACK_TEMPLATE_BUCKET";
pub const STACK_TEMPLATE_PREFIX: &str = "STACK_TEMPLATE_PREFIX";

const MAX_KEY_LEN: usize = 1024;

/// A bucket or prefix the policy cannot be built from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidTemplateLocation(String);

/// Where stack templates may come from; `admit` is the only way to a `TemplateUrl`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackTemplatePolicy {
    allowed: Option<Location>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Location {
    bucket: String,
    /// Empty (the whole bucket) or ending with `/`.
    prefix: String,
}

/// A template URL the policy admitted, to hand to CloudFormation as is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateUrl(String);

impl TemplateUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TemplateUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StackTemplatePolicy {
    /// No bucket: no template is admitted, so no stack is created.
    pub fn disabled() -> Self {
        Self { allowed: None }
    }

    /// Templates of `bucket` whose key starts with `prefix` (empty, or a folder ending with
    /// `/`).
    pub fn new(bucket: &str, prefix: &str) -> Result<Self, InvalidTemplateLocation> {
        validate_bucket(bucket)?;
        validate_prefix(prefix)?;
        Ok(Self {
            allowed: Some(Location {
                bucket: bucket.to_owned(),
                prefix: prefix.to_owned(),
            }),
        })
    }

    /// `STACK_TEMPLATE_BUCKET` (unset or empty: disabled) and `STACK_TEMPLATE_PREFIX`.
    pub fn from_env(env: &EnvReader<'_>) -> Result<Self, ConfigError> {
        let prefix = env.optional(STACK_TEMPLATE_PREFIX).unwrap_or_default();
        let Some(bucket) = env.optional(STACK_TEMPLATE_BUCKET) else {
            if prefix.is_empty() {
                return Ok(Self::disabled());
            }
            return Err(ConfigError::Invalid {
                name: STACK_TEMPLATE_PREFIX,
                reason: format!("needs {STACK_TEMPLATE_BUCKET}"),
            });
        };
        Self::new(bucket.trim(), prefix.trim()).map_err(|e| ConfigError::Invalid {
            name: if validate_bucket(bucket.trim()).is_err() {
                STACK_TEMPLATE_BUCKET
            } else {
                STACK_TEMPLATE_PREFIX
            },
            reason: e.to_string(),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.allowed.is_some()
    }

    /// The URL, when it names a template of the allowed bucket and prefix; `None` otherwise.
    pub fn admit(&self, raw: &str) -> Option<TemplateUrl> {
        let allowed = self.allowed.as_ref()?;
        let url = Url::parse(raw).ok()?;
        let plain = url.as_str() == raw
            && url.scheme() == "https"
            && url.username().is_empty()
            && url.password().is_none()
            && url.port().is_none()
            && url.query().is_none()
            && url.fragment().is_none();
        if !plain {
            return None;
        }
        let Some(Host::Domain(host)) = url.host() else {
            return None;
        };
        let key = key_in(host, url.path(), &allowed.bucket)?;
        (key.starts_with(&allowed.prefix) && is_safe_key(key)).then(|| TemplateUrl(raw.to_owned()))
    }
}

/// The object key the URL names in `bucket`, for the four S3 URL forms; `None` for any other
/// host or bucket.
fn key_in<'a>(host: &str, path: &'a str, bucket: &str) -> Option<&'a str> {
    let path = path.strip_prefix('/')?;
    let virtual_hosted = host
        .strip_prefix(bucket)
        .and_then(|rest| rest.strip_prefix(".s3"))
        .is_some_and(is_s3_endpoint_tail);
    if virtual_hosted {
        return Some(path);
    }
    let path_style = host.strip_prefix("s3").is_some_and(is_s3_endpoint_tail);
    if path_style {
        return path.strip_prefix(bucket)?.strip_prefix('/');
    }
    None
}

/// `.amazonaws.com` or `.<region>.amazonaws.com`.
fn is_s3_endpoint_tail(tail: &str) -> bool {
    let Some(middle) = tail.strip_suffix(".amazonaws.com") else {
        return false;
    };
    middle.is_empty() || middle.strip_prefix('.').is_some_and(is_region)
}

/// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`: letters, dash-separated, a number last.
fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    words.len() >= 2
        && words
            .iter()
            .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// S3's safe key characters, in `/`-separated segments none of which is empty, `.` or `..`.
fn is_safe_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_LEN && key.split('/').all(is_safe_segment)
}

fn is_safe_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!-_.*'()".contains(&b))
}

fn validate_bucket(bucket: &str) -> Result<(), InvalidTemplateLocation> {
    let invalid = |why: &str| Err(InvalidTemplateLocation(format!("bucket {bucket:?}: {why}")));
    if !(3..=63).contains(&bucket.len()) {
        return invalid("3 to 63 characters");
    }
    if !bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return invalid("lowercase letters, digits, dots and hyphens only");
    }
    let edges_ok = [bucket.as_bytes()[0], bucket.as_bytes()[bucket.len() - 1]]
        .iter()
        .all(|b| b.is_ascii_alphanumeric());
    if !edges_ok {
        return invalid("must begin and end with a letter or a digit");
    }
    if bucket.contains("..") || bucket.contains(".-") || bucket.contains("-.") {
        return invalid("no empty label");
    }
    if bucket.parse::<std::net::Ipv4Addr>().is_ok() {
        return invalid("not an IP address");
    }
    Ok(())
}

fn validate_prefix(prefix: &str) -> Result<(), InvalidTemplateLocation> {
    if prefix.is_empty() {
        return Ok(());
    }
    let folders = prefix.strip_suffix('/').ok_or_else(|| {
        InvalidTemplateLocation(format!(
            "prefix {prefix:?}: a folder ending with / (or empty)"
        ))
    })?;
    if folders.split('/').all(is_safe_segment) {
        Ok(())
    } else {
        Err(InvalidTemplateLocation(format!(
            "prefix {prefix:?}: S3 safe characters in non-empty segments, no . or .."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn templates() -> StackTemplatePolicy {
        StackTemplatePolicy::new("billing-templates", "stacks/").unwrap()
    }

    fn admitted(url: &str) -> bool {
        templates().admit(url).is_some()
    }

    #[test]
    fn every_s3_url_form_of_the_bucket_and_prefix_should_be_admitted() {
        for url in [
            "https://billing-templates.s3.amazonaws.com/stacks/pro.yaml",
            "https://billing-templates.s3.eu-west-1.amazonaws.com/stacks/pro.yaml",
            "https://s3.amazonaws.com/billing-templates/stacks/pro.yaml",
            "https://s3.us-east-1.amazonaws.com/billing-templates/stacks/pro.yaml",
            "https://s3.us-gov-west-1.amazonaws.com/billing-templates/stacks/v2/pro-(1).json",
        ] {
            let admitted = templates().admit(url);
            assert_eq!(
                admitted.as_ref().map(TemplateUrl::as_str),
                Some(url),
                "{url}"
            );
        }
    }

    #[test]
    fn another_bucket_should_be_refused_in_every_form() {
        for url in [
            "https://other.s3.amazonaws.com/stacks/pro.yaml",
            "https://billing-templates2.s3.amazonaws.com/stacks/pro.yaml",
            "https://xbilling-templates.s3.amazonaws.com/stacks/pro.yaml",
            "https://x.billing-templates.s3.amazonaws.com/stacks/pro.yaml",
            "https://s3.amazonaws.com/other/stacks/pro.yaml",
            "https://s3.amazonaws.com/billing-templates2/stacks/pro.yaml",
            "https://s3.amazonaws.com/billing-templatesstacks/pro.yaml",
            "https://s3.eu-west-1.amazonaws.com/other/billing-templates/stacks/pro.yaml",
            "https://other.s3.amazonaws.com/billing-templates/stacks/pro.yaml",
        ] {
            assert!(!admitted(url), "{url}");
        }
    }

    #[test]
    fn a_key_outside_the_prefix_should_be_refused() {
        for url in [
            "https://billing-templates.s3.amazonaws.com/pro.yaml",
            "https://billing-templates.s3.amazonaws.com/stacksx/pro.yaml",
            "https://billing-templates.s3.amazonaws.com/Stacks/pro.yaml",
            "https://billing-templates.s3.amazonaws.com/other/stacks/pro.yaml",
            "https://s3.amazonaws.com/billing-templates/pro.yaml",
            "https://billing-templates.s3.amazonaws.com/stacks/",
            "https://billing-templates.s3.amazonaws.com/",
            "https://billing-templates.s3.amazonaws.com",
            "https://s3.amazonaws.com/billing-templates",
            "https://s3.amazonaws.com/billing-templates/",
        ] {
            assert!(!admitted(url), "{url}");
        }
    }

    #[test]
    fn dot_segments_and_encodings_in_the_key_should_be_refused() {
        for url in [
            "https://billing-templates.s3.amazonaws.com/stacks/../pro.yaml",
            "https://billing-templates.s3.amazonaws.com/stacks/./pro.yaml",
            "https://billing-templates.s3.amazonaws.com/stacks/%2e%2e/pro.yaml",
            "https://billing-templates.s3.amazonaws.com/stacks/%2E%2E/x/pro.yaml",
            "https://billing-templates.s3.amazonaws.com/stacks%2f..%2fpro.yaml",
            "https://billing-templates.s3.amazonaws.com/stacks/pro%20x.yaml",
            "https://billing-templates.s3.amazonaws.com/stacks//pro.yaml",
            "https://billing-templates.s3.amazonaws.com/stacks/..",
            "https://billing-templates.s3.amazonaws.com/stacks\\..\\pro.yaml",
            "https://s3.amazonaws.com/billing-templates/../other/stacks/pro.yaml",
            "https://s3.amazonaws.com/billing-templates/stacks/../../other/pro.yaml",
            "https://s3.amazonaws.com/x/../billing-templates/stacks/pro.yaml",
            "https://billing-templates.s3.amazonaws.com/stacks/pro yaml",
            "https://billing-templates.s3.amazonaws.com/stacks/pro.yaml\n",
            " https://billing-templates.s3.amazonaws.com/stacks/pro.yaml",
        ] {
            assert!(!admitted(url), "{url:?}");
        }
    }

    #[test]
    fn anything_but_plain_https_should_be_refused() {
        for url in [
            "http://billing-templates.s3.amazonaws.com/stacks/pro.yaml",
            "s3://billing-templates/stacks/pro.yaml",
            "ftp://billing-templates.s3.amazonaws.com/stacks/pro.yaml",
            "https://user@billing-templates.s3.amazonaws.com/stacks/pro.yaml",
            "https://user:pw@billing-templates.s3.amazonaws.com/stacks/pro.yaml",
            "https://billing-templates.s3.amazonaws.com@evil.example/stacks/pro.yaml",
            "https://billing-templates.s3.amazonaws.com:443/stacks/pro.yaml",
            "https://billing-templates.s3.amazonaws.com:8443/stacks/pro.yaml",
            "https://billing-templates.s3.amazonaws.com/stacks/pro.yaml?versionId=1",
            "https://billing-templates.s3.amazonaws.com/stacks/pro.yaml?",
            "https://billing-templates.s3.amazonaws.com/stacks/pro.yaml#x",
            "https://billing-templates.s3.amazonaws.com/stacks/pro.yaml#",
            "HTTPS://billing-templates.s3.amazonaws.com/stacks/pro.yaml",
            "https://BILLING-templates.s3.amazonaws.com/stacks/pro.yaml",
            "https://billing-templates.s3.amazonaws.com./stacks/pro.yaml",
            "//billing-templates.s3.amazonaws.com/stacks/pro.yaml",
            "stacks/pro.yaml",
            "",
        ] {
            assert!(!admitted(url), "{url}");
        }
    }

    #[test]
    fn look_alike_hosts_should_be_refused() {
        for url in [
            "https://billing-templates.s3.amazonaws.com.evil.com/stacks/pro.yaml",
            "https://billing-templates.s3.eu-west-1.amazonaws.com.evil.com/stacks/pro.yaml",
            "https://s3.amazonaws.com.evil.com/billing-templates/stacks/pro.yaml",
            "https://billing-templates.s3.amazonaws.co/stacks/pro.yaml",
            "https://billing-templates.s3.evil.amazonaws.com/stacks/pro.yaml",
            "https://billing-templates.s3.eu.west.1.amazonaws.com/stacks/pro.yaml",
            "https://billing-templates.s3-eu-west-1.amazonaws.com/stacks/pro.yaml",
            "https://billing-templates.s3.dualstack.eu-west-1.amazonaws.com/stacks/pro.yaml",
            "https://billing-templates.evil.com/stacks/pro.yaml",
            "https://billing-templatess3.amazonaws.com/stacks/pro.yaml",
            "https://evil.com/billing-templates/stacks/pro.yaml",
            "https://s3x.amazonaws.com/billing-templates/stacks/pro.yaml",
            "https://evils3.amazonaws.com/billing-templates/stacks/pro.yaml",
            "https://s3.amazonaws.com.evil.com/stacks/pro.yaml",
            "https://52.216.1.1/billing-templates/stacks/pro.yaml",
            "https://[::1]/billing-templates/stacks/pro.yaml",
            "https://billing-templates.s3.amazonaws.com\\@evil.com/stacks/pro.yaml",
        ] {
            assert!(!admitted(url), "{url}");
        }
    }

    #[test]
    fn a_disabled_policy_should_admit_nothing() {
        let policy = StackTemplatePolicy::disabled();
        assert!(!policy.is_enabled());
        assert_eq!(
            policy.admit("https://billing-templates.s3.amazonaws.com/stacks/pro.yaml"),
            None
        );
    }

    #[test]
    fn an_empty_prefix_should_admit_the_whole_bucket_only() {
        let policy = StackTemplatePolicy::new("billing-local-templates", "").unwrap();
        assert!(policy.is_enabled());
        assert!(
            policy
                .admit("https://s3.amazonaws.com/billing-local-templates/pro-resources.json")
                .is_some()
        );
        assert!(
            policy
                .admit("https://s3.amazonaws.com/billing-local-templates/a/b.json")
                .is_some()
        );
        assert!(
            policy
                .admit("https://s3.amazonaws.com/other-templates/pro-resources.json")
                .is_none()
        );
    }

    #[test]
    fn a_bucket_with_dots_should_match_only_itself() {
        let policy = StackTemplatePolicy::new("my.templates", "").unwrap();
        assert!(
            policy
                .admit("https://my.templates.s3.amazonaws.com/a.json")
                .is_some()
        );
        assert!(
            policy
                .admit("https://s3.amazonaws.com/my.templates/a.json")
                .is_some()
        );
        assert!(
            policy
                .admit("https://my.templates.evil.s3.amazonaws.com/a.json")
                .is_none()
        );
        assert!(
            policy
                .admit("https://myxtemplates.s3.amazonaws.com/a.json")
                .is_none()
        );
    }

    #[test]
    fn bad_buckets_and_prefixes_should_not_make_a_policy() {
        for bucket in [
            "",
            "ab",
            "Billing",
            "bucket_name",
            "-bucket",
            "bucket-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "bucket/stacks",
            "bucket.s3.amazonaws.com/x",
            &"a".repeat(64),
        ] {
            assert!(StackTemplatePolicy::new(bucket, "").is_err(), "{bucket:?}");
        }
        for prefix in [
            "stacks", "/stacks/", "stacks//", "../", "./", "a/../", "a b/", "a%2F/", "a/b",
        ] {
            assert!(
                StackTemplatePolicy::new("billing-templates", prefix).is_err(),
                "{prefix:?}"
            );
        }
        for prefix in ["", "stacks/", "a/b-c/d_e.f/"] {
            assert!(
                StackTemplatePolicy::new("billing-templates", prefix).is_ok(),
                "{prefix:?}"
            );
        }
    }

    fn env(vars: &'static [(&'static str, &'static str)]) -> EnvReader<'static> {
        EnvReader::from_fn(move |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn the_environment_should_give_the_policy_or_name_the_bad_variable() {
        assert_eq!(
            StackTemplatePolicy::from_env(&env(&[])).unwrap(),
            StackTemplatePolicy::disabled()
        );
        assert_eq!(
            StackTemplatePolicy::from_env(&env(&[(STACK_TEMPLATE_BUCKET, "")])).unwrap(),
            StackTemplatePolicy::disabled()
        );
        assert_eq!(
            StackTemplatePolicy::from_env(&env(&[
                (STACK_TEMPLATE_BUCKET, "billing-templates"),
                (STACK_TEMPLATE_PREFIX, "stacks/"),
            ]))
            .unwrap(),
            templates()
        );
        let no_bucket =
            StackTemplatePolicy::from_env(&env(&[(STACK_TEMPLATE_PREFIX, "stacks/")])).unwrap_err();
        assert!(no_bucket.to_string().contains(STACK_TEMPLATE_PREFIX));
        let bad_bucket =
            StackTemplatePolicy::from_env(&env(&[(STACK_TEMPLATE_BUCKET, "Bad_Bucket")]))
                .unwrap_err();
        assert!(bad_bucket.to_string().contains(STACK_TEMPLATE_BUCKET));
        let bad_prefix = StackTemplatePolicy::from_env(&env(&[
            (STACK_TEMPLATE_BUCKET, "billing-templates"),
            (STACK_TEMPLATE_PREFIX, "stacks"),
        ]))
        .unwrap_err();
        assert!(bad_prefix.to_string().contains(STACK_TEMPLATE_PREFIX));
    }
}

//! Domain types. They know no SDK: adapters convert at the edge.

use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: {reason}")]
pub struct ParseError {
    pub what: &'static str,
    pub reason: &'static str,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $validate:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: impl Into<String>) -> Result<Self, ParseError> {
                let raw = raw.into();
                let validate: fn(&str) -> Result<(), &'static str> = $validate;
                validate(&raw).map_err(|reason| ParseError { what: $what, reason })?;
                Ok(Self(raw))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn bounded_token(raw: &str, max: usize) -> Result<(), &'static str> {
    if raw.is_empty() {
        return Err("empty");
    }
    if raw.len() > max {
        return Err("too long");
    }
    if raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("contains whitespace or control characters");
    }
    Ok(())
}

id_type!(
    /// A Cognito user's `sub`: stable and unique, the key of everything we store for a user.
    UserSub,
    "user sub",
    |raw| bounded_token(raw, 128)
);
id_type!(
    /// A Cognito user pool id, e.g. `eu-west-1_AbC123` (or `local_...` in cognito-local).
    UserPoolId,
    "user pool id",
    |raw| {
        bounded_token(raw, 55)?;
        if raw.contains('_') { Ok(()) } else { Err("expected <region>_<id>") }
    }
);
id_type!(
    /// A Cognito username (may be an email or a UUID depending on the pool).
    Username,
    "username",
    |raw| {
        if raw.is_empty() { Err("empty") } else if raw.len() > 128 { Err("too long") } else { Ok(()) }
    }
);
id_type!(
    /// A Stripe customer id, `cus_...`.
    CustomerId,
    "customer id",
    |raw| {
        bounded_token(raw, 255)?;
        if raw.starts_with("cus_") { Ok(()) } else { Err("expected cus_...") }
    }
);

/// An email address. Its Debug output is redacted so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: impl Into<String>) -> Result<Self, ParseError> {
        let raw = raw.into();
        let invalid = |reason| ParseError {
            what: "email",
            reason,
        };
        bounded_token(&raw, 254).map_err(invalid)?;
        match raw.split_once('@') {
            Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Ok(Self(raw)),
            _ => Err(invalid("expected local@domain")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(<redacted>)")
    }
}

/// A confirmed Cognito user, as the post-confirmation trigger and the authorizer claims see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CognitoUser {
    pub pool_id: UserPoolId,
    pub username: Username,
    pub sub: UserSub,
    pub email: Option<Email>,
    /// Cognito's `email_verified`: only a verified address may adopt a Stripe customer found
    /// by that address.
    pub email_verified: bool,
}

/// Metadata keys set on every Stripe customer we create, and searched to find it again.
pub mod customer_metadata {
    pub const COGNITO_SUB: &str = "cognito_sub";
    pub const COGNITO_USERNAME: &str = "cognito_username";
    pub const USER_POOL_ID: &str = "user_pool_id";
}

/// What to send to Stripe to create a user's customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCustomer {
    pub name: String,
    pub email: Option<Email>,
    pub metadata: BTreeMap<String, String>,
    /// Same pool and sub -> same key, so a repeated create returns the first customer.
    pub idempotency_key: String,
}

impl NewCustomer {
    pub fn for_user(user: &CognitoUser) -> Self {
        let metadata = BTreeMap::from([
            (
                customer_metadata::COGNITO_SUB.to_owned(),
                user.sub.to_string(),
            ),
            (
                customer_metadata::COGNITO_USERNAME.to_owned(),
                user.username.to_string(),
            ),
            (
                customer_metadata::USER_POOL_ID.to_owned(),
                user.pool_id.to_string(),
            ),
        ]);
        Self {
            name: user.username.to_string(),
            email: user.email.clone(),
            metadata,
            idempotency_key: customer_idempotency_key(&user.pool_id, &user.sub),
        }
    }
}

/// `cognito-customer-<sha256(pool:sub)>`: stable per user, reveals neither.
pub fn customer_idempotency_key(pool_id: &UserPoolId, sub: &UserSub) -> String {
    let digest = Sha256::digest(format!("{pool_id}:{sub}").as_bytes());
    format!("cognito-customer-{}", hex::encode(&digest[..16]))
}

/// A Stripe customer as far as linking is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeCustomer {
    pub id: CustomerId,
    /// Unix seconds.
    pub created: i64,
    pub metadata: BTreeMap<String, String>,
    pub deleted: bool,
}

impl StripeCustomer {
    pub fn cognito_sub(&self) -> Option<&str> {
        self.metadata
            .get(customer_metadata::COGNITO_SUB)
            .map(String::as_str)
            .filter(|sub| !sub.is_empty())
    }
}

/// The two-way link between a Cognito user and their Stripe customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerLink {
    pub sub: UserSub,
    pub customer_id: CustomerId,
    pub pool_id: UserPoolId,
    pub username: Username,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> CognitoUser {
        CognitoUser {
            pool_id: UserPoolId::parse("us-east-1_Abc").unwrap(),
            username: Username::parse("alice").unwrap(),
            sub: UserSub::parse("4f1c-sub").unwrap(),
            email: Some(Email::parse("alice@example.com").unwrap()),
            email_verified: true,
        }
    }

    #[test]
    fn when_same_user_should_derive_same_idempotency_key() {
        let a = customer_idempotency_key(&user().pool_id, &user().sub);
        let b = NewCustomer::for_user(&user()).idempotency_key;
        assert_eq!(a, b);
        assert!(a.starts_with("cognito-customer-"));
        assert!(!a.contains("4f1c-sub"));
    }

    #[test]
    fn when_pool_differs_should_derive_another_key() {
        let other_pool = UserPoolId::parse("eu-west-1_Xyz").unwrap();
        assert_ne!(
            customer_idempotency_key(&other_pool, &user().sub),
            customer_idempotency_key(&user().pool_id, &user().sub)
        );
    }

    #[test]
    fn new_customer_should_carry_cognito_metadata() {
        let customer = NewCustomer::for_user(&user());
        assert_eq!(customer.name, "alice");
        assert_eq!(customer.metadata["cognito_sub"], "4f1c-sub");
        assert_eq!(customer.metadata["cognito_username"], "alice");
        assert_eq!(customer.metadata["user_pool_id"], "us-east-1_Abc");
    }

    #[test]
    fn email_debug_should_be_redacted() {
        let email = Email::parse("alice@example.com").unwrap();
        assert!(!format!("{email:?}").contains("alice"));
        assert!(!format!("{:?}", user()).contains("alice@example.com"));
    }

    #[test]
    fn when_ids_are_malformed_should_refuse() {
        assert!(CustomerId::parse("sub_123").is_err());
        assert!(CustomerId::parse("cus_123").is_ok());
        assert!(UserSub::parse("").is_err());
        assert!(UserSub::parse("a b").is_err());
        assert!(UserPoolId::parse("nopool").is_err());
        assert!(Email::parse("not-an-email").is_err());
    }
}

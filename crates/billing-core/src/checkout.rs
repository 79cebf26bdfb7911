//! Checkout, its success return, and the Billing Portal: the decisions behind the HTTP handlers.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{CognitoUser, CustomerLink, UserSub};
use crate::error::{Error, Result};
use crate::onboarding::Onboarding;
use crate::plans::{AccessPolicy, PlanCatalog};
use crate::ports::{
    ApiKeys, Billing, Checkout, CheckoutRecords, CustomerLinks, Directory, ProvisioningLeases,
};
pub use crate::ports::{
    CheckoutMode, CheckoutRecord, CheckoutSessionInfo, CreatedSession, NewCheckoutSession,
    NewPortalSession, PortalFlow, PriceInfo,
};
use crate::provisioning::{Provisioned, Provisioner, under_lease};

/// What the caller asked for, already validated by the handler.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckoutOrder {
    pub lookup_key: String,
    pub quantity: u64,
    pub promotion_code: Option<String>,
    pub allow_promotion_codes: bool,
    pub locale: Option<String>,
}

/// Deployment settings of checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSettings {
    /// e.g. `https://app.example.com`: every redirect and return URL is under it.
    pub site_origin: String,
    pub success_path: String,
    pub cancel_path: String,
    pub allow_multiple_subscriptions: bool,
    pub automatic_tax: bool,
    pub billing_address_required: bool,
    /// Lookup keys sellable even when their product names no plan.
    pub extra_sellable_lookup_keys: Vec<String>,
}

impl CheckoutSettings {
    pub fn success_url(&self) -> String {
        format!("{}{}", self.site_origin, self.success_path)
    }

    pub fn cancel_url(&self) -> String {
        format!("{}{}", self.site_origin, self.cancel_path)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("no active price has this lookup key")]
    UnknownPrice,
    #[error("the caller already has an active subscription to this plan")]
    AlreadySubscribed,
    #[error(transparent)]
    Upstream(#[from] Error),
}

/// Hex SHA-256 of a one-time key: only the hash is stored.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// 32 random bytes, hex.
pub fn new_one_time_key() -> Result<String> {
    random_hex::<32>().map_err(|e| Error::InvalidData {
        service: crate::error::Upstream::Stripe,
        detail: format!("no randomness: {e}"),
    })
}

/// N random bytes from the OS, hex.
pub(crate) fn random_hex<const N: usize>() -> std::result::Result<String, getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(hex::encode(bytes))
}

fn keys_match(key: &str, stored_hash: &str) -> bool {
    hash_key(key)
        .as_bytes()
        .ct_eq(stored_hash.as_bytes())
        .into()
}

pub struct CheckoutService<'a, L, R, B, C, D, K> {
    pub links: &'a L,
    pub records: &'a R,
    pub billing: &'a B,
    pub checkout: &'a C,
    pub directory: &'a D,
    pub keys: &'a K,
    pub plans: &'a PlanCatalog,
    pub policy: &'a AccessPolicy,
    pub settings: &'a CheckoutSettings,
}

impl<L, R, B, C, D, K> std::fmt::Debug for CheckoutService<'_, L, R, B, C, D, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckoutService")
    }
}

/// How the success return ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Paid and provisioned now.
    Provisioned(Provisioned),
    /// Paid, and provisioned by an earlier visit of the same link.
    AlreadyProvisioned,
    /// Anything else: unknown session, wrong key, not paid. The caller reveals nothing.
    Rejected(&'static str),
}

impl<L, R, B, C, D, K> CheckoutService<'_, L, R, B, C, D, K>
where
    L: CustomerLinks + ProvisioningLeases,
    R: CheckoutRecords,
    B: Billing,
    C: Checkout,
    D: Directory,
    K: ApiKeys,
{
    /// Starts a Checkout session for the caller. `complete_url` is our success-return endpoint;
    /// `request_id` makes the Stripe call idempotent per API request.
    pub async fn start(
        &self,
        caller: &CognitoUser,
        known_customer_id: Option<&str>,
        order: &CheckoutOrder,
        complete_url: &str,
        request_id: &str,
        now: i64,
    ) -> Result<CreatedSession, CheckoutError> {
        let price = self
            .checkout
            .price_by_lookup_key(&order.lookup_key)
            .await?
            .filter(|price| price.active)
            .ok_or(CheckoutError::UnknownPrice)?;
        let plan_on_sale = price
            .plan
            .as_ref()
            .filter(|plan| self.plans.get(plan).is_some());
        let allowlisted = self
            .settings
            .extra_sellable_lookup_keys
            .iter()
            .any(|key| key == &order.lookup_key);
        if plan_on_sale.is_none() && !allowlisted {
            return Err(CheckoutError::UnknownPrice);
        }

        let onboarding = Onboarding {
            links: self.links,
            billing: self.billing,
            directory: self.directory,
        };
        let customer_id = onboarding
            .ensure_customer(caller, known_customer_id)
            .await?
            .customer_id;

        if price.recurring
            && !self.settings.allow_multiple_subscriptions
            && let Some(plan) = plan_on_sale
        {
            let subscriptions = self.billing.subscriptions_of(&customer_id).await?;
            let already = subscriptions.iter().any(|subscription| {
                subscription.plan.as_ref() == Some(plan) && self.policy.entitles(subscription, now)
            });
            if already {
                return Err(CheckoutError::AlreadySubscribed);
            }
        }

        let one_time_key = new_one_time_key()?;
        let mut metadata = BTreeMap::from([(
            crate::domain::customer_metadata::COGNITO_SUB.to_owned(),
            caller.sub.to_string(),
        )]);
        if let Some(plan) = &price.plan {
            metadata.insert("plan".to_owned(), plan.to_string());
        }
        let session = NewCheckoutSession {
            customer_id: customer_id.clone(),
            price_id: price.id.clone(),
            quantity: order.quantity,
            mode: if price.recurring {
                CheckoutMode::Subscription
            } else {
                CheckoutMode::Payment
            },
            client_reference_id: caller.sub.to_string(),
            metadata,
            trial_period_days: price.trial_period_days.filter(|_| price.recurring),
            success_url: format!(
                "{complete_url}?session_id={{CHECKOUT_SESSION_ID}}&key={one_time_key}"
            ),
            cancel_url: self.settings.cancel_url(),
            allow_promotion_codes: order.allow_promotion_codes,
            promotion_code: order.promotion_code.clone(),
            locale: order.locale.clone(),
            billing_address_required: self.settings.billing_address_required,
            automatic_tax: self.settings.automatic_tax,
            idempotency_key: format!(
                "checkout-{}",
                hash_key(&format!("{}:{request_id}", caller.sub))
            ),
        };
        let created = self.checkout.create_session(&session).await?;
        self.records
            .put(&CheckoutRecord {
                session_id: created.id.clone(),
                sub: caller.sub.clone(),
                customer_id,
                key_hash: hash_key(&one_time_key),
                lookup_key: order.lookup_key.clone(),
                created_at: now,
                completed: false,
            })
            .await?;
        Ok(created)
    }

    /// The success return: the one-time key is the proof. Provisions at most once per session.
    pub async fn complete(&self, session_id: &str, key: &str, now: i64) -> Result<Completion> {
        let Some(record) = self.records.get(session_id).await? else {
            return Ok(Completion::Rejected("unknown session"));
        };
        if !keys_match(key, &record.key_hash) {
            return Ok(Completion::Rejected("wrong one-time key"));
        }
        let Some(session) = self.checkout.session(session_id).await? else {
            return Ok(Completion::Rejected("session unknown to stripe"));
        };
        let owned_by_record = session.customer_id.as_deref() == Some(record.customer_id.as_str())
            && session.client_reference_id.as_deref() == Some(record.sub.as_str());
        if !owned_by_record {
            return Ok(Completion::Rejected("session does not match its record"));
        }
        if !session.is_paid() {
            return Ok(Completion::Rejected("not paid"));
        }
        if record.completed {
            return Ok(Completion::AlreadyProvisioned);
        }
        let Some(link) = self.links.customer_of_user(&record.sub).await? else {
            return Ok(Completion::Rejected("user no longer linked"));
        };
        let provisioner = self.provisioner();
        let provisioned = under_lease(self.links, &link.customer_id, now, || {
            provisioner.reconcile(&link, now)
        })
        .await?;
        if !self.records.mark_completed(session_id).await? {
            return Ok(Completion::AlreadyProvisioned);
        }
        Ok(Completion::Provisioned(provisioned))
    }

    pub fn provisioner(&self) -> Provisioner<'_, B, D, K> {
        Provisioner {
            billing: self.billing,
            directory: self.directory,
            keys: self.keys,
            plans: self.plans,
            policy: self.policy,
        }
    }
}

/// The Billing Portal for the caller's own customer: from our link, never from the request.
#[derive(Debug)]
pub struct PortalService<'a, L, B, C> {
    pub links: &'a L,
    pub billing: &'a B,
    pub checkout: &'a C,
    pub policy: &'a AccessPolicy,
}

impl<L: CustomerLinks, B: Billing, C: Checkout> PortalService<'_, L, B, C> {
    /// The portal URL, or `None` when the caller has no customer.
    pub async fn session(
        &self,
        sub: &UserSub,
        return_url: String,
        flow: Option<PortalFlow>,
        now: i64,
    ) -> Result<Option<String>> {
        let Some(CustomerLink { customer_id, .. }) = self.links.customer_of_user(sub).await? else {
            return Ok(None);
        };
        let subscription_id = match flow {
            Some(_) => self
                .billing
                .subscriptions_of(&customer_id)
                .await?
                .into_iter()
                .filter(|subscription| self.policy.entitles(subscription, now))
                .max_by_key(|subscription| subscription.created)
                .map(|subscription| subscription.id),
            None => None,
        };
        // A flow needs a subscription; without one the plain portal is the useful answer.
        let flow = flow.filter(|_| subscription_id.is_some());
        let url = self
            .checkout
            .create_portal_session(&NewPortalSession {
                customer_id,
                return_url,
                flow,
                subscription_id,
            })
            .await?;
        Ok(Some(url))
    }
}

/// A return path under the site origin: an absolute path without scheme, host, `..` or `\`.
pub fn safe_return_url(origin: &str, path: Option<&str>) -> Option<String> {
    let path = path.unwrap_or("/");
    let safe = path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= 512
        && !path.contains("..")
        && !path.contains('\\')
        && !path.chars().any(|c| c.is_control() || c.is_whitespace())
        && !path.contains("://")
        && !path.contains('@');
    safe.then(|| format!("{origin}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_return_path_leaves_the_origin_should_refuse() {
        let origin = "https://app.example.com";
        for bad in [
            "//evil.com",
            "https://evil.com",
            "evil.com",
            "/\\evil.com",
            "/../x",
            "/a b",
            "/x@evil.com",
            "/%0d%0a\n",
        ] {
            assert_eq!(safe_return_url(origin, Some(bad)), None, "{bad}");
        }
        assert_eq!(
            safe_return_url(origin, Some("/account?tab=billing")).as_deref(),
            Some("https://app.example.com/account?tab=billing")
        );
        assert_eq!(
            safe_return_url(origin, None).as_deref(),
            Some("https://app.example.com/")
        );
    }

    #[test]
    fn one_time_keys_should_be_random_and_only_match_their_hash() {
        let a = new_one_time_key().unwrap();
        let b = new_one_time_key().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(keys_match(&a, &hash_key(&a)));
        assert!(!keys_match(&b, &hash_key(&a)));
    }
}

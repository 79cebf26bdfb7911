//! Checkout and its success return: the decisions behind `POST /checkout` and
//! `GET /checkout/complete`.

use std::collections::BTreeMap;

use crate::domain::{CognitoUser, customer_metadata};
use crate::error::{Error, Result};
use crate::ids::{hash_key, key_matches, new_one_time_key};
use crate::inputs::{
    CheckoutSessionId, Locale, LookupKey, OneTimeKey, Promotion, Quantity, ReturnPath,
};
use crate::onboarding::OnboardingService;
use crate::plans::{AccessPolicy, PlanCatalog};
use crate::ports::{ApiKeys, Directory};
pub use crate::ports::{
    CheckoutMode, CheckoutRecord, CheckoutSessionInfo, CreatedSession, NewCheckoutSession,
    NewPortalSession, PortalFlow, PriceInfo,
};
use crate::ports::{CheckoutStore, Payments};
use crate::provisioning::{Provisioned, Provisioner, under_lease};
use tracing::error;

/// What the caller asked for, every part validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutOrder {
    pub lookup_key: LookupKey,
    pub quantity: Quantity,
    pub promotion: Promotion,
    pub locale: Option<Locale>,
}

/// Deployment settings of checkout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSettings {
    /// e.g. `https://app.example.com`: every redirect and return URL is under it.
    pub site_origin: String,
    pub success_path: ReturnPath,
    pub cancel_path: ReturnPath,
    pub allow_multiple_subscriptions: bool,
    pub automatic_tax: bool,
    pub billing_address_required: bool,
    /// Lookup keys sellable even when their product names no plan.
    pub extra_sellable_lookup_keys: Vec<String>,
}

impl CheckoutSettings {
    pub fn success_url(&self) -> String {
        self.success_path.url_on(&self.site_origin)
    }

    pub fn cancel_url(&self) -> String {
        self.cancel_path.url_on(&self.site_origin)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("no active price has this lookup key")]
    UnknownPrice,
    #[error("the caller already has an active subscription to this plan")]
    AlreadySubscribed,
    #[error("the price names a usage price that is not on sale as one")]
    MisconfiguredPrice,
    #[error("a price billed by usage takes no quantity")]
    QuantityOnMeteredPrice,
    #[error(transparent)]
    Upstream(#[from] Error),
}

/// Checkout for a signed-in caller, and the success return that provisions what they paid for.
pub struct CheckoutService<'a, S, P, D, K> {
    pub store: &'a S,
    pub payments: &'a P,
    pub directory: &'a D,
    pub keys: &'a K,
    pub plans: &'a PlanCatalog,
    pub policy: &'a AccessPolicy,
    pub settings: &'a CheckoutSettings,
}

impl<S, P, D, K> std::fmt::Debug for CheckoutService<'_, S, P, D, K> {
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

impl<S, P, D, K> CheckoutService<'_, S, P, D, K>
where
    S: CheckoutStore,
    P: Payments,
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
        let lookup_key = order.lookup_key.as_str();
        let price = self
            .payments
            .price_by_lookup_key(lookup_key)
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
            .any(|key| key == lookup_key);
        if plan_on_sale.is_none() && !allowlisted {
            return Err(CheckoutError::UnknownPrice);
        }
        if price.metered && order.quantity.get() != 1 {
            return Err(CheckoutError::QuantityOnMeteredPrice);
        }
        let metered_add_ons = match &price.usage_add_on {
            Some(lookup_key) => vec![self.usage_add_on(&price.id, lookup_key).await?],
            None => Vec::new(),
        };

        let customer_id = self
            .onboarding()
            .ensure_customer(caller, known_customer_id)
            .await?
            .customer_id;

        if price.recurring
            && !self.settings.allow_multiple_subscriptions
            && let Some(plan) = plan_on_sale
        {
            let subscriptions = self.payments.subscriptions_of(&customer_id).await?;
            let already = subscriptions.iter().any(|subscription| {
                subscription.plans().any(|named| named == plan)
                    && self.policy.entitles(subscription, now)
            });
            if already {
                return Err(CheckoutError::AlreadySubscribed);
            }
        }

        let one_time_key = new_one_time_key()?;
        let mut metadata = BTreeMap::from([(
            customer_metadata::COGNITO_SUB.to_owned(),
            caller.sub.to_string(),
        )]);
        if let Some(plan) = &price.plan {
            metadata.insert("plan".to_owned(), plan.to_string());
        }
        let session = NewCheckoutSession {
            customer_id: customer_id.clone(),
            price_id: price.id.clone(),
            // A metered price is billed by usage: Stripe refuses a quantity on it.
            quantity: (!price.metered).then(|| order.quantity.get()),
            metered_add_ons,
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
            allow_promotion_codes: order.promotion == Promotion::CustomerEntered,
            promotion_code: order.promotion.code().map(str::to_owned),
            locale: order.locale.as_ref().map(Locale::to_string),
            billing_address_required: self.settings.billing_address_required,
            automatic_tax: self.settings.automatic_tax,
            idempotency_key: format!(
                "checkout-{}",
                hash_key(&format!("{}:{request_id}", caller.sub))
            ),
        };
        let created = self.payments.create_session(&session).await?;
        self.store
            .put(&CheckoutRecord {
                session_id: created.id.clone(),
                sub: caller.sub.clone(),
                customer_id,
                key_hash: hash_key(&one_time_key),
                lookup_key: lookup_key.to_owned(),
                created_at: now,
                completed: false,
            })
            .await?;
        Ok(created)
    }

    /// The success return: the one-time key is the proof. Provisions at most once per session.
    pub async fn complete(
        &self,
        session_id: &CheckoutSessionId,
        key: &OneTimeKey,
        now: i64,
    ) -> Result<Completion> {
        let session_id = session_id.as_str();
        let Some(record) = self.store.get(session_id).await? else {
            return Ok(Completion::Rejected("unknown session"));
        };
        if now >= record.expires_at() {
            return Ok(Completion::Rejected("one-time key expired"));
        }
        if !key_matches(key.as_str(), &record.key_hash) {
            return Ok(Completion::Rejected("wrong one-time key"));
        }
        let Some(session) = self.payments.session(session_id).await? else {
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
        let Some(link) = self.store.customer_of_user(&record.sub).await? else {
            return Ok(Completion::Rejected("user no longer linked"));
        };
        let provisioner = self.provisioner();
        // Applied outside a delivery: the record of what deliveries applied no longer holds.
        let provisioned = under_lease(self.store, &link.customer_id, now, || async {
            self.store.forget_provisioned(&link.customer_id).await?;
            provisioner.reconcile(&link, now).await
        })
        .await?;
        if !self.store.mark_completed(session_id).await? {
            return Ok(Completion::AlreadyProvisioned);
        }
        Ok(Completion::Provisioned(provisioned))
    }

    /// The metered price a flat-fee price names as its usage (`usage_lookup_key`): it must be
    /// an active metered recurring price, else the catalogue is wrong and nothing is sold.
    async fn usage_add_on(
        &self,
        price_id: &str,
        lookup_key: &str,
    ) -> Result<String, CheckoutError> {
        match self.payments.price_by_lookup_key(lookup_key).await? {
            Some(add_on) if add_on.active && add_on.recurring && add_on.metered => Ok(add_on.id),
            found => {
                error!(
                    price_id,
                    usage_lookup_key = lookup_key,
                    found = found.is_some(),
                    "a price's usage_lookup_key does not name an active metered price; fix the catalogue"
                );
                Err(CheckoutError::MisconfiguredPrice)
            }
        }
    }

    pub fn provisioner(&self) -> Provisioner<'_, P, D, K> {
        Provisioner {
            billing: self.payments,
            directory: self.directory,
            keys: self.keys,
            plans: self.plans,
            policy: self.policy,
        }
    }

    fn onboarding(&self) -> OnboardingService<'_, S, P, D> {
        OnboardingService {
            links: self.store,
            billing: self.payments,
            directory: self.directory,
        }
    }
}

//! The user of a customer: the stored link, else one found (or created) from what a checkout
//! session or a customer says about its user. Checkout sessions and customers are applied here.

use tracing::{info, warn};

use super::{Delivery, Outcome, SyncService, parse_customer};
use crate::domain::{CustomerId, CustomerLink, Email};
use crate::error::{Error, Result};
use crate::ports::{
    CognitoUserRef, CustomerLinks, DeletedCustomers, Directory, SyncPorts, SyncStore, UserLookup,
};
use crate::webhook::event::{CheckoutSessionObject, CustomerObject};

/// What an event says about the user of its customer.
#[derive(Debug, Clone, Default)]
pub(super) struct LinkHints {
    /// A Cognito sub: the checkout's client_reference_id, or a `cognito_sub` metadata value.
    pub(super) sub: Option<String>,
    pub(super) email: Option<Email>,
}

impl<P: SyncPorts> SyncService<'_, P> {
    pub(super) async fn on_checkout_session(
        &self,
        delivery: Delivery<'_>,
        session: &CheckoutSessionObject,
    ) -> Result<Outcome> {
        let Some(customer) = &session.customer_id else {
            return self.park_guest_checkout(delivery, session).await;
        };
        let customer_id = parse_customer(customer)?;
        self.record_checkout_session(delivery, customer, session)
            .await?;
        let hints = LinkHints {
            sub: session.client_reference_id.clone().or_else(|| {
                session
                    .metadata
                    .get(crate::domain::customer_metadata::COGNITO_SUB)
                    .cloned()
            }),
            email: session.customer_email.clone(),
        };
        let paid = matches!(
            session.payment_status.as_deref(),
            Some("paid" | "no_payment_required")
        );
        if !paid {
            // Linked now so later events find the user; provisioning waits for the payment.
            return self.link_only(&customer_id, &hints, delivery).await;
        }
        let subscription = match &session.subscription_id {
            Some(id) => {
                self.store_current_subscription(&customer_id, id, delivery)
                    .await?
            }
            None => None,
        };
        // The subscription's own events may now be stale: its resources start here, its stack
        // recorded known so its renewals read none.
        let outcome = self
            .reconcile(
                &customer_id,
                hints,
                subscription.as_ref().map(|s| s.id.as_str()),
                delivery,
            )
            .await?;
        Ok(outcome)
    }

    pub(super) async fn on_customer(
        &self,
        delivery: Delivery<'_>,
        customer: &CustomerObject,
    ) -> Result<Outcome> {
        let customer_id = parse_customer(&customer.id)?;
        self.record_profile(delivery, customer).await?;
        if customer.deleted {
            self.end_subscriptions_of(&customer_id, delivery).await?;
            return self
                .reconcile(&customer_id, LinkHints::default(), None, delivery)
                .await;
        }
        let hints = LinkHints {
            sub: customer.cognito_sub().map(str::to_owned),
            email: customer.email.clone(),
        };
        self.link_only(&customer_id, &hints, delivery).await
    }

    async fn link_only(
        &self,
        customer_id: &CustomerId,
        hints: &LinkHints,
        delivery: Delivery<'_>,
    ) -> Result<Outcome> {
        Ok(match self.link_for(customer_id, hints, delivery).await? {
            Some(_) => Outcome::Applied,
            None => Outcome::Unmapped,
        })
    }

    /// The user of a customer: the stored link, else one found by the hints (the checkout's
    /// client_reference_id or metadata sub, then the email), else a user created from the email
    /// if allowed. Parks the event when nobody can be linked.
    pub(super) async fn link_for(
        &self,
        customer_id: &CustomerId,
        hints: &LinkHints,
        delivery: Delivery<'_>,
    ) -> Result<Option<CustomerLink>> {
        if let Some(link) = self.store.user_of_customer(customer_id).await? {
            return Ok(Some(link));
        }
        let pool = &self.settings.user_pool_id;
        let mut found = self.find_user(hints).await?;
        if found.is_none()
            && self.settings.create_users
            && let Some(email) = &hints.email
        {
            found = Some(self.users.create_user(pool, email).await?);
        }
        let event = delivery.event;
        let Some(user) = found else {
            if self.store.is_deleted_customer(customer_id).await? {
                // The account was deleted while this event was on its way: what it stored goes.
                info!(event_id = %event.id, customer_id = %customer_id, "customer of a deleted account; nothing kept");
                self.store.purge_customer(customer_id).await?;
                return Ok(None);
            }
            warn!(event_id = %event.id, customer_id = %customer_id, event_type = %event.event_type, "no user for this customer; event parked as unmapped");
            self.park(customer_id, delivery).await?;
            return Ok(None);
        };
        match self.store_link(customer_id, user).await? {
            Some(link) => Ok(Some(link)),
            None => {
                // A user who already has another customer is not relinked; the event waits as
                // unmapped for a person to decide.
                warn!(customer_id = %customer_id, "user already linked to another customer; event parked as unmapped");
                self.park(customer_id, delivery).await?;
                Ok(None)
            }
        }
    }

    /// The user the hints name: by sub, then the one confirmed user with that verified e-mail.
    pub(super) async fn find_user(&self, hints: &LinkHints) -> Result<Option<CognitoUserRef>> {
        let pool = &self.settings.user_pool_id;
        if let Some(sub) = &hints.sub
            && let Some(user) = self.users.user_by_sub(pool, sub).await?
        {
            return Ok(Some(user));
        }
        if let Some(email) = &hints.email {
            let mut by_email = self.users.verified_users_by_email(pool, email).await?;
            if by_email.len() == 1 {
                return Ok(by_email.pop());
            }
        }
        Ok(None)
    }

    /// Links the customer to the user and sets the user's customer attribute. Linked
    /// concurrently to the same user: that link. `None` when the user already has another
    /// customer.
    pub(super) async fn store_link(
        &self,
        customer_id: &CustomerId,
        user: CognitoUserRef,
    ) -> Result<Option<CustomerLink>> {
        let link = CustomerLink {
            sub: user.sub,
            customer_id: customer_id.clone(),
            pool_id: self.settings.user_pool_id.clone(),
            username: user.username,
        };
        match self.store.link(&link).await {
            Ok(()) => {}
            Err(Error::ConditionalCheckFailed) => {
                return self.store.user_of_customer(customer_id).await;
            }
            Err(other) => return Err(other),
        }
        self.users
            .set_customer_id(&link.pool_id, &link.username, customer_id)
            .await?;
        info!(customer_id = %customer_id, sub = %link.sub, "customer linked to its user");
        Ok(Some(link))
    }

    /// A guest's payment (payment mode, no customer): there is no customer to link, so a paid
    /// one is parked under its session, like a payment nobody is linked to, for a person to
    /// match with its payer's e-mail in Stripe.
    async fn park_guest_checkout(
        &self,
        delivery: Delivery<'_>,
        session: &CheckoutSessionObject,
    ) -> Result<Outcome> {
        let paid = matches!(session.payment_status.as_deref(), Some("paid"));
        if !paid || session.customer_email.is_none() {
            return Ok(Outcome::Ignored);
        }
        let event = delivery.event;
        warn!(event_id = %event.id, session_id = %session.id, "guest checkout paid without a customer; parked as unmapped");
        self.store
            .park_unmapped(
                &format!("guest-checkout:{}", session.id),
                &event.id,
                &event.event_type,
                delivery.now,
            )
            .await?;
        Ok(Outcome::Unmapped)
    }

    async fn park(&self, customer_id: &CustomerId, delivery: Delivery<'_>) -> Result<()> {
        let event = delivery.event;
        self.store
            .park_unmapped(
                customer_id.as_str(),
                &event.id,
                &event.event_type,
                delivery.now,
            )
            .await
    }
}

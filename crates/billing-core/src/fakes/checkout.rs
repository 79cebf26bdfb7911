//! The Checkout port of the fake Stripe: prices, Checkout and portal sessions.

use async_trait::async_trait;

use super::{FakeStripe, lock};
use crate::error::Result;
use crate::ports::{
    Checkout, CheckoutSessionInfo, CreatedSession, NewCheckoutSession, NewPortalSession, PriceInfo,
};

#[async_trait]
impl Checkout for FakeStripe {
    async fn price_by_lookup_key(&self, lookup_key: &str) -> Result<Option<PriceInfo>> {
        self.enter("ListPrices")?;
        Ok(lock(&self.state)
            .prices
            .iter()
            .find(|price| price.lookup_key.as_deref() == Some(lookup_key))
            .cloned())
    }

    async fn create_session(&self, session: &NewCheckoutSession) -> Result<CreatedSession> {
        self.enter("CreateCheckoutSession")?;
        let mut state = lock(&self.state);
        // Like Stripe: a promotion code it does not know is the caller's mistake.
        if let Some(code) = &session.promotion_code
            && !state.promotion_codes.contains(code)
        {
            return Err(crate::error::Error::Rejected {
                service: crate::error::Upstream::Stripe,
                operation: "CreateCheckoutSession",
                param: Some("discounts[0][promotion_code]".into()),
                code: Some("resource_missing".into()),
            });
        }
        if let Some(id) = state.sessions_by_key.get(&session.idempotency_key) {
            let id = id.clone();
            return Ok(CreatedSession {
                url: format!("https://checkout.stripe.test/{id}"),
                id,
            });
        }
        let id = format!("cs_test_fake{}", state.sessions.len() + 1);
        state
            .sessions_by_key
            .insert(session.idempotency_key.clone(), id.clone());
        state.sessions.push((
            session.clone(),
            CheckoutSessionInfo {
                id: id.clone(),
                customer_id: Some(session.customer_id.to_string()),
                client_reference_id: Some(session.client_reference_id.clone()),
                payment_status: "unpaid".into(),
                status: Some("open".into()),
            },
        ));
        Ok(CreatedSession {
            url: format!("https://checkout.stripe.test/{id}"),
            id,
        })
    }

    async fn session(&self, session_id: &str) -> Result<Option<CheckoutSessionInfo>> {
        self.enter("RetrieveCheckoutSession")?;
        Ok(lock(&self.state)
            .sessions
            .iter()
            .find(|(_, info)| info.id == session_id)
            .map(|(_, info)| info.clone()))
    }

    async fn create_portal_session(&self, session: &NewPortalSession) -> Result<String> {
        self.enter("CreateBillingPortalSession")?;
        let mut state = lock(&self.state);
        state.portal_sessions.push(session.clone());
        Ok(format!(
            "https://billing.stripe.test/session/{}",
            state.portal_sessions.len()
        ))
    }
}

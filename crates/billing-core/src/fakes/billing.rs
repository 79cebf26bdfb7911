//! The Billing port of the fake Stripe: customers and subscriptions.

use std::sync::atomic::Ordering;

use async_trait::async_trait;

use super::{FakeCustomer, FakeStripe, lock};
use crate::domain::{CustomerId, Email, NewCustomer, StripeCustomer, UserSub, customer_metadata};
use crate::error::Result;
use crate::plans::{PlanName, SubscriptionState};
use crate::ports::Billing;

#[async_trait]
impl Billing for FakeStripe {
    async fn customers_by_sub(&self, sub: &UserSub) -> Result<Vec<StripeCustomer>> {
        self.enter("SearchCustomers")?;
        Ok(self.matching(|customer| {
            customer
                .metadata
                .get(customer_metadata::COGNITO_SUB)
                .map(String::as_str)
                == Some(sub.as_str())
        }))
    }

    async fn customers_by_email(&self, email: &Email) -> Result<Vec<StripeCustomer>> {
        self.enter("SearchCustomers")?;
        Ok(self.matching(|customer| customer.email.as_deref() == Some(email.as_str())))
    }

    async fn create_customer(&self, new: &NewCustomer) -> Result<CustomerId> {
        self.enter("CreateCustomer")?;
        let mut state = lock(&self.state);
        if let Some(id) = state.by_idempotency_key.get(&new.idempotency_key) {
            return Ok(id.clone());
        }
        let id = CustomerId::parse(format!("cus_fake{}", state.customers.len() + 1))
            .unwrap_or_else(|_| unreachable!("fake ids are well formed"));
        let created = state.customers.len() as i64;
        state.customers.push(FakeCustomer {
            id: id.clone(),
            name: new.name.clone(),
            email: new.email.as_ref().map(|email| email.as_str().to_owned()),
            metadata: new.metadata.clone(),
            created,
        });
        state
            .by_idempotency_key
            .insert(new.idempotency_key.clone(), id.clone());
        self.creates.fetch_add(1, Ordering::SeqCst);
        Ok(id)
    }

    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionState>> {
        self.enter("RetrieveSubscription")?;
        Ok(lock(&self.state)
            .subscriptions
            .iter()
            .find(|s| s.id == id)
            .cloned())
    }

    async fn payment_intent_customer(&self, payment_intent_id: &str) -> Result<Option<String>> {
        self.enter("RetrievePaymentIntent")?;
        Ok(lock(&self.state)
            .payment_intent_customers
            .get(payment_intent_id)
            .cloned())
    }

    async fn product_plan(&self, product_id: &str) -> Result<Option<PlanName>> {
        self.enter("RetrieveProduct")?;
        Ok(lock(&self.state).product_plans.get(product_id).cloned())
    }

    async fn checkout_line_items(
        &self,
        session_id: &str,
    ) -> Result<Vec<crate::ports::CheckoutLineItem>> {
        self.enter("ListCheckoutLineItems")?;
        Ok(lock(&self.state)
            .sessions
            .iter()
            .filter(|(_, info)| info.id == session_id)
            .map(|(request, _)| crate::ports::CheckoutLineItem {
                price_id: Some(request.price_id.clone()),
                product_id: None,
                quantity: request.quantity.map(|quantity| quantity as i64),
                amount_total: None,
                currency: None,
            })
            .collect())
    }

    async fn product_stack_template(&self, product_id: &str) -> Result<Option<String>> {
        self.enter("RetrieveProduct")?;
        Ok(lock(&self.state).stack_templates.get(product_id).cloned())
    }

    async fn delete_customer(&self, customer_id: &CustomerId) -> Result<()> {
        self.enter("DeleteCustomer")?;
        let mut state = lock(&self.state);
        state
            .customers
            .retain(|customer| &customer.id != customer_id);
        state
            .subscriptions
            .retain(|subscription| subscription.customer_id != customer_id.as_str());
        Ok(())
    }

    async fn subscriptions_of(&self, customer_id: &CustomerId) -> Result<Vec<SubscriptionState>> {
        self.enter("ListSubscriptions")?;
        Ok(lock(&self.state)
            .subscriptions
            .iter()
            .filter(|subscription| subscription.customer_id == customer_id.as_str())
            .cloned()
            .collect())
    }
}

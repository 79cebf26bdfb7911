//! The Stripe side of customers and subscriptions.

use async_trait::async_trait;

use crate::domain::{CustomerId, Email, NewCustomer, StripeCustomer, UserSub};
use crate::error::Result;
use crate::plans::{PlanName, SubscriptionState};

/// The Stripe side of customers and subscriptions.
#[async_trait]
pub trait Billing: Send + Sync {
    /// Customers whose metadata names this Cognito sub (not deleted).
    async fn customers_by_sub(&self, sub: &UserSub) -> Result<Vec<StripeCustomer>>;

    /// Customers with this email (not deleted).
    async fn customers_by_email(&self, email: &Email) -> Result<Vec<StripeCustomer>>;

    /// Creates the customer with `customer.idempotency_key`, so a repeat returns the first one.
    async fn create_customer(&self, customer: &NewCustomer) -> Result<CustomerId>;

    /// Deletes the customer, which cancels its subscriptions; an absent one is not an error.
    async fn delete_customer(&self, customer_id: &CustomerId) -> Result<()>;

    /// Every subscription of the customer, whatever its status, with its plan resolved.
    async fn subscriptions_of(&self, customer_id: &CustomerId) -> Result<Vec<SubscriptionState>>;

    /// The subscription as Stripe has it now, plan resolved; `None` when it does not exist.
    async fn subscription(&self, id: &str) -> Result<Option<SubscriptionState>>;

    /// The customer of a payment intent; `None` for a guest's payment or an unknown intent.
    async fn payment_intent_customer(&self, payment_intent_id: &str) -> Result<Option<String>>;

    /// The plan named by a product's metadata.
    async fn product_plan(&self, product_id: &str) -> Result<Option<PlanName>>;

    /// What a Checkout session sold (Stripe's events leave the line items out).
    async fn checkout_line_items(&self, session_id: &str) -> Result<Vec<CheckoutLineItem>>;

    /// The CloudFormation template a product's metadata names (`stack_template_url`): its
    /// subscriptions get a stack of it while they are active.
    async fn product_stack_template(&self, product_id: &str) -> Result<Option<String>>;
}

/// One line of what a Checkout session sold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutLineItem {
    pub price_id: Option<String>,
    pub product_id: Option<String>,
    pub quantity: Option<i64>,
    pub amount_total: Option<i64>,
    pub currency: Option<String>,
}

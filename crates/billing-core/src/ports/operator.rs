//! What an operator's tools need beyond the webhook's ports: Stripe's account listed object by
//! object (an import), every link (an audit), a stored record to compare with, and the users'
//! attributes as Cognito holds them.

use async_trait::async_trait;

use crate::domain::{CustomerId, CustomerLink, UserPoolId, UserSub, Username};
use crate::error::Result;

use super::records::BillingRecord;

/// A list endpoint of Stripe's API that an import reads to its last page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StripeList {
    Products,
    Prices,
    TaxRates,
    Customers,
}

impl StripeList {
    pub fn path(self) -> &'static str {
        match self {
            Self::Products => "/products",
            Self::Prices => "/prices",
            Self::TaxRates => "/tax_rates",
            Self::Customers => "/customers",
        }
    }

    /// The object each lists, as `object` names it.
    pub fn object(self) -> &'static str {
        match self {
            Self::Products => "product",
            Self::Prices => "price",
            Self::TaxRates => "tax_rate",
            Self::Customers => "customer",
        }
    }
}

/// One object as Stripe lists it: its id to page by, and its JSON, read like an event's object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    pub id: String,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectsPage {
    pub objects: Vec<ListedObject>,
    pub has_more: bool,
}

/// Stripe's account, listed: every product, price (archived too), tax rate and customer.
#[async_trait]
pub trait AccountListing: Send + Sync {
    async fn objects_page(
        &self,
        list: StripeList,
        starting_after: Option<&str>,
    ) -> Result<ObjectsPage>;
}

/// What the table holds for an operator's tools, beyond what the webhook reads.
#[async_trait]
pub trait OperatorStore: Send + Sync {
    /// Every user <-> customer link (a scan: for tools, never on a request's path).
    async fn all_links(&self) -> Result<Vec<CustomerLink>>;

    /// The stored record with the same identity as `record`, if any.
    async fn stored_record(&self, record: &BillingRecord) -> Result<Option<BillingRecord>>;

    /// Forgets the events parked for this customer (once it is linked and synced by hand).
    async fn clear_unmapped(&self, customer_id: &str) -> Result<usize>;
}

/// A user as the pool holds it, for an operator to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub username: Username,
    pub sub: UserSub,
    pub email: Option<String>,
    pub email_verified: bool,
    /// CONFIRMED, FORCE_CHANGE_PASSWORD, ...
    pub status: String,
    pub enabled: bool,
    /// `custom:plan_type`
    pub plan: Option<String>,
    /// `custom:stripe_customer_id`
    pub customer_id: Option<String>,
}

/// Reading users as the pool holds them.
#[async_trait]
pub trait UserRecords: Send + Sync {
    async fn user_record(
        &self,
        pool_id: &UserPoolId,
        username: &Username,
    ) -> Result<Option<UserRecord>>;

    /// Every user whose standard attribute (`sub` or `email`) has this value, verified or not.
    async fn user_records_where(
        &self,
        pool_id: &UserPoolId,
        attribute: &str,
        value: &str,
    ) -> Result<Vec<UserRecord>>;
}

/// An operator names a user by sub, e-mail or username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserQuery {
    Sub(UserSub),
    Email(crate::domain::Email),
    Username(Username),
    Customer(CustomerId),
}

impl UserQuery {
    /// `cus_...` is a customer, something with `@` an e-mail, a UUID a sub, else a username.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if raw.starts_with("cus_") {
            return CustomerId::parse(raw).ok().map(Self::Customer);
        }
        if raw.contains('@') {
            return crate::domain::Email::parse(raw).ok().map(Self::Email);
        }
        if looks_like_uuid(raw)
            && let Ok(sub) = UserSub::parse(raw)
        {
            return Some(Self::Sub(sub));
        }
        Username::parse(raw).ok().map(Self::Username)
    }
}

fn looks_like_uuid(raw: &str) -> bool {
    raw.len() == 36
        && raw.char_indices().all(|(at, c)| match at {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_should_be_named_by_sub_email_username_or_customer() {
        assert!(matches!(
            UserQuery::parse("0f8fad5b-d9cb-469f-a165-70867728950e"),
            Some(UserQuery::Sub(_))
        ));
        assert!(matches!(
            UserQuery::parse("ada@example.com"),
            Some(UserQuery::Email(_))
        ));
        assert!(matches!(
            UserQuery::parse("cus_123"),
            Some(UserQuery::Customer(_))
        ));
        assert!(matches!(
            UserQuery::parse("ada"),
            Some(UserQuery::Username(_))
        ));
        assert_eq!(UserQuery::parse(""), None);
    }
}

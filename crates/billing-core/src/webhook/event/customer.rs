//! Customers, linked to a Cognito user by their metadata.

use serde::Deserialize;

use super::expandable::null_as_default;
use super::{Metadata, email};
use crate::domain::{Email, customer_metadata};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerObject {
    pub id: String,
    /// `None` when absent or not an address.
    pub email: Option<Email>,
    pub name: Option<String>,
    pub metadata: Metadata,
    /// The object says `deleted: true`, or the event is `customer.deleted` (whose object is the
    /// customer as it was, without the flag).
    pub deleted: bool,
    pub created: Option<i64>,
}

impl CustomerObject {
    /// The Cognito user the customer was created for, from its metadata.
    pub fn cognito_sub(&self) -> Option<&str> {
        self.metadata
            .get(customer_metadata::COGNITO_SUB)
            .map(String::as_str)
            .filter(|sub| !sub.is_empty())
    }
}

// ---- as Stripe sends it -------------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct RawCustomer {
    id: String,
    email: Option<String>,
    name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
    #[serde(default, deserialize_with = "null_as_default")]
    deleted: bool,
    created: Option<i64>,
}

impl RawCustomer {
    pub(super) fn into_object(self, deleted_by_event: bool) -> CustomerObject {
        CustomerObject {
            id: self.id,
            email: email(self.email),
            name: self.name,
            metadata: self.metadata,
            deleted: self.deleted || deleted_by_event,
            created: self.created,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::webhook::event::test_support::*;

    #[test]
    fn when_customer_is_current_should_keep_its_fields() {
        let mut object = stripe_fixture("customer");
        let plain = customer(parse("customer.created", object.clone()));
        assert_eq!(
            plain,
            CustomerObject {
                id: "cus_QXg1o8vcGmoR32".into(),
                email: None,
                name: None,
                metadata: Metadata::new(),
                deleted: false,
                created: Some(1_234_567_890),
            }
        );
        object["email"] = json!("alice@example.com");
        object["name"] = json!("Alice");
        object["metadata"] = json!({ "cognito_sub": "4f1c-sub" });
        let linked = customer(parse("customer.updated", object));
        assert_eq!(linked.email.as_ref().unwrap().as_str(), "alice@example.com");
        assert_eq!(linked.name.as_deref(), Some("Alice"));
        assert_eq!(linked.cognito_sub(), Some("4f1c-sub"));
    }

    #[test]
    fn when_customer_email_is_not_an_address_should_drop_it() {
        let mut object = stripe_fixture("customer");
        object["email"] = json!("not an email");
        assert_eq!(customer(parse("customer.updated", object)).email, None);
    }

    #[test]
    fn when_customer_is_deleted_in_the_old_shape_should_say_deleted() {
        let event = localstripe_event("customer.deleted.json");
        let customer = customer(event.object);
        assert!(customer.deleted);
        assert_eq!(customer.id, "cus_LocalAlice0001");
        assert_eq!(
            customer.email.as_ref().unwrap().as_str(),
            "alice@example.com"
        );
        assert_eq!(customer.cognito_sub(), Some("4f1c-sub"));
        assert_eq!(customer.created, Some(1_700_000_010));
    }

    #[test]
    fn when_customer_is_a_deleted_stub_should_say_deleted() {
        let customer = customer(parse(
            "customer.deleted",
            stripe_fixture("deleted_customer"),
        ));
        assert!(customer.deleted);
        assert_eq!(customer.id, "cus_QXg1o8vcGmoR32");
    }
}

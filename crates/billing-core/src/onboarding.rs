//! One Stripe customer per Cognito user, linked both ways.
//!
//! Used by the post-confirmation trigger, and by checkout when the trigger never ran. Every step
//! is safe to repeat: links are read first, Stripe is searched before anything is created, the
//! create carries an idempotency key derived from the user, and the links are written with
//! conditions.

use tracing::warn;

use crate::domain::{CognitoUser, CustomerId, CustomerLink, NewCustomer, StripeCustomer};
use crate::error::{Error, Result, Upstream};
use crate::ports::{Billing, CustomerLinks, Directory};

/// Where the user's customer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerSource {
    /// The links already existed.
    AlreadyLinked,
    /// Not linked, but a customer for this user already existed in Stripe (a write was lost).
    FoundInStripe,
    Created,
}

impl CustomerSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlreadyLinked => "already_linked",
            Self::FoundInStripe => "found_in_stripe",
            Self::Created => "created",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onboarded {
    pub customer_id: CustomerId,
    pub source: CustomerSource,
    /// Whether `custom:stripe_customer_id` had to be written on the Cognito user.
    pub directory_updated: bool,
}

/// Ensures the user's Stripe customer and its links.
#[derive(Debug)]
pub struct OnboardingService<'a, L, B, D> {
    pub links: &'a L,
    pub billing: &'a B,
    pub directory: &'a D,
}

impl<L: CustomerLinks, B: Billing, D: Directory> OnboardingService<'_, L, B, D> {
    /// `known_customer_id` is the user's current `custom:stripe_customer_id`, if any: when it
    /// already names the linked customer, Cognito is not called.
    pub async fn ensure_customer(
        &self,
        user: &CognitoUser,
        known_customer_id: Option<&str>,
    ) -> Result<Onboarded> {
        let (customer_id, source) = match self.links.customer_of_user(&user.sub).await? {
            Some(link) => (link.customer_id, CustomerSource::AlreadyLinked),
            None => {
                let (found, source) = self.find_or_create(user).await?;
                (self.link(user, found).await?, source)
            }
        };

        let directory_updated = known_customer_id != Some(customer_id.as_str());
        if directory_updated {
            self.directory
                .set_customer_id(&user.pool_id, &user.username, &customer_id)
                .await?;
        }
        Ok(Onboarded {
            customer_id,
            source,
            directory_updated,
        })
    }

    async fn find_or_create(&self, user: &CognitoUser) -> Result<(CustomerId, CustomerSource)> {
        let by_sub = self.billing.customers_by_sub(&user.sub).await?;
        // An address the user has not verified may be someone else's: it finds nothing.
        let by_email = match (&user.email, by_sub.is_empty()) {
            (Some(email), true) if user.email_verified => {
                self.billing.customers_by_email(email).await?
            }
            _ => Vec::new(),
        };
        if let Some(existing) = pick_existing_customer(user, &by_sub, &by_email) {
            return Ok((existing, CustomerSource::FoundInStripe));
        }
        let created = self
            .billing
            .create_customer(&NewCustomer::for_user(user))
            .await?;
        Ok((created, CustomerSource::Created))
    }

    /// Writes the links; when another invocation linked first, its customer wins.
    async fn link(&self, user: &CognitoUser, customer_id: CustomerId) -> Result<CustomerId> {
        let link = CustomerLink {
            sub: user.sub.clone(),
            customer_id,
            pool_id: user.pool_id.clone(),
            username: user.username.clone(),
        };
        match self.links.link(&link).await {
            Ok(()) => Ok(link.customer_id),
            Err(Error::ConditionalCheckFailed) => {
                match self.links.customer_of_user(&user.sub).await? {
                    Some(existing) => {
                        if existing.customer_id != link.customer_id {
                            warn!(
                                sub = %user.sub,
                                linked = %existing.customer_id,
                                unlinked = %link.customer_id,
                                "user was linked concurrently to another customer; keeping the link"
                            );
                        }
                        Ok(existing.customer_id)
                    }
                    None => Err(Error::InvalidData {
                        service: Upstream::DynamoDb,
                        detail: format!(
                            "customer {} is already linked to another user",
                            link.customer_id
                        ),
                    }),
                }
            }
            Err(other) => Err(other),
        }
    }
}

/// The customer to adopt instead of creating one: the oldest whose metadata names this user,
/// else the oldest with the user's email that names no other user.
pub fn pick_existing_customer(
    user: &CognitoUser,
    by_sub: &[StripeCustomer],
    by_email: &[StripeCustomer],
) -> Option<CustomerId> {
    let oldest = |candidates: &mut dyn Iterator<Item = &StripeCustomer>| {
        candidates
            .filter(|customer| !customer.deleted)
            .min_by_key(|customer| (customer.created, customer.id.clone()))
            .map(|customer| customer.id.clone())
    };
    oldest(
        &mut by_sub
            .iter()
            .filter(|customer| customer.cognito_sub() == Some(user.sub.as_str())),
    )
    .or_else(|| {
        oldest(&mut by_email.iter().filter(|customer| {
            customer
                .cognito_sub()
                .is_none_or(|sub| sub == user.sub.as_str())
        }))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::{Email, UserPoolId, UserSub, Username};

    fn user() -> CognitoUser {
        CognitoUser {
            pool_id: UserPoolId::parse("us-east-1_Abc").unwrap(),
            username: Username::parse("alice").unwrap(),
            sub: UserSub::parse("sub-alice").unwrap(),
            email: Some(Email::parse("alice@example.com").unwrap()),
            email_verified: true,
        }
    }

    fn customer(id: &str, created: i64, sub: Option<&str>) -> StripeCustomer {
        StripeCustomer {
            id: CustomerId::parse(id).unwrap(),
            created,
            metadata: sub
                .map(|sub| BTreeMap::from([("cognito_sub".to_owned(), sub.to_owned())]))
                .unwrap_or_default(),
            deleted: false,
        }
    }

    #[test]
    fn when_several_match_the_sub_should_pick_the_oldest() {
        let by_sub = [
            customer("cus_new", 20, Some("sub-alice")),
            customer("cus_old", 10, Some("sub-alice")),
        ];
        assert_eq!(
            pick_existing_customer(&user(), &by_sub, &[]),
            Some(CustomerId::parse("cus_old").unwrap())
        );
    }

    #[test]
    fn when_email_matches_a_customer_of_another_user_should_not_adopt_it() {
        let by_email = [customer("cus_bob", 10, Some("sub-bob"))];
        assert_eq!(pick_existing_customer(&user(), &[], &by_email), None);
    }

    #[test]
    fn when_email_matches_an_unlinked_customer_should_adopt_it() {
        let by_email = [
            customer("cus_bob", 5, Some("sub-bob")),
            customer("cus_paid_first", 10, None),
        ];
        assert_eq!(
            pick_existing_customer(&user(), &[], &by_email),
            Some(CustomerId::parse("cus_paid_first").unwrap())
        );
    }

    #[test]
    fn when_search_returns_a_foreign_sub_should_ignore_it() {
        let by_sub = [customer("cus_x", 1, Some("sub-other"))];
        assert_eq!(pick_existing_customer(&user(), &by_sub, &[]), None);
    }

    #[test]
    fn deleted_customers_are_never_adopted() {
        let mut deleted = customer("cus_gone", 1, Some("sub-alice"));
        deleted.deleted = true;
        assert_eq!(pick_existing_customer(&user(), &[deleted], &[]), None);
    }
}

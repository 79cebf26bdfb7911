//! The one DynamoDB table: item keys and attribute names.
//!
//! Key schema: `pk` (S) + `sk` (S); GSI `gsi1` on `gsi1pk` (S) + `gsi1sk` (S); TTL attribute
//! `expires_at` (N, unix seconds). On-demand capacity, point-in-time recovery.
//!
//! | pk               | sk         | item                    | access pattern                               |
//! |------------------|------------|-------------------------|----------------------------------------------|
//! | `USER#<sub>`     | `CUSTOMER` | user -> customer link   | GetItem: trigger, checkout, /me, portal      |
//! | `CUSTOMER#<cus>` | `USER`     | customer -> user link   | GetItem: every webhook event for a customer  |
//! | `CHECKOUT#<cs>`  | `SESSION`  | checkout session record | GetItem: success return; gsi1 `USER#<sub>` / |
//! |                  |            | (owner, one-time key    | `CHECKOUT#<cs>`: the user's sessions, for    |
//! |                  |            | hash), TTL 7 days       | account deletion                             |
//!
//! | `CUSTOMER#<cus>` | `SUB#<id>`  | subscription state + the `created`/id of its event | Query: the customer's subscriptions (reconcile) |
//! | `CUSTOMER#<cus>` | `INVOICE#<id>`, `PAYMENT#<id>`, `CHECKOUT#<cs>`, `PROFILE`, `DELINQUENCY` | documents a billing page shows | Query by customer |
//! | `PRODUCT#<id>` / `PRICE#<id>` / `TAX_RATE#<id>` | same word | the catalogue | GetItem; gsi1 `LOOKUP#<lookup_key>`: price by lookup key |
//! | `EVENT#<evt>`    | `EVENT`    | processed Stripe event: processing (with a lease) or done; TTL 35 days | conditional PutItem per delivery |
//! | `UNMAPPED#<cus>` | `EVENT#<evt>` | event of a customer nobody is linked to | gsi1 `UNMAPPED` / `<created>#<cus>`: list them |
//! | `CUSTOMER#<cus>` | `PROVISIONING` | the customer's provisioning lease (holder, until when); TTL | conditional PutItem before provisioning |
//! | `SUBSCRIPTION#<id>` | `STACK#<name>` | CloudFormation stack of a subscription: active, deleting, deleted | Query by subscription; gsi1 `STACKSTATE#<state>`: the sweep |
//!
//! Versioned items (subscriptions, documents) are written only if their event's `created` is
//! newer than the stored one (condition on `event_created`).
//!
//! Both links are written in one transaction, each conditional on not existing, so a user can
//! never be linked to two customers nor a customer to two users.

pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1: &str = "gsi1";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const EXPIRES_AT: &str = "expires_at";

pub mod attr {
    pub const SUB: &str = "sub";
    pub const CUSTOMER_ID: &str = "customer_id";
    pub const USER_POOL_ID: &str = "user_pool_id";
    pub const USERNAME: &str = "username";
    pub const CREATED_AT: &str = "created_at";
    pub const KEY_HASH: &str = "key_hash";
    pub const LOOKUP_KEY: &str = "lookup_key";
    pub const COMPLETED: &str = "completed";
}

pub const SK_CUSTOMER: &str = "CUSTOMER";
pub const SK_USER: &str = "USER";
pub const SK_SESSION: &str = "SESSION";

/// Checkout records outlive the session (24 h) long enough for a late success return.
pub const CHECKOUT_RECORD_TTL_SECS: i64 = 7 * 24 * 3600;

/// Processed events are kept past Stripe's 30-day resend window.
pub const EVENT_TTL_SECS: i64 = 35 * 24 * 3600;
/// A delivery that claimed an event and died (without releasing it) is taken over after this
/// long: longer than the webhook function's timeout (20 s in template.yaml), so a live delivery
/// is never taken over.
pub const EVENT_LEASE_SECS: i64 = 30;
/// A provisioning whose holder died is taken over after this long (see `provisioning::under_lease`).
pub const PROVISIONING_LEASE_SECS: i64 = 30;
pub const SK_PROVISIONING: &str = "PROVISIONING";

pub fn event_pk(event_id: &str) -> String {
    format!("EVENT#{event_id}")
}

pub fn checkout_pk(session_id: &str) -> String {
    format!("CHECKOUT#{session_id}")
}

pub fn user_pk(sub: &str) -> String {
    format!("USER#{sub}")
}

pub fn customer_pk(customer_id: &str) -> String {
    format!("CUSTOMER#{customer_id}")
}

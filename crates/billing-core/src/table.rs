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
//! | `CUSTOMER#<cus>` | `SUB#<id>`  | subscription state + the `created`/id of its event; gsi1 `REVIEW` / `<review_at>#<cus>#<id>` while it has a review time | Query: the customer's subscriptions (reconcile); gsi1 `REVIEW` up to now: the reconciler's due reviews |
//! | `RECONCILER`     | `CURSOR#<name>` | a reconciler cursor, e.g. `events`: the `created` up to which listed Stripe events are applied | GetItem, conditional UpdateItem (forward only) |
//! | `USAGE#<key id>` | `DAY#<yyyy-mm-dd>#<usage plan>` | a usage slot's cursor: calls Stripe has (`reported`) and the delta being sent (`pending`); TTL 60 days | GetItem, conditional PutItem (compare and set); Query by key and days (`GET /me`) |
//! | `CUSTOMER#<cus>` | `INVOICE#<id>`, `PAYMENT#<pi>`, `INVOICE_PAYMENT#<pi>`, `CHECKOUT#<cs>`, `PROFILE`, `DELINQUENCY` | records a billing page shows (`ports::BillingRecord`) | Query by customer |
//! | `PRODUCT#<id>` / `PRICE#<id>` / `TAX_RATE#<id>` | same word | the catalogue | GetItem; gsi1 `CATALOG` / `PRODUCT#<id>` or `LOOKUP#<lookup_key>` (an active price with one): `GET /plans` |
//! | `EVENT#<evt>`    | `EVENT`    | processed Stripe event: processing (with a lease) or done; TTL 35 days | conditional PutItem per delivery |
//! | `UNMAPPED#<cus>` | `EVENT#<evt>` | event of a customer nobody is linked to; TTL 35 days | gsi1 `UNMAPPED` / `<created>#<cus>`: list them |
//! | `DELETED#<cus>` | `CUSTOMER` | tombstone of a deleted account's customer; TTL 35 days | GetItem: events about the customer are acknowledged, not kept |
//! | `UNREADABLE#<evt>` | `EVENT`  | verified event we could not read (type, api_version, field, reason); TTL 35 days | gsi1 `UNREADABLE` / `<received>#<evt>`: list them |
//! | `CUSTOMER#<cus>` | `PROVISIONING` | the customer's provisioning lease (holder, until when); TTL | conditional PutItem before provisioning; in a subscription event's claim transaction |
//! | `CUSTOMER#<cus>` | `PROVISIONED` | what the webhook last applied to the user: sub, plan, usage plan, key id, the subscriptions whose stack is known active (absent: applied in full next time) | Query `sk >= PROVISIONED`: link, subscriptions and this in one read; written in the delivery's commit transaction |
//! | `USER#<sub>`    | `ROTATION#<at>` | an API key rotation of the user (the rate limit's memory); TTL 1 day | Query by user (consistent), under the provisioning lease |
//! | `SUBSCRIPTION#<id>` | `STACK#<name>` | CloudFormation stack of a subscription: active, deleting, deleted (TTL 35 days once deleted) | Query by subscription; gsi1 `STACKSTATE#<state>`: the sweep |
//!
//! Versioned items (subscriptions, records) are written only if their event's `created` is
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
    /// Versioned items: the `created` and id of the event that carried the stored state.
    pub const EVENT_CREATED: &str = "event_created";
    pub const EVENT_ID: &str = "event_id";
    /// Versioned items: the state as JSON.
    pub const DOC: &str = "doc";
    /// Subscriptions, events (`processing`, `done`) and stacks.
    pub const STATUS: &str = "status";
    pub const LEASE_UNTIL: &str = "lease_until";
    pub const HOLDER: &str = "holder";
    pub const EVENT_TYPE: &str = "event_type";
    pub const STACK_NAME: &str = "stack_name";
    pub const UPDATED_AT: &str = "updated_at";
    pub const CURSOR: &str = "cursor";
    pub const REPORTED: &str = "reported";
    pub const PENDING: &str = "pending";
    pub const USAGE_PLAN_ID: &str = "usage_plan_id";
    pub const DAY: &str = "day";
    pub const REVIEW_AT: &str = "review_at";
    pub const PLAN: &str = "plan";
    pub const API_KEY_ID: &str = "api_key_id";
    /// The provisioned state's subscriptions whose stack is known active (a string set).
    pub const STACKS: &str = "stacks";
}

pub const SK_CUSTOMER: &str = "CUSTOMER";
pub const SK_USER: &str = "USER";
pub const SK_SESSION: &str = "SESSION";
pub const SK_EVENT: &str = "EVENT";
pub const SK_PROVISIONING: &str = "PROVISIONING";
/// What the webhook last applied to the customer's user; sorts just before `PROVISIONING`,
/// `SUB#` and `USER`, so one Query from it reads everything a delivery decides on.
pub const SK_PROVISIONED: &str = "PROVISIONED";
pub const SK_PROFILE: &str = "PROFILE";
pub const SK_DELINQUENCY: &str = "DELINQUENCY";
pub const SK_PRODUCT: &str = "PRODUCT";
pub const SK_PRICE: &str = "PRICE";
pub const SK_TAX_RATE: &str = "TAX_RATE";
/// The sort keys of a customer's subscriptions begin with it.
pub const SUBSCRIPTION_SK_PREFIX: &str = "SUB#";
/// The sort keys of a subscription's stacks begin with it.
pub const STACK_SK_PREFIX: &str = "STACK#";
/// Checkout session keys begin with it.
pub const CHECKOUT_KEY_PREFIX: &str = "CHECKOUT#";
/// The gsi1 partition of every unmapped event.
pub const GSI1_UNMAPPED: &str = "UNMAPPED";
/// Every product (gsi1sk `PRODUCT#<id>`) and every active price with a lookup key (gsi1sk
/// `LOOKUP#<lookup_key>`): the pricing page's one Query.
pub const GSI1_CATALOG: &str = "CATALOG";
/// The gsi1 partition of every unreadable event.
pub const GSI1_UNREADABLE: &str = "UNREADABLE";
/// The gsi1 partition of the subscriptions the reconciler is to look at again, by time.
pub const GSI1_REVIEW: &str = "REVIEW";
/// The partition of the reconciler's cursors.
pub const RECONCILER_PK: &str = "RECONCILER";

/// Processed events are kept past Stripe's 30-day resend window; so are unreadable and
/// unmapped (parked) events.
pub const EVENT_TTL_SECS: i64 = 35 * 24 * 3600;
/// A delivery that claimed an event and died (without releasing it) is taken over after this
/// long: longer than the webhook function's timeout (20 s in template.yaml), so a live delivery
/// is never taken over.
pub const EVENT_LEASE_SECS: i64 = 30;
/// A provisioning whose holder died is taken over after this long (see `provisioning::under_lease`).
pub const PROVISIONING_LEASE_SECS: i64 = 30;

/// DynamoDB's limit on the keys of one BatchGetItem.
pub const BATCH_GET_MAX_KEYS: usize = 100;

pub fn event_pk(event_id: &str) -> String {
    format!("EVENT#{event_id}")
}

/// The event id of an `EVENT#<evt>` key.
pub fn event_id_of_sk(key: &str) -> &str {
    key.trim_start_matches("EVENT#")
}

/// The pk of a checkout session's record, and the sk of what the customer's page shows of it.
pub fn checkout_pk(session_id: &str) -> String {
    format!("{CHECKOUT_KEY_PREFIX}{session_id}")
}

pub fn user_pk(sub: &str) -> String {
    format!("USER#{sub}")
}

/// The sort keys of a user's key rotations begin with it.
pub const ROTATION_SK_PREFIX: &str = "ROTATION#";

/// A rotation's sort key: by time (zero-padded, so they sort as numbers).
pub fn rotation_sk(at: i64) -> String {
    format!("{ROTATION_SK_PREFIX}{at:012}")
}

/// Rotations are remembered this long (the rate limit looks back one hour).
pub const ROTATION_MEMORY_SECS: i64 = 24 * 3600;

pub fn customer_pk(customer_id: &str) -> String {
    format!("CUSTOMER#{customer_id}")
}

pub fn subscription_sk(subscription_id: &str) -> String {
    format!("{SUBSCRIPTION_SK_PREFIX}{subscription_id}")
}

pub fn invoice_sk(invoice_id: &str) -> String {
    format!("INVOICE#{invoice_id}")
}

pub fn payment_sk(payment_intent_id: &str) -> String {
    format!("PAYMENT#{payment_intent_id}")
}

/// Which invoice the payment intent paid (from `invoice_payment` events).
pub fn invoice_payment_sk(payment_intent_id: &str) -> String {
    format!("INVOICE_PAYMENT#{payment_intent_id}")
}

pub fn product_pk(product_id: &str) -> String {
    format!("PRODUCT#{product_id}")
}

pub fn price_pk(price_id: &str) -> String {
    format!("PRICE#{price_id}")
}

/// The gsi1 sort key of the active price with this lookup key, in the `CATALOG` partition.
pub fn lookup_key_gsi1sk(lookup_key: &str) -> String {
    format!("LOOKUP#{lookup_key}")
}

pub fn tax_rate_pk(tax_rate_id: &str) -> String {
    format!("TAX_RATE#{tax_rate_id}")
}

/// The tombstone of a deleted account's customer.
pub fn deleted_customer_pk(customer_id: &str) -> String {
    format!("DELETED#{customer_id}")
}

pub fn unreadable_pk(event_id: &str) -> String {
    format!("UNREADABLE#{event_id}")
}

/// Unreadable events sort by when they were received.
pub fn unreadable_gsi1sk(received_at: i64, event_id: &str) -> String {
    format!("{received_at:012}#{event_id}")
}

pub fn unmapped_pk(customer_id: &str) -> String {
    format!("UNMAPPED#{customer_id}")
}

/// Unmapped events sort by when they were parked.
pub fn unmapped_gsi1sk(parked_at: i64, customer_id: &str) -> String {
    format!("{parked_at}#{customer_id}")
}

pub fn usage_pk(key_id: &str) -> String {
    format!("USAGE#{key_id}")
}

/// A usage slot's sort key: by day first, so one Query reads a key's days in a range.
pub fn usage_sk(day: &str, usage_plan_id: &str) -> String {
    format!("DAY#{day}#{usage_plan_id}")
}

pub fn cursor_sk(name: &str) -> String {
    format!("CURSOR#{name}")
}

/// Reviews sort by time (zero-padded, so as strings too), then customer and subscription.
pub fn review_gsi1sk(review_at: i64, customer_id: &str, subscription_id: &str) -> String {
    format!("{review_at:012}#{customer_id}#{subscription_id}")
}

/// The greatest review sort key at `now`: every review due by then sorts before it.
pub fn review_gsi1sk_upper(now: i64) -> String {
    format!("{now:012}#~")
}

pub fn stack_owner_pk(subscription_id: &str) -> String {
    format!("SUBSCRIPTION#{subscription_id}")
}

pub fn stack_sk(stack_name: &str) -> String {
    format!("{STACK_SK_PREFIX}{stack_name}")
}

/// The subscription of a stack item, from its pk.
pub fn subscription_of_stack_pk(pk: &str) -> &str {
    pk.trim_start_matches("SUBSCRIPTION#")
}

/// The gsi1 partition of the stacks in a state (`active`, `deleting`, `deleted`): the sweep.
pub fn stack_state_gsi1pk(state: &str) -> String {
    format!("STACKSTATE#{state}")
}

pub fn stack_gsi1sk(subscription_id: &str, stack_name: &str) -> String {
    format!("{subscription_id}#{stack_name}")
}

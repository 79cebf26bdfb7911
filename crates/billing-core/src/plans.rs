//! Plans and the plan a customer is entitled to.
//!
//! Stripe is the catalogue: a product's metadata `plan` names the plan. The deployment lists the
//! plans in order of precedence, lowest first, each with its API Gateway usage plan. A customer's
//! plan is computed from all of their subscriptions, never from the last event alone.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A plan list or a dunning policy that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanParseError {
    #[error("bad plan name in {0:?}")]
    BadPlanName(String),
    #[error("plan {0} listed twice")]
    ListedTwice(PlanName),
    #[error("no plan listed")]
    NoPlan,
    #[error("expected suspend or grace:<days>, got {0:?}")]
    BadPastDuePolicy(String),
}

/// A plan name from product metadata, e.g. `pro`.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct PlanName(String);

impl TryFrom<String> for PlanName {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::parse(raw.clone()).ok_or_else(|| format!("invalid plan name {raw:?}"))
    }
}

impl From<PlanName> for String {
    fn from(plan: PlanName) -> Self {
        plan.0
    }
}

impl PlanName {
    pub fn parse(raw: impl Into<String>) -> Option<Self> {
        let raw = raw.into().trim().to_owned();
        let valid = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        valid.then_some(Self(raw))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlanName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanConfig {
    pub name: PlanName,
    /// The API Gateway usage plan a key of this plan is attached to, if any.
    pub usage_plan_id: Option<String>,
}

/// The plans of a deployment, lowest precedence first. The first is the plan of a customer
/// without any entitling subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanCatalog {
    plans: Vec<PlanConfig>,
}

impl PlanCatalog {
    /// Parses `PLANS`: `free=usageplan1,pro=usageplan2`, lowest first; `free=` or `free`
    /// for a plan without a usage plan.
    pub fn parse(raw: &str) -> Result<Self, PlanParseError> {
        let mut plans: Vec<PlanConfig> = Vec::new();
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, usage_plan) = entry.split_once('=').unwrap_or((entry, ""));
            let name = PlanName::parse(name)
                .ok_or_else(|| PlanParseError::BadPlanName(entry.to_owned()))?;
            if plans.iter().any(|plan| plan.name == name) {
                return Err(PlanParseError::ListedTwice(name));
            }
            let usage_plan = usage_plan.trim();
            plans.push(PlanConfig {
                name,
                usage_plan_id: (!usage_plan.is_empty()).then(|| usage_plan.to_owned()),
            });
        }
        if plans.is_empty() {
            return Err(PlanParseError::NoPlan);
        }
        Ok(Self { plans })
    }

    pub fn lowest(&self) -> &PlanConfig {
        &self.plans[0]
    }

    pub fn get(&self, name: &PlanName) -> Option<&PlanConfig> {
        self.plans.iter().find(|plan| &plan.name == name)
    }

    /// The plan's precedence: 0 for the lowest.
    pub fn rank(&self, name: &PlanName) -> Option<usize> {
        self.plans.iter().position(|plan| &plan.name == name)
    }

    /// The highest plan of the deployment among these plans.
    pub fn highest<'a, 'p>(
        &'a self,
        plans: impl IntoIterator<Item = &'p PlanName>,
    ) -> Option<&'a PlanConfig> {
        plans
            .into_iter()
            .filter_map(|plan| self.rank(plan))
            .max()
            .map(|rank| &self.plans[rank])
    }

    /// The plan the subscriptions entitle to: the highest known plan among all items of the
    /// entitling subscriptions, else the lowest plan.
    pub fn effective_plan<'a>(
        &'a self,
        subscriptions: impl IntoIterator<Item = &'a SubscriptionState>,
        policy: &AccessPolicy,
        now: i64,
    ) -> &'a PlanConfig {
        self.highest(
            subscriptions
                .into_iter()
                .filter(|subscription| policy.entitles(subscription, now))
                .flat_map(SubscriptionState::plans),
        )
        .unwrap_or_else(|| self.lowest())
    }
}

/// Stripe's subscription statuses; an unknown one entitles to nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(from = "String", into = "String")]
pub enum SubscriptionStatus {
    Incomplete,
    IncompleteExpired,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Unpaid,
    Paused,
    Other(String),
}

impl SubscriptionStatus {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
            Self::Paused => "paused",
            Self::Other(other) => other,
        }
    }

    /// The subscription is over: its resources are to be torn down.
    pub fn is_ended(&self) -> bool {
        matches!(
            self,
            Self::Canceled | Self::Unpaid | Self::IncompleteExpired
        )
    }
}

impl FromStr for SubscriptionStatus {
    type Err = std::convert::Infallible;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        Ok(match raw {
            "incomplete" => Self::Incomplete,
            "incomplete_expired" => Self::IncompleteExpired,
            "trialing" => Self::Trialing,
            "active" => Self::Active,
            "past_due" => Self::PastDue,
            "canceled" => Self::Canceled,
            "unpaid" => Self::Unpaid,
            "paused" => Self::Paused,
            other => Self::Other(other.to_owned()),
        })
    }
}

impl From<String> for SubscriptionStatus {
    fn from(raw: String) -> Self {
        raw.parse().unwrap_or_else(|never| match never {})
    }
}

impl From<SubscriptionStatus> for String {
    fn from(status: SubscriptionStatus) -> Self {
        status.as_str().to_owned()
    }
}

impl fmt::Display for SubscriptionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What we keep of a Stripe subscription.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(from = "StoredSubscriptionState")]
pub struct SubscriptionState {
    pub id: String,
    pub customer_id: String,
    pub status: SubscriptionStatus,
    /// Every item, in Stripe's order (an add-on may come before the plan's price).
    pub items: Vec<SubscriptionItemState>,
    /// Unix seconds; on the subscription in old API versions, on its items in current ones.
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    /// When the subscription became past due, if known (unix seconds).
    pub past_due_since: Option<i64>,
    /// Stripe's `created` of the subscription (unix seconds).
    pub created: i64,
    /// The subscription's metadata, e.g. `cognito_sub` to find the user it belongs to.
    pub metadata: BTreeMap<String, String>,
}

/// One item of a subscription: its price, the price's product, and the plan they name.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubscriptionItemState {
    pub price_id: Option<String>,
    pub product_id: Option<String>,
    /// From the price's (or its product's) metadata `plan`; `None` when neither names one or
    /// the product has not been read yet.
    pub plan: Option<PlanName>,
}

impl SubscriptionState {
    /// The plans its items name, in item order.
    pub fn plans(&self) -> impl Iterator<Item = &PlanName> {
        self.items.iter().filter_map(|item| item.plan.as_ref())
    }

    /// The products of its items, in item order, once each.
    pub fn product_ids(&self) -> Vec<&str> {
        let mut products: Vec<&str> = Vec::new();
        for product in self
            .items
            .iter()
            .filter_map(|item| item.product_id.as_deref())
        {
            if !products.contains(&product) {
                products.push(product);
            }
        }
        products
    }
}

/// A stored subscription as any version wrote it: before several items were kept, one
/// `plan` / `price_id` / `product_id` stood for the first item.
#[derive(serde::Deserialize)]
struct StoredSubscriptionState {
    id: String,
    customer_id: String,
    status: SubscriptionStatus,
    items: Option<Vec<SubscriptionItemState>>,
    plan: Option<PlanName>,
    price_id: Option<String>,
    product_id: Option<String>,
    current_period_end: Option<i64>,
    cancel_at_period_end: bool,
    past_due_since: Option<i64>,
    created: i64,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

impl From<StoredSubscriptionState> for SubscriptionState {
    fn from(stored: StoredSubscriptionState) -> Self {
        let legacy = SubscriptionItemState {
            price_id: stored.price_id,
            product_id: stored.product_id,
            plan: stored.plan,
        };
        let items = stored.items.unwrap_or_else(|| {
            if legacy == SubscriptionItemState::default() {
                Vec::new()
            } else {
                vec![legacy]
            }
        });
        Self {
            id: stored.id,
            customer_id: stored.customer_id,
            status: stored.status,
            items,
            current_period_end: stored.current_period_end,
            cancel_at_period_end: stored.cancel_at_period_end,
            past_due_since: stored.past_due_since,
            created: stored.created,
            metadata: stored.metadata,
        }
    }
}

/// What `past_due` means for access (the dunning policy from config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PastDuePolicy {
    /// Keep access for this many seconds after the subscription became past due.
    Grace { seconds: i64 },
    /// Suspend access at once.
    Suspend,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessPolicy {
    pub past_due: PastDuePolicy,
}

impl Default for AccessPolicy {
    fn default() -> Self {
        Self {
            past_due: PastDuePolicy::Grace {
                seconds: 7 * 24 * 3600,
            },
        }
    }
}

impl AccessPolicy {
    /// Parses `PAST_DUE_POLICY`: `suspend`, or `grace:<days>`.
    pub fn parse(raw: &str) -> Result<Self, PlanParseError> {
        let invalid = || PlanParseError::BadPastDuePolicy(raw.to_owned());
        let past_due = match raw.trim() {
            "suspend" => PastDuePolicy::Suspend,
            other => {
                let days: i64 = other
                    .strip_prefix("grace:")
                    .and_then(|days| days.parse().ok())
                    .filter(|days| *days >= 0)
                    .ok_or_else(invalid)?;
                PastDuePolicy::Grace {
                    seconds: days * 24 * 3600,
                }
            }
        };
        Ok(Self { past_due })
    }

    /// Whether this subscription gives access to its plan at `now`.
    pub fn entitles(&self, subscription: &SubscriptionState, now: i64) -> bool {
        match subscription.status {
            SubscriptionStatus::Active | SubscriptionStatus::Trialing => true,
            SubscriptionStatus::PastDue => self
                .grace_ends_at(subscription, now)
                .is_some_and(|end| now < end),
            _ => false,
        }
    }

    /// When a past-due subscription's grace ends (`None` when not past due or suspended at
    /// once).
    fn grace_ends_at(&self, subscription: &SubscriptionState, now: i64) -> Option<i64> {
        match (&subscription.status, self.past_due) {
            (SubscriptionStatus::PastDue, PastDuePolicy::Grace { seconds }) => {
                let since = subscription
                    .past_due_since
                    .or(subscription.current_period_end)
                    .unwrap_or(now);
                Some(since.saturating_add(seconds))
            }
            _ => None,
        }
    }

    /// When the reconciler is to look at this subscription again without any event: the end of
    /// a past-due grace (access is revoked then), and the period end of a trial or of a
    /// cancellation at period end (Stripe's event is due then; if none came, Stripe is asked),
    /// re-checked hourly while Stripe has not moved it, for up to three days.
    pub fn review_at(&self, subscription: &SubscriptionState, now: i64) -> Option<i64> {
        let grace_end = self
            .grace_ends_at(subscription, now)
            .filter(|end| *end > now);
        let period_end = self.awaited_period_end(subscription).and_then(|end| {
            let check = end.saturating_add(PERIOD_END_SLACK_SECS);
            if check > now {
                Some(check)
            } else if now < end.saturating_add(PERIOD_END_GIVE_UP_SECS) {
                Some(now + PERIOD_END_RECHECK_SECS)
            } else {
                None
            }
        });
        grace_end.into_iter().chain(period_end).min()
    }

    /// Whether Stripe should have changed this subscription by `now` (a trial or a
    /// cancellation at period end whose period is over), so its state is to be read again.
    pub fn awaits_stripe(&self, subscription: &SubscriptionState, now: i64) -> bool {
        self.awaited_period_end(subscription)
            .is_some_and(|end| end.saturating_add(PERIOD_END_SLACK_SECS) <= now)
    }

    fn awaited_period_end(&self, subscription: &SubscriptionState) -> Option<i64> {
        let changes_at_period_end = subscription.status == SubscriptionStatus::Trialing
            || (subscription.cancel_at_period_end && !subscription.status.is_ended());
        subscription
            .current_period_end
            .filter(|_| changes_at_period_end)
    }
}

/// How long after a period end Stripe is given to send its event before the reconciler asks.
pub const PERIOD_END_SLACK_SECS: i64 = 3600;
/// How often a subscription Stripe has not moved past its period end is asked about again.
pub const PERIOD_END_RECHECK_SECS: i64 = 3600;
/// After this long past its period end, a subscription is left to its events.
pub const PERIOD_END_GIVE_UP_SECS: i64 = 3 * 24 * 3600;

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> PlanCatalog {
        PlanCatalog::parse("free=up_free, pro=up_pro, enterprise").unwrap()
    }

    fn subscription(status: &str, plan: &str) -> SubscriptionState {
        SubscriptionState {
            id: format!("sub_{plan}_{status}"),
            customer_id: "cus_1".into(),
            status: status.parse().unwrap(),
            items: vec![SubscriptionItemState {
                plan: PlanName::parse(plan),
                ..Default::default()
            }],
            current_period_end: Some(1_000),
            cancel_at_period_end: false,
            past_due_since: None,
            created: 1,
            metadata: BTreeMap::new(),
        }
    }

    const NOW: i64 = 2_000;

    #[test]
    fn when_plans_config_is_malformed_should_refuse() {
        assert!(PlanCatalog::parse("").is_err());
        assert!(PlanCatalog::parse("free,free").is_err());
        assert!(PlanCatalog::parse("fr ee=x").is_err());
        let catalog = catalog();
        assert_eq!(catalog.lowest().usage_plan_id.as_deref(), Some("up_free"));
        assert_eq!(
            catalog
                .get(&PlanName::parse("enterprise").unwrap())
                .unwrap()
                .usage_plan_id,
            None
        );
    }

    #[test]
    fn when_no_subscription_should_get_the_lowest_plan() {
        let plan = catalog()
            .effective_plan([], &AccessPolicy::default(), NOW)
            .name
            .clone();
        assert_eq!(plan.as_str(), "free");
    }

    #[test]
    fn when_several_subscriptions_should_take_the_highest_entitling_plan() {
        let subscriptions = [
            subscription("active", "pro"),
            subscription("canceled", "enterprise"),
            subscription("trialing", "free"),
        ];
        let catalog = catalog();
        let plan = catalog.effective_plan(&subscriptions, &AccessPolicy::default(), NOW);
        assert_eq!(plan.name.as_str(), "pro");
    }

    #[test]
    fn when_a_subscription_has_several_items_should_take_the_highest_plan_of_all() {
        let mut add_on_first = subscription("active", "");
        add_on_first.items.push(SubscriptionItemState {
            plan: PlanName::parse("enterprise"),
            ..Default::default()
        });
        add_on_first.items.push(SubscriptionItemState {
            plan: PlanName::parse("pro"),
            ..Default::default()
        });
        let catalog = catalog();
        let plan = catalog.effective_plan([&add_on_first], &AccessPolicy::default(), NOW);
        assert_eq!(plan.name.as_str(), "enterprise");
    }

    #[test]
    fn when_a_stored_subscription_predates_items_should_read_its_one_item() {
        let stored = serde_json::json!({
            "id": "sub_1", "customer_id": "cus_1", "status": "active", "plan": "pro",
            "price_id": "price_pro", "product_id": "prod_pro", "current_period_end": 5,
            "cancel_at_period_end": false, "past_due_since": null, "created": 1, "metadata": {}
        });
        let state: SubscriptionState = serde_json::from_value(stored).unwrap();
        assert_eq!(
            state.items,
            [SubscriptionItemState {
                price_id: Some("price_pro".into()),
                product_id: Some("prod_pro".into()),
                plan: PlanName::parse("pro"),
            }]
        );
        let round_trip: SubscriptionState =
            serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
        assert_eq!(round_trip, state);
        let no_item = serde_json::json!({
            "id": "sub_2", "customer_id": "cus_1", "status": "incomplete", "plan": null,
            "price_id": null, "product_id": null, "current_period_end": null,
            "cancel_at_period_end": false, "past_due_since": null, "created": 1, "metadata": {}
        });
        let state: SubscriptionState = serde_json::from_value(no_item).unwrap();
        assert!(state.items.is_empty());
    }

    #[test]
    fn a_past_due_grace_should_be_reviewed_when_it_ends_and_not_after() {
        let policy = AccessPolicy::parse("grace:7").unwrap();
        let mut past_due = subscription("past_due", "pro");
        past_due.past_due_since = Some(10_000);
        let end = 10_000 + 7 * 24 * 3600;
        assert_eq!(policy.review_at(&past_due, 10_000), Some(end));
        assert!(policy.entitles(&past_due, end - 1));
        assert!(!policy.entitles(&past_due, end));
        assert_eq!(policy.review_at(&past_due, end), None);
        let suspend = AccessPolicy::parse("suspend").unwrap();
        assert_eq!(suspend.review_at(&past_due, 10_000), None);
        assert_eq!(
            policy.review_at(&subscription("active", "pro"), 10_000),
            None
        );
    }

    #[test]
    fn a_trial_or_a_cancellation_should_be_reviewed_after_its_period_end() {
        let policy = AccessPolicy::default();
        let trial = subscription("trialing", "pro");
        let period_end = trial.current_period_end.unwrap();
        let check = period_end + PERIOD_END_SLACK_SECS;
        assert_eq!(policy.review_at(&trial, 0), Some(check));
        assert!(!policy.awaits_stripe(&trial, check - 1));
        assert!(policy.awaits_stripe(&trial, check));
        // Stripe has not moved it yet: asked again an hour later, for three days.
        assert_eq!(
            policy.review_at(&trial, check),
            Some(check + PERIOD_END_RECHECK_SECS)
        );
        assert_eq!(
            policy.review_at(&trial, period_end + PERIOD_END_GIVE_UP_SECS),
            None
        );
        let mut cancelling = subscription("active", "pro");
        cancelling.cancel_at_period_end = true;
        assert_eq!(policy.review_at(&cancelling, 0), Some(check));
        let mut canceled = subscription("canceled", "pro");
        canceled.cancel_at_period_end = true;
        assert_eq!(policy.review_at(&canceled, 0), None);
        // A past-due trial-less subscription in grace: the earlier of the two.
        let mut both = subscription("past_due", "pro");
        both.cancel_at_period_end = true;
        both.past_due_since = Some(0);
        assert_eq!(policy.review_at(&both, 0), Some(check));
    }

    #[test]
    fn when_plan_is_unknown_to_the_deployment_should_ignore_it() {
        let subscriptions = [subscription("active", "gold")];
        let catalog = catalog();
        let plan = catalog.effective_plan(&subscriptions, &AccessPolicy::default(), NOW);
        assert_eq!(plan.name.as_str(), "free");
    }

    #[test]
    fn when_ended_or_incomplete_should_not_entitle() {
        let policy = AccessPolicy::default();
        for status in [
            "canceled",
            "unpaid",
            "incomplete",
            "incomplete_expired",
            "paused",
            "weird",
        ] {
            assert!(
                !policy.entitles(&subscription(status, "pro"), NOW),
                "{status}"
            );
        }
    }

    #[test]
    fn when_past_due_should_follow_the_dunning_policy() {
        let mut past_due = subscription("past_due", "pro");
        past_due.past_due_since = Some(NOW - 3 * 24 * 3600);
        assert!(
            AccessPolicy::parse("grace:7")
                .unwrap()
                .entitles(&past_due, NOW)
        );
        assert!(
            !AccessPolicy::parse("grace:2")
                .unwrap()
                .entitles(&past_due, NOW)
        );
        assert!(
            !AccessPolicy::parse("suspend")
                .unwrap()
                .entitles(&past_due, NOW)
        );
        assert!(AccessPolicy::parse("grace:x").is_err());
        assert!(AccessPolicy::parse("grace:-1").is_err());
    }
}

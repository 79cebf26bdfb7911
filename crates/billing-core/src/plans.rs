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

    fn rank(&self, name: &PlanName) -> Option<usize> {
        self.plans.iter().position(|plan| &plan.name == name)
    }

    /// The plan the subscriptions entitle to: the highest known plan among entitling
    /// subscriptions, else the lowest plan.
    pub fn effective_plan<'a>(
        &'a self,
        subscriptions: impl IntoIterator<Item = &'a SubscriptionState>,
        policy: &AccessPolicy,
        now: i64,
    ) -> &'a PlanConfig {
        subscriptions
            .into_iter()
            .filter(|subscription| policy.entitles(subscription, now))
            .filter_map(|subscription| subscription.plan.as_ref())
            .filter_map(|plan| self.rank(plan))
            .max()
            .map(|rank| &self.plans[rank])
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
pub struct SubscriptionState {
    pub id: String,
    pub customer_id: String,
    pub status: SubscriptionStatus,
    /// From the product's (or price's) metadata `plan`; `None` when it names none.
    pub plan: Option<PlanName>,
    pub price_id: Option<String>,
    pub product_id: Option<String>,
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
            SubscriptionStatus::PastDue => match self.past_due {
                PastDuePolicy::Suspend => false,
                PastDuePolicy::Grace { seconds } => {
                    let since = subscription
                        .past_due_since
                        .or(subscription.current_period_end)
                        .unwrap_or(now);
                    now < since.saturating_add(seconds)
                }
            },
            _ => false,
        }
    }
}

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
            plan: PlanName::parse(plan),
            price_id: None,
            product_id: None,
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

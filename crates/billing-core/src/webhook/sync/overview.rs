//! One user as an operator looks at them: who they are in the pool, their link, what their
//! stored subscriptions entitle them to, their key and stacks, the events that last changed
//! their subscriptions, events parked for their customer, and any drift.

use secrecy::ExposeSecret;
use serde::Serialize;

use super::SyncService;
use super::operator::Drift;
use crate::domain::CustomerLink;
use crate::error::Result;
use crate::ports::{
    ApiKeys, CustomerLinks, StackStatus, Stacks, SyncPorts, SyncStore, UserQuery, UserRecord,
    UserRecords,
};

/// What `billing-admin user show` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserOverview {
    pub username: String,
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub status: String,
    pub enabled: bool,
    /// `custom:plan_type` as Cognito holds it.
    pub plan_attribute: Option<String>,
    pub customer_id: Option<String>,
    /// What the stored subscriptions entitle to now.
    pub plan: Option<String>,
    pub subscriptions: Vec<SubscriptionLine>,
    pub key: Option<KeyLine>,
    pub stacks: Vec<StackLine>,
    /// Events parked for the customer (nobody was linked when they came).
    pub parked_events: Vec<String>,
    pub drift: Vec<Drift>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriptionLine {
    pub id: String,
    pub status: String,
    pub plans: Vec<String>,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    /// The event (or import) that stored this state, and its time.
    pub last_event_id: String,
    pub last_event_created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyLine {
    pub id: String,
    pub enabled: bool,
    pub usage_plans: Vec<String>,
    /// Only when asked for (`--show-key`).
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StackLine {
    pub subscription_id: String,
    pub stack_name: String,
    pub recorded: String,
    pub cloudformation: String,
}

impl<P: SyncPorts> SyncService<'_, P> {
    /// The users the query names (an e-mail may name several), each with what we hold.
    pub async fn user_overviews(
        &self,
        query: &UserQuery,
        now: i64,
        show_key: bool,
    ) -> Result<Vec<UserOverview>> {
        let mut overviews = Vec::new();
        for user in self.users_named(query).await? {
            overviews.push(self.overview(user, now, show_key).await?);
        }
        Ok(overviews)
    }

    /// The users the query names, as the pool holds them.
    pub async fn users_named(&self, query: &UserQuery) -> Result<Vec<UserRecord>> {
        let pool = &self.settings.user_pool_id;
        match query {
            UserQuery::Sub(sub) => {
                let by_sub = self
                    .users
                    .user_records_where(pool, "sub", sub.as_str())
                    .await?;
                if !by_sub.is_empty() {
                    return Ok(by_sub);
                }
                // A pool may use the sub as username too.
                match crate::domain::Username::parse(sub.as_str()) {
                    Ok(username) => Ok(self
                        .users
                        .user_record(pool, &username)
                        .await?
                        .into_iter()
                        .collect()),
                    Err(_) => Ok(Vec::new()),
                }
            }
            UserQuery::Email(email) => {
                self.users
                    .user_records_where(pool, "email", email.as_str())
                    .await
            }
            UserQuery::Username(username) => Ok(self
                .users
                .user_record(pool, username)
                .await?
                .into_iter()
                .collect()),
            UserQuery::Customer(customer_id) => {
                let Some(link) = self.store.user_of_customer(customer_id).await? else {
                    return Ok(Vec::new());
                };
                Ok(self
                    .users
                    .user_record(&link.pool_id, &link.username)
                    .await?
                    .into_iter()
                    .collect())
            }
        }
    }

    async fn overview(&self, user: UserRecord, now: i64, show_key: bool) -> Result<UserOverview> {
        let link = self.store.customer_of_user(&user.sub).await?;
        let key = if show_key {
            self.keys.find_with_value(&user.sub).await?
        } else {
            self.keys.find(&user.sub).await?
        };
        let mut overview = UserOverview {
            username: user.username.to_string(),
            sub: user.sub.to_string(),
            email: user.email,
            email_verified: user.email_verified,
            status: user.status,
            enabled: user.enabled,
            plan_attribute: user.plan,
            customer_id: link.as_ref().map(|l| l.customer_id.to_string()),
            plan: None,
            subscriptions: Vec::new(),
            key: key.map(|key| KeyLine {
                id: key.id,
                enabled: key.enabled,
                usage_plans: key.usage_plan_ids,
                value: key.value.map(|value| value.expose_secret().to_owned()),
            }),
            stacks: Vec::new(),
            parked_events: Vec::new(),
            drift: Vec::new(),
        };
        if let Some(link) = link {
            self.describe_customer(&link, now, &mut overview).await?;
        }
        Ok(overview)
    }

    async fn describe_customer(
        &self,
        link: &CustomerLink,
        now: i64,
        overview: &mut UserOverview,
    ) -> Result<()> {
        let customer_id = &link.customer_id;
        let subscriptions = self.store.subscriptions_of(customer_id).await?;
        overview.plan = Some(
            self.settings
                .plans
                .effective_plan(&subscriptions, &self.settings.policy, now)
                .name
                .to_string(),
        );
        for subscription in &subscriptions {
            let Some(stored) = self
                .store
                .subscription(customer_id, &subscription.id)
                .await?
            else {
                continue;
            };
            overview.subscriptions.push(SubscriptionLine {
                id: subscription.id.clone(),
                status: subscription.status.to_string(),
                plans: subscription.plans().map(ToString::to_string).collect(),
                current_period_end: subscription.current_period_end,
                cancel_at_period_end: subscription.cancel_at_period_end,
                last_event_id: stored.event_id,
                last_event_created: stored.event_created,
            });
            for stack in self.store.stacks_of(&subscription.id).await? {
                let cloudformation = match self.stacks.status(&stack.stack_name).await? {
                    StackStatus::Exists(status) => status,
                    StackStatus::Gone => "gone".to_owned(),
                };
                overview.stacks.push(StackLine {
                    subscription_id: stack.subscription_id,
                    stack_name: stack.stack_name,
                    recorded: format!("{:?}", stack.state).to_lowercase(),
                    cloudformation,
                });
            }
        }
        overview.parked_events = self
            .store
            .unmapped_events()
            .await?
            .into_iter()
            .filter(|parked| parked.customer_id == customer_id.as_str())
            .map(|parked| format!("{} {}", parked.event_id, parked.event_type))
            .collect();
        overview.drift = self.audit(link, now, super::Writes::DryRun).await?.0;
        Ok(())
    }
}

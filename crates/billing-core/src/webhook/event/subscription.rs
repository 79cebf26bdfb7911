//! Subscriptions, read into the [`SubscriptionState`] the plans work on.

use serde::Deserialize;

use super::Metadata;
use super::expandable::{
    Expandable, RawIdOnly, RawList, RawPriceRef, id_of, null_as_default, plan_of, product_id_of,
};
use crate::plans::SubscriptionState;

#[derive(Deserialize)]
pub(super) struct RawSubscription {
    id: String,
    customer: Expandable<RawIdOnly>,
    status: String,
    created: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    cancel_at_period_end: bool,
    /// Old API only.
    current_period_end: Option<i64>,
    items: Option<RawList<RawSubscriptionItem>>,
    /// Old API only: the first item's plan.
    plan: Option<Expandable<RawPriceRef>>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
}

#[derive(Deserialize)]
struct RawSubscriptionItem {
    price: Option<Expandable<RawPriceRef>>,
    plan: Option<Expandable<RawPriceRef>>,
    /// Current API only.
    current_period_end: Option<i64>,
}

impl From<RawSubscription> for SubscriptionState {
    fn from(raw: RawSubscription) -> Self {
        let items = raw.items.map(|list| list.data).unwrap_or_default();
        let items_period_end = items
            .iter()
            .filter_map(|item| item.current_period_end)
            .max();
        // A current item may also carry a legacy `plan`; its `price` is the reference.
        let first = items.first();
        let price = first.and_then(|item| item.price.as_ref());
        let legacy_plan = first
            .and_then(|item| item.plan.as_ref())
            .or(raw.plan.as_ref());
        let priced = price.or(legacy_plan);
        let Ok(status) = raw.status.parse();
        SubscriptionState {
            id: raw.id,
            customer_id: raw.customer.id().to_owned(),
            status,
            plan: price
                .and_then(plan_of)
                .or_else(|| legacy_plan.and_then(plan_of)),
            price_id: id_of(priced),
            product_id: price
                .and_then(product_id_of)
                .or_else(|| legacy_plan.and_then(product_id_of)),
            current_period_end: items_period_end.or(raw.current_period_end),
            cancel_at_period_end: raw.cancel_at_period_end,
            past_due_since: None,
            created: raw.created,
            metadata: raw.metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plans::SubscriptionStatus;
    use crate::webhook::event::test_support::*;

    #[test]
    fn when_subscription_is_current_should_take_price_and_period_from_the_items() {
        let subscription = subscription(parse(
            "customer.subscription.updated",
            stripe_fixture("subscription"),
        ));
        assert_eq!(
            subscription,
            SubscriptionState {
                id: "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw".into(),
                customer_id: "cus_QXg1o8vcGmoR32".into(),
                status: SubscriptionStatus::Active,
                plan: None,
                // The item's price, not its legacy `plan` (obj_123, product null).
                price_id: Some("price_1PgafmB7WZ01zgkW6dKueIc5".into()),
                product_id: Some("prod_QXg1hqf4jFNsqG".into()),
                current_period_end: Some(976_287_773),
                cancel_at_period_end: true,
                past_due_since: None,
                created: 1_234_567_890,
                metadata: Metadata::new(),
            }
        );
    }

    #[test]
    fn when_subscription_has_several_items_should_end_the_period_at_the_latest() {
        let mut object = stripe_fixture("subscription");
        let mut second = object["items"]["data"][0].clone();
        second["id"] = json!("si_second");
        second["current_period_end"] = json!(2_000_000_000);
        object["items"]["data"].as_array_mut().unwrap().push(second);
        let subscription = subscription(parse("customer.subscription.updated", object));
        assert_eq!(subscription.current_period_end, Some(2_000_000_000));
    }

    #[test]
    fn when_subscription_price_or_its_product_names_a_plan_should_take_it() {
        let mut object = stripe_fixture("subscription");
        object["metadata"] = json!({ "cognito_sub": "4f1c-sub" });
        object["items"]["data"][0]["price"]["metadata"] = json!({ "plan": "pro" });
        let by_price = subscription(parse("customer.subscription.created", object.clone()));
        assert_eq!(by_price.plan, plan("pro"));
        assert_eq!(by_price.metadata, metadata(&[("cognito_sub", "4f1c-sub")]));

        object["items"]["data"][0]["price"]["metadata"] = json!({});
        object["items"]["data"][0]["price"]["product"] =
            json!({ "id": "prod_expanded", "object": "product", "metadata": { "plan": "team" } });
        let by_product = subscription(parse("customer.subscription.created", object));
        assert_eq!(by_product.plan, plan("team"));
        assert_eq!(by_product.product_id.as_deref(), Some("prod_expanded"));
    }

    #[test]
    fn when_subscription_is_old_shaped_should_take_plan_and_period_from_the_subscription() {
        let event = localstripe_event("customer.subscription.created.json");
        assert_eq!(event.api_version.as_deref(), Some("2017-08-15"));
        assert_eq!(event.event_type, "customer.subscription.created");
        assert_eq!(
            subscription(event.object),
            SubscriptionState {
                id: "sub_LocalPro000001".into(),
                customer_id: "cus_LocalAlice0001".into(),
                status: SubscriptionStatus::Active,
                plan: plan("pro"),
                price_id: Some("price_LocalPro00001".into()),
                product_id: Some("prod_LocalPro00001".into()),
                current_period_end: Some(1_702_592_090),
                cancel_at_period_end: false,
                past_due_since: None,
                created: 1_700_000_090,
                metadata: metadata(&[("cognito_sub", "4f1c-sub")]),
            }
        );
    }

    #[test]
    fn when_subscription_is_old_shaped_without_items_should_take_its_plan() {
        let object = json!({
            "object": "subscription", "id": "sub_1", "customer": "cus_1", "status": "past_due",
            "created": 1_500_000_000, "current_period_end": 1_500_100_000,
            "plan": { "object": "plan", "id": "gold", "product": "prod_gold", "metadata": {} },
        });
        let subscription = subscription(parse("customer.subscription.updated", object));
        assert_eq!(subscription.status, SubscriptionStatus::PastDue);
        assert_eq!(subscription.price_id.as_deref(), Some("gold"));
        assert_eq!(subscription.product_id.as_deref(), Some("prod_gold"));
        assert_eq!(subscription.plan, None);
        assert_eq!(subscription.current_period_end, Some(1_500_100_000));
    }
}

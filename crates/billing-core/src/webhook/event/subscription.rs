//! Subscriptions, read into the [`SubscriptionState`] the plans work on.

use serde::Deserialize;

use super::Metadata;
use super::expandable::{
    Expandable, RawIdOnly, RawList, RawPriceRef, id_of, meter_of, null_as_default, plan_of,
    product_id_of,
};
use crate::plans::{SubscriptionItemState, SubscriptionState};

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
    /// Old API only.
    current_period_start: Option<i64>,
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
    /// Current API only.
    current_period_start: Option<i64>,
}

impl From<RawSubscription> for SubscriptionState {
    fn from(raw: RawSubscription) -> Self {
        let raw_items = raw.items.map(|list| list.data).unwrap_or_default();
        let items_period_end = raw_items
            .iter()
            .filter_map(|item| item.current_period_end)
            .max();
        let items_period_start = raw_items
            .iter()
            .filter_map(|item| item.current_period_start)
            .max();
        // A current item may also carry a legacy `plan`; its `price` is the reference.
        let mut items: Vec<SubscriptionItemState> = raw_items
            .iter()
            .filter_map(|item| item.price.as_ref().or(item.plan.as_ref()))
            .map(item_state)
            .collect();
        if items.is_empty()
            && let Some(plan) = &raw.plan
        {
            items.push(item_state(plan));
        }
        let Ok(status) = raw.status.parse();
        SubscriptionState {
            id: raw.id,
            customer_id: raw.customer.id().to_owned(),
            status,
            items,
            current_period_end: items_period_end.or(raw.current_period_end),
            current_period_start: items_period_start.or(raw.current_period_start),
            cancel_at_period_end: raw.cancel_at_period_end,
            past_due_since: None,
            created: raw.created,
            metadata: raw.metadata,
        }
    }
}

fn item_state(price: &Expandable<RawPriceRef>) -> SubscriptionItemState {
    SubscriptionItemState {
        price_id: id_of(Some(price)),
        product_id: product_id_of(price),
        plan: plan_of(price),
        meter: meter_of(price),
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
                // The item's price, not its legacy `plan` (obj_123, product null).
                items: vec![SubscriptionItemState {
                    price_id: Some("price_1PgafmB7WZ01zgkW6dKueIc5".into()),
                    product_id: Some("prod_QXg1hqf4jFNsqG".into()),
                    plan: None,
                    meter: None,
                }],
                current_period_end: Some(976_287_773),
                // Stripe's fixture: a start after the end.
                current_period_start: Some(1_896_570_518),
                cancel_at_period_end: true,
                past_due_since: None,
                created: 1_234_567_890,
                metadata: Metadata::new(),
            }
        );
    }

    #[test]
    fn a_metered_item_should_keep_its_meter_in_either_shape() {
        let mut object = stripe_fixture("subscription");
        object["items"]["data"][0]["price"]["recurring"]["meter"] = json!("mtr_calls");
        object["items"]["data"][0]["price"]["recurring"]["usage_type"] = json!("metered");
        let current = subscription(parse("customer.subscription.updated", object));
        assert_eq!(current.items[0].meter.as_deref(), Some("mtr_calls"));

        // An old-shaped item's plan has no meter (meters came with API 2024-06-20).
        let old = subscription(localstripe_event("customer.subscription.created.json").object);
        assert_eq!(old.items[0].meter, None);
        assert_eq!(old.current_period_start, Some(1_700_000_090));
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
        assert_eq!(by_price.items[0].plan, plan("pro"));
        assert_eq!(by_price.metadata, metadata(&[("cognito_sub", "4f1c-sub")]));

        object["items"]["data"][0]["price"]["metadata"] = json!({});
        object["items"]["data"][0]["price"]["product"] =
            json!({ "id": "prod_expanded", "object": "product", "metadata": { "plan": "team" } });
        let by_product = subscription(parse("customer.subscription.created", object));
        assert_eq!(by_product.items[0].plan, plan("team"));
        assert_eq!(by_product.product_ids(), ["prod_expanded"]);
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
                items: vec![SubscriptionItemState {
                    price_id: Some("price_LocalPro00001".into()),
                    product_id: Some("prod_LocalPro00001".into()),
                    plan: plan("pro"),
                    meter: None,
                }],
                current_period_end: Some(1_702_592_090),
                current_period_start: Some(1_700_000_090),
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
        assert_eq!(
            subscription.items,
            [SubscriptionItemState {
                price_id: Some("gold".into()),
                product_id: Some("prod_gold".into()),
                plan: None,
                meter: None,
            }]
        );
        assert_eq!(subscription.current_period_end, Some(1_500_100_000));
    }

    #[test]
    fn when_subscription_has_an_add_on_before_the_plan_should_keep_every_item() {
        let mut object = stripe_fixture("subscription");
        let mut pro = object["items"]["data"][0].clone();
        object["items"]["data"][0]["price"]["id"] = json!("price_addon");
        object["items"]["data"][0]["price"]["product"] =
            json!({ "id": "prod_addon", "object": "product", "metadata": {} });
        pro["id"] = json!("si_pro");
        pro["price"]["id"] = json!("price_pro");
        pro["price"]["product"] = json!("prod_pro");
        pro["price"]["metadata"] = json!({ "plan": "pro" });
        object["items"]["data"].as_array_mut().unwrap().push(pro);
        let subscription = subscription(parse("customer.subscription.updated", object));
        assert_eq!(
            subscription.items,
            [
                SubscriptionItemState {
                    price_id: Some("price_addon".into()),
                    product_id: Some("prod_addon".into()),
                    plan: None,
                    meter: None,
                },
                SubscriptionItemState {
                    price_id: Some("price_pro".into()),
                    product_id: Some("prod_pro".into()),
                    plan: plan("pro"),
                    meter: None,
                },
            ]
        );
        assert_eq!(
            subscription.plans().collect::<Vec<_>>(),
            [&plan("pro").unwrap()]
        );
    }
}

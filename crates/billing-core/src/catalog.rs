//! What a pricing page shows (`GET /plans`): the prices a caller can buy through `POST
//! /checkout`, from the stored catalogue, by the same rule checkout sells by.

use serde::Serialize;

use crate::plans::{PlanCatalog, PlanName};
use crate::ports::{PriceRecord, ProductRecord, StoredCatalog};

/// One price on sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Offer {
    pub price_id: String,
    /// What `POST /checkout` takes.
    pub lookup_key: String,
    pub plan: Option<PlanName>,
    pub product: Option<String>,
    pub product_name: Option<String>,
    /// In the currency's smallest unit; `None` for a tiered price.
    pub unit_amount: Option<i64>,
    pub currency: Option<String>,
    /// `None` for a one-time price.
    pub interval: Option<String>,
    pub interval_count: Option<i64>,
    pub trial_period_days: Option<i64>,
    /// Billed by usage: bought without a quantity.
    pub metered: bool,
}

/// The prices on sale, by plan (lowest first, then the allowlisted ones without a plan) and
/// amount: active, with a lookup key, an active product if it is stored, and a plan of the
/// deployment or a lookup key in `extra_sellable`.
pub fn offers(
    catalog: &StoredCatalog,
    plans: &PlanCatalog,
    extra_sellable: &[String],
) -> Vec<Offer> {
    let mut offers: Vec<(Option<usize>, Offer)> = catalog
        .prices
        .iter()
        .filter_map(|(price_id, price)| {
            let lookup_key = price.active_lookup_key()?;
            let product = price
                .product
                .as_deref()
                .and_then(|id| catalog.products.get(id));
            if product.is_some_and(|product| !product.active) {
                return None;
            }
            let plan = plan_of(price, product);
            let rank = plan.as_ref().and_then(|plan| plans.rank(plan));
            let allowlisted = extra_sellable.iter().any(|key| key == lookup_key);
            if rank.is_none() && !allowlisted {
                return None;
            }
            Some((rank, offer(price_id, lookup_key, price, plan, product)))
        })
        .collect();
    offers.sort_by(|(rank_a, a), (rank_b, b)| {
        // Plans by rank first; allowlisted prices without a plan last.
        let rank_a = rank_a.unwrap_or(usize::MAX);
        let rank_b = rank_b.unwrap_or(usize::MAX);
        (rank_a, a.unit_amount, &a.lookup_key).cmp(&(rank_b, b.unit_amount, &b.lookup_key))
    });
    offers.into_iter().map(|(_, offer)| offer).collect()
}

/// The plan a price names in its metadata, else its product's (as checkout reads it).
fn plan_of(price: &PriceRecord, product: Option<&ProductRecord>) -> Option<PlanName> {
    price
        .metadata
        .get("plan")
        .and_then(|plan| PlanName::parse(plan.as_str()))
        .or_else(|| product.and_then(|product| product.plan.clone()))
}

fn offer(
    price_id: &str,
    lookup_key: &str,
    price: &PriceRecord,
    plan: Option<PlanName>,
    product: Option<&ProductRecord>,
) -> Offer {
    let recurring = price.recurring.as_ref();
    Offer {
        price_id: price_id.to_owned(),
        lookup_key: lookup_key.to_owned(),
        plan,
        product: price.product.clone(),
        product_name: product.and_then(|product| product.name.clone()),
        unit_amount: price.unit_amount,
        currency: price.currency.clone(),
        interval: recurring.and_then(|r| r.interval.clone()),
        interval_count: recurring.and_then(|r| r.interval_count),
        trial_period_days: recurring.and_then(|r| r.trial_period_days),
        metered: recurring
            .is_some_and(|r| r.usage_type.as_deref() == Some("metered") || r.meter.is_some()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ports::RecurringRecord;

    fn product(name: &str, plan: Option<&str>, active: bool) -> ProductRecord {
        ProductRecord {
            active,
            metadata: BTreeMap::new(),
            name: Some(name.to_owned()),
            plan: plan.and_then(PlanName::parse),
        }
    }

    fn price(lookup_key: &str, product: &str, amount: Option<i64>) -> PriceRecord {
        PriceRecord {
            active: true,
            currency: Some("usd".into()),
            lookup_key: Some(lookup_key.into()),
            product: Some(product.into()),
            recurring: Some(RecurringRecord {
                interval: Some("month".into()),
                interval_count: Some(1),
                meter: None,
                trial_period_days: None,
                usage_type: Some("licensed".into()),
            }),
            price_type: Some("recurring".into()),
            unit_amount: amount,
            ..PriceRecord::default()
        }
    }

    fn catalog() -> StoredCatalog {
        let mut metered = price("api_calls", "prod_pro", None);
        if let Some(recurring) = metered.recurring.as_mut() {
            recurring.usage_type = Some("metered".into());
            recurring.meter = Some("mtr_1".into());
        }
        let mut enterprise = price("enterprise_monthly", "prod_pro", Some(9_900));
        enterprise
            .metadata
            .insert("plan".into(), "enterprise".into());
        StoredCatalog {
            products: BTreeMap::from([
                ("prod_pro".into(), product("Pro", Some("pro"), true)),
                ("prod_old".into(), product("Old", Some("pro"), false)),
                ("prod_misc".into(), product("Stickers", None, true)),
            ]),
            prices: BTreeMap::from([
                (
                    "price_yearly".into(),
                    price("pro_yearly", "prod_pro", Some(10_000)),
                ),
                (
                    "price_monthly".into(),
                    price("pro_monthly", "prod_pro", Some(1_000)),
                ),
                ("price_metered".into(), metered),
                (
                    "price_old".into(),
                    price("old_monthly", "prod_old", Some(500)),
                ),
                (
                    "price_stickers".into(),
                    price("stickers", "prod_misc", Some(300)),
                ),
                ("price_enterprise".into(), enterprise),
            ]),
        }
    }

    fn keys(offers: &[Offer]) -> Vec<&str> {
        offers
            .iter()
            .map(|offer| offer.lookup_key.as_str())
            .collect()
    }

    #[test]
    fn the_prices_of_the_deployments_plans_should_be_on_sale_lowest_plan_and_amount_first() {
        let plans = PlanCatalog::parse("free,pro=up_pro,enterprise=up_ent").unwrap();
        let offers = offers(&catalog(), &plans, &[]);
        // A metered price has no unit amount: it sorts before the plan's flat prices.
        assert_eq!(
            keys(&offers),
            [
                "api_calls",
                "pro_monthly",
                "pro_yearly",
                "enterprise_monthly"
            ]
        );
        let monthly = &offers[1];
        assert_eq!(monthly.plan.as_ref().map(PlanName::as_str), Some("pro"));
        assert_eq!(monthly.product_name.as_deref(), Some("Pro"));
        assert_eq!(monthly.unit_amount, Some(1_000));
        assert_eq!(monthly.interval.as_deref(), Some("month"));
        assert!(!monthly.metered);
        assert!(offers[0].metered);
        // The price's own metadata names its plan before its product does.
        assert_eq!(
            offers[3].plan.as_ref().map(PlanName::as_str),
            Some("enterprise")
        );
    }

    #[test]
    fn a_price_of_an_archived_product_or_of_no_plan_should_not_be_on_sale_unless_allowlisted() {
        let plans = PlanCatalog::parse("free,pro=up_pro").unwrap();
        let offered = offers(&catalog(), &plans, &[]);
        let on_sale = keys(&offered);
        assert!(!on_sale.contains(&"old_monthly"));
        assert!(!on_sale.contains(&"stickers"));
        assert!(!on_sale.contains(&"enterprise_monthly"));

        let allowlisted = offers(
            &catalog(),
            &plans,
            &["stickers".into(), "old_monthly".into()],
        );
        assert_eq!(keys(&allowlisted).last(), Some(&"stickers"));
        assert!(!keys(&allowlisted).contains(&"old_monthly"));
    }

    #[test]
    fn an_archived_price_should_not_be_on_sale() {
        let plans = PlanCatalog::parse("free,pro=up_pro").unwrap();
        let mut catalog = catalog();
        if let Some(monthly) = catalog.prices.get_mut("price_monthly") {
            monthly.active = false;
        }
        let offered = offers(&catalog, &plans, &[]);
        assert!(!keys(&offered).contains(&"pro_monthly"));
    }
}

//! Products, prices (with their tiers) and tax rates: the catalogue the plans are built from.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::expandable::{Expandable, RawProductRef, null_as_default};
use super::{Metadata, plan_in};
use crate::plans::PlanName;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductObject {
    pub id: String,
    pub name: Option<String>,
    /// False when absent from a deleted product.
    pub active: bool,
    pub metadata: Metadata,
    /// The object says `deleted: true`, or the event is `product.deleted`.
    pub deleted: bool,
}

impl ProductObject {
    /// The plan named by the metadata `plan`, if valid.
    pub fn plan(&self) -> Option<PlanName> {
        plan_in(&self.metadata)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceObject {
    pub id: String,
    pub product_id: Option<String>,
    /// The product's metadata, when the event carries the product expanded.
    pub product_metadata: Option<Metadata>,
    /// False when absent from a deleted price.
    pub active: bool,
    pub currency: Option<String>,
    pub unit_amount: Option<i64>,
    /// `one_time` or `recurring`; derived from `recurring` when `type` is absent (old API);
    /// `None` for a deleted price that says neither.
    pub price_type: Option<String>,
    pub recurring: Option<PriceRecurring>,
    pub lookup_key: Option<String>,
    pub nickname: Option<String>,
    pub billing_scheme: Option<String>,
    pub tiers_mode: Option<String>,
    /// Present only when Stripe was asked to expand them.
    pub tiers: Vec<PriceTier>,
    pub metadata: Metadata,
    /// The object says `deleted: true`, or the event is `price.deleted`.
    pub deleted: bool,
}

impl PriceObject {
    pub fn is_recurring(&self) -> bool {
        self.price_type.as_deref() == Some("recurring")
    }

    /// The plan named by the price's metadata `plan`, else by the expanded product's.
    pub fn plan(&self) -> Option<PlanName> {
        plan_in(&self.metadata).or_else(|| self.product_metadata.as_ref().and_then(plan_in))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceRecurring {
    pub interval: Option<String>,
    pub interval_count: Option<i64>,
    /// The Billing Meter of a metered price.
    pub meter: Option<String>,
    pub trial_period_days: Option<i64>,
    /// `metered` or `licensed`.
    pub usage_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceTier {
    /// `None` for the last tier (`"inf"` or null).
    pub up_to: Option<i64>,
    pub unit_amount: Option<i64>,
    pub flat_amount: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaxRateObject {
    pub id: String,
    pub display_name: Option<String>,
    pub percentage: Option<f64>,
    pub inclusive: bool,
    pub active: bool,
    pub jurisdiction: Option<String>,
    pub country: Option<String>,
    pub metadata: Metadata,
}

// ---- as Stripe sends them -----------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct RawProduct {
    id: String,
    name: Option<String>,
    active: Option<bool>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
    #[serde(default, deserialize_with = "null_as_default")]
    deleted: bool,
}

impl RawProduct {
    pub(super) fn into_object(self, deleted_by_event: bool) -> ProductObject {
        ProductObject {
            id: self.id,
            name: self.name,
            active: self.active.unwrap_or(!self.deleted),
            metadata: self.metadata,
            deleted: self.deleted || deleted_by_event,
        }
    }
}

#[derive(Deserialize)]
pub(super) struct RawPrice {
    id: String,
    product: Option<Expandable<RawProductRef>>,
    active: Option<bool>,
    currency: Option<String>,
    unit_amount: Option<i64>,
    #[serde(rename = "type")]
    price_type: Option<String>,
    recurring: Option<RawRecurring>,
    lookup_key: Option<String>,
    nickname: Option<String>,
    billing_scheme: Option<String>,
    tiers_mode: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    tiers: Vec<RawTier>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
    #[serde(default, deserialize_with = "null_as_default")]
    deleted: bool,
}

impl RawPrice {
    pub(super) fn into_object(self, deleted_by_event: bool) -> PriceObject {
        let price_type = self
            .price_type
            .or_else(|| match (&self.recurring, self.deleted) {
                (Some(_), _) => Some("recurring".to_owned()),
                (None, false) => Some("one_time".to_owned()),
                (None, true) => None,
            });
        PriceObject {
            product_id: self.product.as_ref().map(|product| product.id().to_owned()),
            product_metadata: self
                .product
                .and_then(Expandable::into_object)
                .map(|product| product.metadata),
            id: self.id,
            active: self.active.unwrap_or(!self.deleted),
            currency: self.currency,
            unit_amount: self.unit_amount,
            price_type,
            recurring: self.recurring.map(|recurring| PriceRecurring {
                interval: recurring.interval,
                interval_count: recurring.interval_count,
                meter: recurring.meter,
                trial_period_days: recurring.trial_period_days,
                usage_type: recurring.usage_type,
            }),
            lookup_key: self.lookup_key,
            nickname: self.nickname,
            billing_scheme: self.billing_scheme,
            tiers_mode: self.tiers_mode,
            tiers: self
                .tiers
                .into_iter()
                .map(|tier| PriceTier {
                    up_to: tier.up_to.and_then(|up_to| up_to.0),
                    unit_amount: tier.unit_amount,
                    flat_amount: tier.flat_amount,
                })
                .collect(),
            metadata: self.metadata,
            deleted: self.deleted || deleted_by_event,
        }
    }
}

#[derive(Deserialize)]
struct RawRecurring {
    interval: Option<String>,
    interval_count: Option<i64>,
    meter: Option<String>,
    trial_period_days: Option<i64>,
    usage_type: Option<String>,
}

#[derive(Deserialize)]
struct RawTier {
    up_to: Option<TierUpTo>,
    unit_amount: Option<i64>,
    flat_amount: Option<i64>,
}

#[derive(Deserialize)]
pub(super) struct RawTaxRate {
    id: String,
    display_name: Option<String>,
    percentage: Option<f64>,
    inclusive: Option<bool>,
    active: Option<bool>,
    jurisdiction: Option<String>,
    country: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
}

impl From<RawTaxRate> for TaxRateObject {
    fn from(raw: RawTaxRate) -> Self {
        Self {
            id: raw.id,
            display_name: raw.display_name,
            percentage: raw.percentage,
            inclusive: raw.inclusive.unwrap_or(false),
            active: raw.active.unwrap_or(true),
            jurisdiction: raw.jurisdiction,
            country: raw.country,
            metadata: raw.metadata,
        }
    }
}

/// A tier's `up_to`: a quantity, or `"inf"` (null in some shapes) for the last tier.
struct TierUpTo(Option<i64>);

impl<'de> Deserialize<'de> for TierUpTo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UpToVisitor;

        impl Visitor<'_> for UpToVisitor {
            type Value = TierUpTo;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an integer or \"inf\"")
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Self::Value, E> {
                Ok(TierUpTo(Some(value)))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Self::Value, E> {
                i64::try_from(value)
                    .map(|value| TierUpTo(Some(value)))
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(value), &self))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                if value == "inf" {
                    Ok(TierUpTo(None))
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(value), &self))
                }
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(TierUpTo(None))
            }
        }

        deserializer.deserialize_any(UpToVisitor)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::webhook::event::EventObject;
    use crate::webhook::event::test_support::*;

    #[test]
    fn when_product_is_current_should_keep_its_fields() {
        let product = product(parse("product.updated", stripe_fixture("product")));
        assert_eq!(
            product,
            ProductObject {
                id: "prod_QXg1hqf4jFNsqG".into(),
                name: Some("T-shirt".into()),
                active: true,
                metadata: Metadata::new(),
                deleted: false,
            }
        );
        assert_eq!(product.plan(), None);
    }

    #[test]
    fn when_product_metadata_names_a_plan_should_expose_it() {
        let mut object = stripe_fixture("product");
        object["metadata"] = json!({ "plan": "pro" });
        assert_eq!(
            product(parse("product.updated", object)).plan(),
            plan("pro")
        );
    }

    #[test]
    fn when_product_is_old_shaped_should_keep_its_fields() {
        let product = product(localstripe_event("product.created.json").object);
        assert_eq!(product.id, "prod_LocalPro00001");
        assert_eq!(product.name.as_deref(), Some("Pro"));
        assert!(product.active);
        assert!(!product.deleted);
        assert_eq!(product.plan(), plan("pro"));
    }

    #[test]
    fn when_price_is_current_should_keep_its_fields() {
        let price = price(parse("price.created", stripe_fixture("price")));
        assert_eq!(
            price,
            PriceObject {
                id: "price_1PgafmB7WZ01zgkW6dKueIc5".into(),
                product_id: Some("prod_QXg1hqf4jFNsqG".into()),
                product_metadata: None,
                active: true,
                currency: Some("usd".into()),
                unit_amount: Some(2000),
                price_type: Some("recurring".into()),
                recurring: Some(PriceRecurring {
                    interval: Some("month".into()),
                    interval_count: Some(1),
                    meter: None,
                    trial_period_days: None,
                    usage_type: Some("licensed".into()),
                }),
                lookup_key: None,
                nickname: None,
                billing_scheme: Some("per_unit".into()),
                tiers_mode: None,
                tiers: Vec::new(),
                metadata: Metadata::new(),
                deleted: false,
            }
        );
        assert!(price.is_recurring());
        assert_eq!(price.plan(), None);
    }

    #[test]
    fn when_price_has_its_product_expanded_should_take_the_id_and_plan() {
        let mut product = stripe_fixture("product");
        product["metadata"] = json!({ "plan": "pro" });
        let mut object = stripe_fixture("price");
        object["product"] = product;
        object["lookup_key"] = json!("pro_monthly");
        let price = price(parse("price.updated", object));
        assert_eq!(price.product_id.as_deref(), Some("prod_QXg1hqf4jFNsqG"));
        assert_eq!(price.product_metadata, Some(metadata(&[("plan", "pro")])));
        assert_eq!(price.lookup_key.as_deref(), Some("pro_monthly"));
        assert_eq!(price.plan(), plan("pro"));
    }

    #[test]
    fn when_price_metadata_names_a_plan_should_prefer_it_to_the_product() {
        let mut object = stripe_fixture("price");
        object["metadata"] = json!({ "plan": "enterprise" });
        object["product"] = json!({ "id": "prod_1", "metadata": { "plan": "pro" } });
        assert_eq!(
            price(parse("price.updated", object)).plan(),
            plan("enterprise")
        );
    }

    #[test]
    fn when_price_is_old_shaped_without_type_should_derive_it_from_recurring() {
        let one_time = json!({ "object": "price", "id": "price_1", "unit_amount": 500 });
        assert_eq!(
            price(parse("price.created", one_time))
                .price_type
                .as_deref(),
            Some("one_time")
        );
        let recurring = json!({
            "object": "price", "id": "price_2", "recurring": { "interval": "year" },
        });
        let recurring = price(parse("price.created", recurring));
        assert!(recurring.is_recurring());
        assert_eq!(
            recurring.recurring.unwrap().interval.as_deref(),
            Some("year")
        );
    }

    #[test]
    fn when_tiers_end_with_inf_or_null_should_leave_the_last_unbounded() {
        let mut object = stripe_fixture("price");
        object["billing_scheme"] = json!("tiered");
        object["tiers_mode"] = json!("graduated");
        object["unit_amount"] = Value::Null;
        object["tiers"] = json!([
            { "up_to": 10, "unit_amount": 500, "flat_amount": null },
            { "up_to": 100, "unit_amount": 400, "flat_amount": 100, "unit_amount_decimal": "400" },
            { "up_to": "inf", "unit_amount": 300 },
        ]);
        let price = price(parse("price.created", object.clone()));
        assert_eq!(price.unit_amount, None);
        assert_eq!(price.tiers_mode.as_deref(), Some("graduated"));
        assert_eq!(
            price.tiers,
            vec![
                PriceTier {
                    up_to: Some(10),
                    unit_amount: Some(500),
                    flat_amount: None
                },
                PriceTier {
                    up_to: Some(100),
                    unit_amount: Some(400),
                    flat_amount: Some(100)
                },
                PriceTier {
                    up_to: None,
                    unit_amount: Some(300),
                    flat_amount: None
                },
            ]
        );

        object["tiers"][2]["up_to"] = Value::Null;
        let price_with_null = self::price(parse("price.created", object.clone()));
        assert_eq!(price_with_null.tiers[2].up_to, None);

        object["tiers"][2]["up_to"] = json!("lots");
        let (field, reason) = parse_error("price.created", object);
        assert_eq!(field, "data.object.tiers[2].up_to");
        assert!(reason.contains("lots"), "{reason}");
    }

    #[test]
    fn when_tax_rate_is_current_should_keep_its_fields() {
        let EventObject::TaxRate(tax_rate) = parse("tax_rate.created", stripe_fixture("tax_rate"))
        else {
            panic!("expected a tax rate");
        };
        assert_eq!(
            tax_rate,
            TaxRateObject {
                id: "txr_1Pgc7BB7WZ01zgkW4Iwwvf6z".into(),
                display_name: Some("VAT".into()),
                percentage: Some(19.0),
                inclusive: false,
                active: true,
                jurisdiction: Some("DE".into()),
                country: Some("DE".into()),
                metadata: Metadata::new(),
            }
        );
    }

    #[test]
    fn when_product_or_price_is_a_deleted_stub_should_say_deleted() {
        let product = product(parse("product.deleted", stripe_fixture("deleted_product")));
        assert!(product.deleted);
        assert!(!product.active);
        assert_eq!(product.name, None);

        let price = price(parse("price.deleted", stripe_fixture("deleted_price")));
        assert!(price.deleted);
        assert!(!price.active);
        assert_eq!(price.price_type, None);
    }
}

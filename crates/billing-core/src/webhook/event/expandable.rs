//! Serde helpers the objects share: references Stripe sends as an id or expanded, lists, and
//! fields that may be null.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::{Metadata, plan_in};
use crate::plans::PlanName;

/// A reference Stripe sends as an id, or as the object when expanded.
pub(super) enum Expandable<T> {
    Id(String),
    Object(T),
}

/// A wire object that a reference may expand to.
pub(super) trait HasId {
    fn id(&self) -> &str;
}

impl<T: HasId> Expandable<T> {
    pub(super) fn id(&self) -> &str {
        match self {
            Self::Id(id) => id,
            Self::Object(object) => object.id(),
        }
    }

    pub(super) fn into_object(self) -> Option<T> {
        match self {
            Self::Id(_) => None,
            Self::Object(object) => Some(object),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Expandable<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ExpandableVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ExpandableVisitor<T> {
            type Value = Expandable<T>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("an id or an expanded object")
            }

            fn visit_str<E: de::Error>(self, id: &str) -> Result<Self::Value, E> {
                Ok(Expandable::Id(id.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Expandable::Object)
            }
        }

        deserializer.deserialize_any(ExpandableVisitor(PhantomData))
    }
}

#[derive(Deserialize)]
pub(super) struct RawIdOnly {
    id: String,
}

/// An expanded product, or a deleted one.
#[derive(Deserialize)]
pub(super) struct RawProductRef {
    id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(super) metadata: Metadata,
}

/// A price, or an old API plan: the fields they share and we use.
#[derive(Deserialize)]
pub(super) struct RawPriceRef {
    id: String,
    product: Option<Expandable<RawProductRef>>,
    #[serde(default, deserialize_with = "null_as_default")]
    metadata: Metadata,
    /// A price's; a legacy plan has no `recurring` (and no meter).
    recurring: Option<RawRecurringRef>,
}

#[derive(Deserialize)]
pub(super) struct RawRecurringRef {
    meter: Option<String>,
}

impl HasId for RawIdOnly {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for RawProductRef {
    fn id(&self) -> &str {
        &self.id
    }
}

impl HasId for RawPriceRef {
    fn id(&self) -> &str {
        &self.id
    }
}

pub(super) fn id_of<T: HasId>(reference: Option<&Expandable<T>>) -> Option<String> {
    reference.map(|reference| reference.id().to_owned())
}

pub(super) fn product_id_of(price: &Expandable<RawPriceRef>) -> Option<String> {
    match price {
        Expandable::Id(_) => None,
        Expandable::Object(price) => id_of(price.product.as_ref()),
    }
}

/// The Billing Meter of a metered price.
pub(super) fn meter_of(price: &Expandable<RawPriceRef>) -> Option<String> {
    match price {
        Expandable::Id(_) => None,
        Expandable::Object(price) => price.recurring.as_ref()?.meter.clone(),
    }
}

/// The plan named by a price's (or plan's) metadata, else by its expanded product's.
pub(super) fn plan_of(price: &Expandable<RawPriceRef>) -> Option<PlanName> {
    let Expandable::Object(price) = price else {
        return None;
    };
    plan_in(&price.metadata).or_else(|| match &price.product {
        Some(Expandable::Object(product)) => plan_in(&product.metadata),
        _ => None,
    })
}

/// A Stripe list (`{"object": "list", "data": [...]}`), of which we read the items only.
#[derive(Deserialize)]
#[serde(bound = "T: Deserialize<'de>")]
pub(super) struct RawList<T> {
    #[serde(default, deserialize_with = "null_as_default")]
    pub(super) data: Vec<T>,
}

/// For `#[serde(default, deserialize_with = "null_as_default")]`: a field that is absent or
/// null takes its default.
pub(super) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

//! Reading and writing item attributes.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::Item;
use crate::error::{Error, Result, Upstream};
use crate::table::attr;

pub(super) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(super) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(super) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default()
}

pub(super) fn string_attr(item: &Item, name: &str) -> Result<String> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .cloned()
        .ok_or_else(|| Error::InvalidData {
            service: Upstream::DynamoDb,
            detail: format!("item lacks string attribute {name}"),
        })
}

pub(super) fn number_attr(item: &Item, name: &str) -> Result<i64> {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| Error::InvalidData {
            service: Upstream::DynamoDb,
            detail: format!("item lacks number attribute {name}"),
        })
}

pub(super) fn invalid(error: crate::domain::ParseError) -> Error {
    Error::InvalidData {
        service: Upstream::DynamoDb,
        detail: error.to_string(),
    }
}

/// The state stored as JSON in the `doc` attribute.
pub(super) fn doc_of<T: serde::de::DeserializeOwned>(item: &Item) -> Result<T> {
    serde_json::from_str(&string_attr(item, attr::DOC)?).map_err(|e| Error::InvalidData {
        service: Upstream::DynamoDb,
        detail: format!("stored document: {e}"),
    })
}

pub(super) fn to_doc(value: &impl serde::Serialize) -> Result<AttributeValue> {
    serde_json::to_string(value)
        .map(AttributeValue::S)
        .map_err(|e| Error::InvalidData {
            service: Upstream::DynamoDb,
            detail: e.to_string(),
        })
}

/// The stored item a PutItem's failed condition returned (with
/// `ReturnValuesOnConditionCheckFailure::AllOld`), if it did.
pub(super) fn item_of_failed_put<R>(
    error: &SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError, R>,
) -> Option<Item> {
    match error {
        SdkError::ServiceError(service) => match service.err() {
            aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(
                failed,
            ) => failed.item().cloned(),
            _ => None,
        },
        _ => None,
    }
}

pub(super) fn conditional_failed<E, R>(error: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    matches!(error, SdkError::ServiceError(service) if service.err().code() == Some("ConditionalCheckFailedException"))
}

//! The `Meters` port over async-stripe: a Billing Meter read by id, and meter events sent with
//! their identifier. Stripe answers an identifier it already has (for at least 24 hours) with a
//! 400 "An event already exists with identifier ...": that is the resend of a delta it took.

use std::collections::HashMap;

use async_trait::async_trait;
use stripe::StripeError;
use stripe_billing::billing_meter::RetrieveBillingMeter;
use stripe_billing::billing_meter_event::CreateBillingMeterEvent;
use stripe_billing::billing_meter_event_summary::ListIdBillingMeterEventSummary;
use tracing::warn;

use super::stripe::{StripeBilling, classify_stripe};
use crate::error::Result;
use crate::ports::{MeterEvent, MeterEventAnswer, MeterInfo, Meters};

#[async_trait]
impl Meters for StripeBilling {
    async fn meter(&self, meter_id: &str) -> Result<Option<MeterInfo>> {
        match RetrieveBillingMeter::new(meter_id)
            .send(self.client())
            .await
        {
            Ok(meter) => Ok(Some(MeterInfo {
                id: meter.id.to_string(),
                event_name: meter.event_name,
                customer_key: meter.customer_mapping.event_payload_key,
                value_key: meter.value_settings.event_payload_key,
                active: meter.status == stripe_billing::BillingMeterStatus::Active,
            })),
            Err(StripeError::Stripe(_, 404)) => Ok(None),
            Err(e) => Err(classify_stripe("RetrieveBillingMeter", e)),
        }
    }

    async fn send_meter_event(&self, event: &MeterEvent) -> Result<MeterEventAnswer> {
        let payload = HashMap::from([
            (event.meter.customer_key.clone(), event.customer_id.clone()),
            (event.meter.value_key.clone(), event.value.to_string()),
        ]);
        let sent = CreateBillingMeterEvent::new(event.meter.event_name.clone(), payload)
            .identifier(event.identifier.clone())
            .timestamp(event.timestamp)
            .send(self.client())
            .await;
        match sent {
            Ok(_) => Ok(MeterEventAnswer::Accepted),
            Err(StripeError::Stripe(api, 400)) if is_duplicate(api.message.as_deref()) => {
                Ok(MeterEventAnswer::Duplicate)
            }
            Err(StripeError::Stripe(api, 400)) if api.param.as_deref() == Some("timestamp") => {
                warn!(identifier = %event.identifier, "meter event refused for its time");
                Ok(MeterEventAnswer::Refused)
            }
            Err(e) => Err(classify_stripe("CreateBillingMeterEvent", e)),
        }
    }

    async fn reported_usage(
        &self,
        meter_id: &str,
        customer_id: &str,
        start: i64,
        end: i64,
    ) -> Result<u64> {
        // Without a grouping window Stripe answers one summary for the whole range.
        let summaries = ListIdBillingMeterEventSummary::new(meter_id, customer_id, end, start)
            .send(self.client())
            .await
            .map_err(|e| classify_stripe("ListBillingMeterEventSummaries", e))?;
        let total: f64 = summaries
            .data
            .iter()
            .map(|summary| summary.aggregated_value)
            .sum();
        // A count of calls: whole and never negative (an adjustment may cancel events).
        Ok(total.max(0.0).round() as u64)
    }
}

fn is_duplicate(message: Option<&str>) -> bool {
    message.is_some_and(|message| message.starts_with("An event already exists with identifier"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_answer_to_a_known_identifier_should_read_as_a_duplicate() {
        assert!(is_duplicate(Some(
            "An event already exists with identifier usage:k1:up:2026-12-01:0-40."
        )));
        assert!(!is_duplicate(Some("No such customer: 'cus_x'")));
        assert!(!is_duplicate(None));
    }
}

//! Stripe webhooks: the signature of a delivery and the parts of its event we use.
//!
//! The handler verifies the `Stripe-Signature` header on the raw body first
//! ([`signature::verify`]), then reads the event ([`event::read_event`]): the envelope, then the
//! object for the types we use. Reading is tolerant of API versions: the 2017-shaped objects of
//! the local emulator and the current shapes alike.

pub mod event;
pub mod signature;
pub mod sync;

pub use event::{
    CheckoutLineItem, CheckoutSessionObject, CustomerObject, EventEnvelope, EventObject,
    EventParseError, InvoiceObject, Metadata, PLAN_METADATA_KEY, PaymentIntentObject, PriceObject,
    PriceRecurring, PriceTier, ProductObject, ReadEvent, StripeEvent, TaxRateObject,
    USED_EVENT_TYPES, is_used, parse_event, read_event,
};
pub use signature::{
    DEFAULT_TOLERANCE_SECS, MalformedHeader, SIGNATURE_HEADER, SignatureError, VerifiedTimestamp,
    sign, verify,
};

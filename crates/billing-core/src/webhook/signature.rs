//! The `Stripe-Signature` header: `t=<unix>,v1=<hex>[,v1=<hex>...][,v0=...]`.
//!
//! The signed payload is `"{t}.{raw body}"`, HMAC-SHA256 keyed with the endpoint's secret. Any
//! `v1` matching any configured secret passes, so a secret can be rotated without downtime.

use hmac::digest::{Key, KeyInit};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The HTTP header Stripe signs deliveries with.
pub const SIGNATURE_HEADER: &str = "Stripe-Signature";

/// Stripe's recommended tolerance between the signed timestamp and our clock.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

const TIMESTAMP_KEY: &str = "t";
const SIGNATURE_SCHEME: &str = "v1";

/// Why a header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedHeader {
    #[error("no timestamp")]
    MissingTimestamp,
    #[error("several timestamps")]
    SeveralTimestamps,
    #[error("timestamp is not a unix time")]
    InvalidTimestamp,
    #[error("no v1 signature")]
    MissingV1Signature,
}

/// A refused delivery. Messages never contain a secret or a signature value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {SIGNATURE_HEADER} header")]
    MissingHeader,
    #[error("malformed {SIGNATURE_HEADER} header: {0}")]
    Malformed(MalformedHeader),
    #[error(
        "signed timestamp is {age_secs} s from now, beyond the tolerance of {tolerance_secs} s"
    )]
    TimestampOutsideTolerance { age_secs: i64, tolerance_secs: i64 },
    #[error("no v1 signature matches a configured secret")]
    NoMatchingSignature,
}

/// The signed `t` of a delivery whose signature was verified. Only [`verify`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct VerifiedTimestamp(i64);

impl VerifiedTimestamp {
    pub fn unix_seconds(self) -> i64 {
        self.0
    }
}

/// Verifies `header` (the `Stripe-Signature` value) against the raw `payload`.
///
/// `now` and the signed timestamp may differ by at most `tolerance_secs` either way: an old one
/// is a replay, one far in the future a forgery or a broken clock.
pub fn verify(
    payload: &[u8],
    header: Option<&str>,
    secrets: &[SecretString],
    now: i64,
    tolerance_secs: i64,
) -> Result<VerifiedTimestamp, SignatureError> {
    let header = header.ok_or(SignatureError::MissingHeader)?;
    let parsed = ParsedHeader::parse(header).map_err(SignatureError::Malformed)?;

    // Signature first, like Stripe's own libraries: a tolerance error then always concerns an
    // authentic delivery (a replay or clock skew), which is what its log line should mean.
    let matches = secrets.iter().any(|secret| {
        let expected = signed_payload_mac(secret, parsed.timestamp, payload)
            .finalize()
            .into_bytes();
        parsed
            .v1_signatures
            .iter()
            .any(|signature| bool::from(expected.as_slice().ct_eq(signature)))
    });
    if !matches {
        return Err(SignatureError::NoMatchingSignature);
    }

    let age_secs = now.saturating_sub(parsed.timestamp);
    if age_secs.unsigned_abs() > tolerance_secs.max(0).unsigned_abs() {
        return Err(SignatureError::TimestampOutsideTolerance {
            age_secs,
            tolerance_secs,
        });
    }
    Ok(VerifiedTimestamp(parsed.timestamp))
}

/// A full `Stripe-Signature` value for `payload` signed at `timestamp`, as Stripe sends it.
pub fn sign(payload: &[u8], secret: &SecretString, timestamp: i64) -> String {
    let signature = signed_payload_mac(secret, timestamp, payload).finalize();
    format!(
        "{TIMESTAMP_KEY}={timestamp},{SIGNATURE_SCHEME}={}",
        hex::encode(signature.into_bytes())
    )
}

fn signed_payload_mac(secret: &SecretString, timestamp: i64, payload: &[u8]) -> HmacSha256 {
    let mut mac = keyed_mac(secret);
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

fn keyed_mac(secret: &SecretString) -> HmacSha256 {
    // HMAC's own key schedule (RFC 2104): a key longer than the hash block is hashed, then the
    // key is zero-padded to the block. Doing it here lets us use the infallible constructor
    // instead of `new_from_slice`, whose error cannot happen but would need an unwrap.
    let key = secret.expose_secret().as_bytes();
    let mut block = Key::<HmacSha256>::default();
    if key.len() > block.len() {
        let digest = Sha256::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    <HmacSha256 as KeyInit>::new(&block)
}

#[derive(Debug)]
struct ParsedHeader {
    timestamp: i64,
    /// Decoded `v1` values; one that is not hex cannot match and is dropped.
    v1_signatures: Vec<Vec<u8>>,
}

impl ParsedHeader {
    fn parse(header: &str) -> Result<Self, MalformedHeader> {
        let mut timestamp = None;
        let mut v1_signatures = Vec::new();
        let mut saw_v1 = false;
        for (key, value) in header
            .split(',')
            .filter_map(|part| part.split_once('='))
            .map(|(key, value)| (key.trim(), value.trim()))
        {
            match key {
                TIMESTAMP_KEY => {
                    if timestamp.is_some() {
                        return Err(MalformedHeader::SeveralTimestamps);
                    }
                    timestamp = Some(parse_unix_time(value)?);
                }
                SIGNATURE_SCHEME => {
                    saw_v1 = true;
                    if let Ok(signature) = hex::decode(value) {
                        v1_signatures.push(signature);
                    }
                }
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(MalformedHeader::MissingTimestamp)?;
        if !saw_v1 {
            return Err(MalformedHeader::MissingV1Signature);
        }
        Ok(Self {
            timestamp,
            v1_signatures,
        })
    }
}

fn parse_unix_time(raw: &str) -> Result<i64, MalformedHeader> {
    // Digits only: `i64::from_str` would also take a sign.
    if raw.is_empty() || !raw.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(MalformedHeader::InvalidTimestamp);
    }
    raw.parse().map_err(|_| MalformedHeader::InvalidTimestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;
    const TOLERANCE: i64 = DEFAULT_TOLERANCE_SECS;
    const BODY: &[u8] = br#"{"id":"evt_1","object":"event"}"#;

    fn secret(raw: &str) -> SecretString {
        SecretString::from(raw)
    }

    fn current() -> SecretString {
        secret("whsec_current")
    }

    fn v1_of(header: &str) -> &str {
        header.split_once("v1=").unwrap().1
    }

    fn verify_one(header: &str, now: i64) -> Result<VerifiedTimestamp, SignatureError> {
        verify(BODY, Some(header), &[current()], now, TOLERANCE)
    }

    #[test]
    fn when_signature_is_valid_should_return_its_timestamp() {
        let header = sign(BODY, &current(), NOW);
        assert_eq!(verify_one(&header, NOW).unwrap().unix_seconds(), NOW);
    }

    #[test]
    fn when_signing_should_match_an_independent_hmac() {
        // From Python: hmac.new(b"whsec_current", b"1700000000." + BODY, sha256).hexdigest()
        let expected = "edcb89f9dba286ffd09f86d2262ee6abc7c44d7892d66d839b82f55c22216283";
        assert_eq!(
            sign(BODY, &current(), NOW),
            format!("t=1700000000,v1={expected}")
        );
    }

    #[test]
    fn when_secret_is_longer_than_a_block_should_hash_it_like_hmac_does() {
        for length in [0, 1, 63, 64, 65, 200] {
            let raw = "k".repeat(length);
            let mut reference = <HmacSha256 as Mac>::new_from_slice(raw.as_bytes()).unwrap();
            reference.update(b"payload");
            let mut ours = keyed_mac(&secret(&raw));
            ours.update(b"payload");
            assert_eq!(
                ours.finalize().into_bytes(),
                reference.finalize().into_bytes(),
                "key of {length} bytes"
            );
        }
    }

    #[test]
    fn when_timestamp_is_exactly_at_the_tolerance_should_accept() {
        let header = sign(BODY, &current(), NOW - TOLERANCE);
        assert!(verify_one(&header, NOW).is_ok());
        let header = sign(BODY, &current(), NOW + TOLERANCE);
        assert!(verify_one(&header, NOW).is_ok());
    }

    #[test]
    fn when_timestamp_is_one_second_too_old_should_refuse() {
        let header = sign(BODY, &current(), NOW - TOLERANCE - 1);
        assert_eq!(
            verify_one(&header, NOW),
            Err(SignatureError::TimestampOutsideTolerance {
                age_secs: 301,
                tolerance_secs: 300
            })
        );
    }

    #[test]
    fn when_timestamp_is_too_far_in_the_future_should_refuse() {
        let header = sign(BODY, &current(), NOW + TOLERANCE + 1);
        assert_eq!(
            verify_one(&header, NOW),
            Err(SignatureError::TimestampOutsideTolerance {
                age_secs: -301,
                tolerance_secs: 300
            })
        );
    }

    #[test]
    fn when_several_v1_and_one_matches_should_accept() {
        let good = sign(BODY, &current(), NOW);
        let wrong = sign(BODY, &secret("whsec_other"), NOW);
        let header = format!(
            "v1={},t={NOW},v0=abcdef,v1=zz-not-hex,v1={},scheme9=x",
            v1_of(&wrong),
            v1_of(&good)
        );
        assert!(verify_one(&header, NOW).is_ok());
    }

    #[test]
    fn when_header_has_spaces_around_parts_should_accept() {
        let good = sign(BODY, &current(), NOW);
        let header = format!("t={NOW}, v1={}", v1_of(&good));
        assert!(verify_one(&header, NOW).is_ok());
    }

    #[test]
    fn when_secret_is_rotated_should_accept_the_second_secret() {
        let header = sign(BODY, &secret("whsec_next"), NOW);
        let secrets = [current(), secret("whsec_next")];
        assert!(verify(BODY, Some(&header), &secrets, NOW, TOLERANCE).is_ok());
    }

    #[test]
    fn when_body_is_tampered_should_refuse() {
        let header = sign(BODY, &current(), NOW);
        let tampered = br#"{"id":"evt_2","object":"event"}"#;
        assert_eq!(
            verify(tampered, Some(&header), &[current()], NOW, TOLERANCE),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn when_timestamp_is_changed_should_refuse() {
        let header = sign(BODY, &current(), NOW);
        let replayed = format!("t={},v1={}", NOW + 1, v1_of(&header));
        assert_eq!(
            verify_one(&replayed, NOW),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn when_secret_is_wrong_should_refuse() {
        let header = sign(BODY, &secret("whsec_attacker"), NOW);
        assert_eq!(
            verify_one(&header, NOW),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn when_no_secret_is_configured_should_refuse() {
        let header = sign(BODY, &current(), NOW);
        assert_eq!(
            verify(BODY, Some(&header), &[], NOW, TOLERANCE),
            Err(SignatureError::NoMatchingSignature)
        );
    }

    #[test]
    fn when_header_is_missing_should_refuse() {
        assert_eq!(
            verify(BODY, None, &[current()], NOW, TOLERANCE),
            Err(SignatureError::MissingHeader)
        );
    }

    #[test]
    fn when_header_is_malformed_should_say_why() {
        let good = sign(BODY, &current(), NOW);
        let v1 = v1_of(&good);
        let cases = [
            (String::new(), MalformedHeader::MissingTimestamp),
            ("garbage".to_owned(), MalformedHeader::MissingTimestamp),
            (format!("v1={v1}"), MalformedHeader::MissingTimestamp),
            (format!("t=,v1={v1}"), MalformedHeader::InvalidTimestamp),
            (format!("t=abc,v1={v1}"), MalformedHeader::InvalidTimestamp),
            (format!("t=-5,v1={v1}"), MalformedHeader::InvalidTimestamp),
            (
                format!("t=+{NOW},v1={v1}"),
                MalformedHeader::InvalidTimestamp,
            ),
            (
                format!("t=99999999999999999999,v1={v1}"),
                MalformedHeader::InvalidTimestamp,
            ),
            (
                format!("t={NOW},t={NOW},v1={v1}"),
                MalformedHeader::SeveralTimestamps,
            ),
            (format!("t={NOW}"), MalformedHeader::MissingV1Signature),
            (format!("t={NOW},v1"), MalformedHeader::MissingV1Signature),
        ];
        for (header, reason) in cases {
            assert_eq!(
                verify_one(&header, NOW),
                Err(SignatureError::Malformed(reason)),
                "{header:?}"
            );
        }
    }

    #[test]
    fn when_header_has_only_a_v0_signature_should_refuse_as_malformed() {
        let good = sign(BODY, &current(), NOW);
        let header = format!("t={NOW},v0={}", v1_of(&good));
        assert_eq!(
            verify_one(&header, NOW),
            Err(SignatureError::Malformed(
                MalformedHeader::MissingV1Signature
            ))
        );
    }

    #[test]
    fn when_refusing_should_not_reveal_the_secret_or_the_signature() {
        let header = sign(BODY, &current(), NOW - 10_000);
        let errors = [
            verify_one(&header, NOW).unwrap_err(),
            verify(b"other", Some(&header), &[current()], NOW, TOLERANCE).unwrap_err(),
            verify_one("t=x,v1=00", NOW).unwrap_err(),
        ];
        for error in errors {
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("whsec_current"), "{shown}");
            assert!(!shown.contains(v1_of(&header)), "{shown}");
        }
    }
}

//! What callers send, as types that validate themselves. A failed `parse` names the field and
//! what was expected; the HTTP layer answers it with a 400.

use std::fmt;

/// A request field that does not have the expected shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {expected}")]
pub struct InvalidField {
    pub field: &'static str,
    pub expected: &'static str,
}

impl InvalidField {
    fn new(field: &'static str, expected: &'static str) -> Self {
        Self { field, expected }
    }
}

fn is_token(value: &str, max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

macro_rules! string_input {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_input!(
    /// The lookup key of the price to buy: 1 to 200 letters, digits, `_`, `-` or `.`.
    LookupKey
);

impl LookupKey {
    pub fn parse(raw: impl Into<String>) -> Result<Self, InvalidField> {
        let raw = raw.into();
        if !is_token(&raw, 200) {
            return Err(InvalidField::new(
                "lookup_key",
                "expected 1 to 200 letters, digits, _ - .",
            ));
        }
        Ok(Self(raw))
    }
}

string_input!(
    /// A Stripe promotion code id, `promo_...`.
    PromotionCode
);

impl PromotionCode {
    pub fn parse(raw: impl Into<String>) -> Result<Self, InvalidField> {
        let raw = raw.into();
        if !(raw.starts_with("promo_") && is_token(&raw, 100)) {
            return Err(InvalidField::new(
                "promotion_code",
                "expected a promotion code id, promo_...",
            ));
        }
        Ok(Self(raw))
    }
}

/// Which promotion codes the Checkout page takes: none, the one the caller gives, or any the
/// customer types in; never both of the last two.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Promotion {
    #[default]
    None,
    Code(PromotionCode),
    CustomerEntered,
}

impl Promotion {
    /// From the request's `promotion_code` and `allow_promotion_codes`.
    pub fn parse(
        promotion_code: Option<String>,
        allow_promotion_codes: Option<bool>,
    ) -> Result<Self, InvalidField> {
        let code = promotion_code.map(PromotionCode::parse).transpose()?;
        match (code, allow_promotion_codes.unwrap_or(false)) {
            (Some(_), true) => Err(InvalidField::new(
                "allow_promotion_codes",
                "cannot be combined with promotion_code",
            )),
            (Some(code), false) => Ok(Self::Code(code)),
            (None, true) => Ok(Self::CustomerEntered),
            (None, false) => Ok(Self::None),
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Code(code) => Some(code.as_str()),
            Self::None | Self::CustomerEntered => None,
        }
    }
}

string_input!(
    /// The Checkout page's language: one of Stripe's Checkout locales, as Stripe spells it.
    Locale
);

/// Stripe Checkout's locales: the values of async-stripe's `CheckoutSessionLocale` (a test in
/// the Stripe adapter checks each against it).
pub const CHECKOUT_LOCALES: &[&str] = &[
    "auto", "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi", "fil", "fr",
    "fr-CA", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl", "pl", "pt",
    "pt-BR", "ro", "ru", "sk", "sl", "sv", "th", "tr", "vi", "zh", "zh-HK", "zh-TW",
];

impl Locale {
    /// Any case is accepted (`PT-br`) and answered in Stripe's spelling (`pt-BR`).
    pub fn parse(raw: impl Into<String>) -> Result<Self, InvalidField> {
        let raw = raw.into();
        CHECKOUT_LOCALES
            .iter()
            .find(|locale| locale.eq_ignore_ascii_case(&raw))
            .map(|locale| Self((*locale).to_owned()))
            .ok_or_else(|| {
                InvalidField::new(
                    "locale",
                    "expected one of Stripe Checkout's locales, e.g. auto, fr, pt-BR, es-419",
                )
            })
    }
}

/// How many of the price to buy: 1 to 100, 1 when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(u64);

impl Quantity {
    pub fn parse(raw: Option<u64>) -> Result<Self, InvalidField> {
        let quantity = raw.unwrap_or(1);
        if !(1..=100).contains(&quantity) {
            return Err(InvalidField::new("quantity", "expected 1 to 100"));
        }
        Ok(Self(quantity))
    }

    pub fn get(self) -> u64 {
        self.0
    }
}

string_input!(
    /// A path on the site to come back to: absolute, without scheme, host, `..`, `\`, `@`,
    /// whitespace or control characters, at most 512 bytes. `/` when not given.
    ReturnPath
);

impl ReturnPath {
    pub fn parse(raw: impl Into<String>) -> Result<Self, InvalidField> {
        let path = raw.into();
        let safe = path.starts_with('/')
            && !path.starts_with("//")
            && path.len() <= 512
            && !path.contains("..")
            && !path.contains('\\')
            && !path.chars().any(|c| c.is_control() || c.is_whitespace())
            && !path.contains("://")
            && !path.contains('@');
        if !safe {
            return Err(InvalidField::new(
                "return_path",
                "expected a path on this site, such as /account",
            ));
        }
        Ok(Self(path))
    }

    /// The given path, or the site's root when none was given.
    pub fn parse_or_root(raw: Option<&str>) -> Result<Self, InvalidField> {
        Self::parse(raw.unwrap_or("/"))
    }

    /// The URL of this path on the site at `origin`.
    pub fn url_on(&self, origin: &str) -> String {
        format!("{origin}{}", self.0)
    }
}

string_input!(
    /// A Checkout session id as the success return carries it: `cs_` and letters, digits, `_`.
    CheckoutSessionId
);

impl CheckoutSessionId {
    pub fn parse(raw: impl Into<String>) -> Result<Self, InvalidField> {
        let raw = raw.into();
        let valid = raw.starts_with("cs_")
            && raw.len() <= 255
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(InvalidField::new(
                "session_id",
                "expected a session id, cs_...",
            ));
        }
        Ok(Self(raw))
    }
}

/// The one-time key of a success return: 64 hex digits. It proves who paid, so its Debug output
/// is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct OneTimeKey(String);

impl fmt::Debug for OneTimeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneTimeKey(<redacted>)")
    }
}

impl OneTimeKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn parse(raw: impl Into<String>) -> Result<Self, InvalidField> {
        let raw = raw.into();
        if !(raw.len() == 64 && raw.chars().all(|c| c.is_ascii_hexdigit())) {
            return Err(InvalidField::new("key", "expected 64 hex digits"));
        }
        Ok(Self(raw))
    }
}

/// How long a rotated-out API key keeps working: 0 (disabled at once) to 24 hours, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationGrace(i64);

impl RotationGrace {
    pub const MAX_SECS: i64 = 24 * 3600;

    pub fn parse(seconds: Option<i64>) -> Result<Self, InvalidField> {
        match seconds.unwrap_or(0) {
            secs @ 0..=Self::MAX_SECS => Ok(Self(secs)),
            _ => Err(InvalidField::new(
                "grace_seconds",
                "expected 0 to 86400 seconds (24 hours)",
            )),
        }
    }

    pub fn seconds(self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rotation_grace_should_be_zero_to_a_day() {
        assert_eq!(RotationGrace::parse(None).unwrap().seconds(), 0);
        assert_eq!(
            RotationGrace::parse(Some(86_400)).unwrap().seconds(),
            86_400
        );
        for bad in [-1, 86_401, i64::MAX] {
            assert_eq!(
                RotationGrace::parse(Some(bad)).unwrap_err().field,
                "grace_seconds"
            );
        }
    }

    use super::*;

    #[test]
    fn when_return_path_leaves_the_origin_should_refuse() {
        for bad in [
            "//evil.com",
            "https://evil.com",
            "evil.com",
            "/\\evil.com",
            "/../x",
            "/a b",
            "/x@evil.com",
            "/%0d%0a\n",
        ] {
            let error = ReturnPath::parse(bad).unwrap_err();
            assert_eq!(error.field, "return_path", "{bad}");
        }
        let origin = "https://app.example.com";
        assert_eq!(
            ReturnPath::parse("/account?tab=billing")
                .unwrap()
                .url_on(origin),
            "https://app.example.com/account?tab=billing"
        );
        assert_eq!(
            ReturnPath::parse_or_root(None).unwrap().url_on(origin),
            "https://app.example.com/"
        );
    }

    #[test]
    fn when_lookup_key_is_empty_too_long_or_odd_should_name_the_field() {
        for bad in ["", "a b", "pro/monthly", &"x".repeat(201)] {
            let error = LookupKey::parse(bad).unwrap_err();
            assert_eq!(
                error.to_string(),
                "lookup_key: expected 1 to 200 letters, digits, _ - ."
            );
        }
        assert_eq!(
            LookupKey::parse("pro_monthly.v2-eu").unwrap().as_str(),
            "pro_monthly.v2-eu"
        );
    }

    #[test]
    fn when_locale_is_not_a_checkout_locale_should_refuse() {
        for (given, spelled) in [
            ("auto", "auto"),
            ("fr", "fr"),
            ("pt-BR", "pt-BR"),
            ("PT-br", "pt-BR"),
            ("es-419", "es-419"),
            ("FIL", "fil"),
            ("zh-hk", "zh-HK"),
        ] {
            assert_eq!(Locale::parse(given).unwrap().as_str(), spelled);
        }
        // Shaped like a locale but not one of Checkout's: Stripe would refuse it.
        for bad in [
            "", "f", "fra", "pt_BR", "pt-BRX", "12", "ptèBR", "xx", "en-US", "de-AT", "auto ",
        ] {
            assert_eq!(Locale::parse(bad).unwrap_err().field, "locale", "{bad}");
        }
        assert_eq!(CHECKOUT_LOCALES.len(), 41);
    }

    #[test]
    fn when_quantity_is_missing_should_be_one_and_out_of_range_should_refuse() {
        assert_eq!(Quantity::parse(None).unwrap().get(), 1);
        assert_eq!(Quantity::parse(Some(100)).unwrap().get(), 100);
        assert!(Quantity::parse(Some(0)).is_err());
        assert!(Quantity::parse(Some(101)).is_err());
    }

    #[test]
    fn when_promotion_code_is_not_a_promo_id_should_refuse() {
        assert!(PromotionCode::parse("promo_1AbC").is_ok());
        assert!(PromotionCode::parse("SUMMER20").is_err());
        assert!(PromotionCode::parse("promo_ x").is_err());
    }

    #[test]
    fn when_a_promotion_code_is_given_should_refuse_customer_entered_codes_too() {
        let error = Promotion::parse(Some("promo_1".into()), Some(true)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "allow_promotion_codes: cannot be combined with promotion_code"
        );
        assert_eq!(
            Promotion::parse(Some("promo_1".into()), Some(false))
                .unwrap()
                .code(),
            Some("promo_1")
        );
        assert_eq!(
            Promotion::parse(None, Some(true)).unwrap(),
            Promotion::CustomerEntered
        );
        assert_eq!(Promotion::parse(None, None).unwrap(), Promotion::None);
        assert_eq!(
            Promotion::parse(Some("SUMMER".into()), Some(true))
                .unwrap_err()
                .field,
            "promotion_code"
        );
    }

    #[test]
    fn success_return_parameters_should_be_a_session_id_and_64_hex_digits() {
        assert!(CheckoutSessionId::parse("cs_test_a1B2").is_ok());
        assert!(CheckoutSessionId::parse("cs_x.y").is_err());
        assert!(CheckoutSessionId::parse("pi_123").is_err());
        let key = "ab".repeat(32);
        assert!(OneTimeKey::parse(key.as_str()).is_ok());
        assert!(OneTimeKey::parse(&key[1..]).is_err());
        assert!(OneTimeKey::parse("zz".repeat(32)).is_err());
        assert!(!format!("{:?}", OneTimeKey::parse(key.as_str()).unwrap()).contains("abab"));
    }
}

//! Money: hundredths of the currency unit in storage, decimal strings with two places in JSON.

use std::{fmt, str::FromStr};

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::FieldError;

/// An amount in hundredths of a currency unit (never negative for prices and fees).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(i64);

/// The largest amount accepted: 10^13 units, far beyond any ticket, well inside `i64`.
const MAX_MINOR: i64 = 1_000_000_000_000_000;

impl Money {
    /// Zero.
    pub const ZERO: Money = Money(0);

    /// From stored hundredths.
    pub fn from_minor(minor: i64) -> Self {
        Self(minor)
    }

    /// Stored hundredths.
    pub fn minor(self) -> i64 {
        self.0
    }

    /// Parses a non-negative decimal with at most two places; zero-decimal currencies (KRW, JPY)
    /// refuse a fraction.
    pub fn parse(field: &str, raw: &str, currency: &Currency) -> Result<Self, FieldError> {
        let invalid = |msg: &str| FieldError::new(field, "invalid_amount", msg);
        let value =
            Decimal::from_str(raw.trim()).map_err(|_| invalid("is not a decimal number"))?;
        if value.is_sign_negative() && !value.is_zero() {
            return Err(invalid("must not be negative"));
        }
        if value.scale() > 2 && value.normalize().scale() > 2 {
            return Err(invalid("has more than two decimal places"));
        }
        if currency.zero_decimal() && !value.fract().is_zero() {
            return Err(FieldError::new(
                field,
                "fraction_not_allowed",
                format!("{} has no minor unit", currency.code()),
            ));
        }
        let minor = value
            .checked_mul(Decimal::from(100))
            .ok_or_else(|| invalid("is too large"))?
            .trunc()
            .to_string()
            .parse::<i64>()
            .map_err(|_| invalid("is too large"))?;
        if minor > MAX_MINOR {
            return Err(invalid("is too large"));
        }
        Ok(Self(minor))
    }

    /// Rounds down to the currency's unit (fees and refunds).
    pub fn floor_to_unit(self, currency: &Currency) -> Self {
        if currency.zero_decimal() {
            Self(self.0 - self.0.rem_euclid(100))
        } else {
            self
        }
    }

    /// `percent` % of this amount, rounded down to the currency's unit.
    pub fn percent(self, percent: u32, currency: &Currency) -> Self {
        Self(self.0.saturating_mul(i64::from(percent)) / 100).floor_to_unit(currency)
    }

    /// Sum, saturating.
    pub fn plus(self, other: Money) -> Self {
        Self(self.0.saturating_add(other.0))
    }

    /// Product with a quantity, saturating.
    pub fn times(self, quantity: i64) -> Self {
        Self(self.0.saturating_mul(quantity))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// A price as a client sends it: a decimal string or a JSON number, checked against the
/// event's currency once that is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawAmount(pub String);

impl<'de> Deserialize<'de> for RawAmount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        match value {
            serde_json::Value::String(s) => Ok(Self(s)),
            serde_json::Value::Number(n) => Ok(Self(n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "expected a decimal string, found {other}"
            ))),
        }
    }
}

/// An ISO 4217 currency code.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Currency(String);

impl Currency {
    /// Parses three ASCII letters (upper-cased).
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let code = raw.trim().to_ascii_uppercase();
        if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(code))
        } else {
            Err(FieldError::new(
                "currency",
                "invalid_currency",
                "must be an ISO 4217 code such as KRW",
            ))
        }
    }

    /// The code.
    pub fn code(&self) -> &str {
        &self.0
    }

    /// Currencies without a minor unit in practice.
    pub fn zero_decimal(&self) -> bool {
        matches!(
            self.0.as_str(),
            "KRW" | "JPY" | "VND" | "CLP" | "ISK" | "TWD" | "HUF" | "UGX" | "XAF" | "XOF"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krw() -> Currency {
        Currency::parse("krw").expect("code")
    }

    #[test]
    fn amounts_round_trip_with_two_decimals() {
        let usd = Currency::parse("USD").expect("code");
        assert_eq!(
            Money::parse("price", "55000", &krw())
                .expect("ok")
                .to_string(),
            "55000.00"
        );
        assert_eq!(
            Money::parse("price", "12.5", &usd).expect("ok").minor(),
            1250
        );
        assert_eq!(Money::parse("price", "0", &usd).expect("ok"), Money::ZERO);
    }

    #[test]
    fn bad_amounts_are_refused() {
        let usd = Currency::parse("USD").expect("code");
        for bad in [
            "-1",
            "abc",
            "1.234",
            "",
            "1e400",
            "99999999999999999999",
            "79228162514264337593543950335",
        ] {
            assert!(Money::parse("price", bad, &usd).is_err(), "{bad}");
        }
        assert!(
            Money::parse("price", "100.50", &krw()).is_err(),
            "KRW has no fraction"
        );
        assert!(Money::parse("price", "100.00", &krw()).is_ok());
    }

    #[test]
    fn fees_round_down_to_the_unit() {
        let total = Money::parse("t", "55555", &krw()).expect("ok");
        assert_eq!(total.percent(10, &krw()).to_string(), "5555.00");
    }
}

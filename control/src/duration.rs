//! Durations written as `15s`, `500ms`, `2m`, `1h` or `1.5s`.
//!
//! A unit is mandatory: a bare `15` is ambiguous (seconds? milliseconds?) and
//! guessing wrong silently is worse than rejecting the file.

use std::time::Duration;

/// Why a duration string was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("durations need a unit, e.g. 15s")]
    MissingUnit,
    #[error("invalid duration `{0}`: expected a number followed by ms, s, m or h, e.g. 15s")]
    Malformed(String),
    #[error("unknown duration unit `{unit}` in `{text}`: use ms, s, m or h")]
    UnknownUnit { text: String, unit: String },
    #[error("duration `{0}` is too large")]
    TooLarge(String),
}

const NANOS_PER_MS: u128 = 1_000_000;
const NANOS_PER_S: u128 = 1_000_000_000;

/// Parses a duration string such as `1.5s`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if number.is_empty() {
        return Err(DurationError::Malformed(text.to_string()));
    }
    let unit_nanos = match unit {
        "" => return Err(DurationError::MissingUnit),
        "ms" => NANOS_PER_MS,
        "s" => NANOS_PER_S,
        "m" => 60 * NANOS_PER_S,
        "h" => 3600 * NANOS_PER_S,
        other => {
            return Err(DurationError::UnknownUnit {
                text: text.to_string(),
                unit: other.to_string(),
            })
        }
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    // Integer arithmetic on nanoseconds keeps `0.1s` exact, unlike f64.
    if whole.is_empty() || fraction.contains('.') || fraction.len() > 18 {
        return Err(DurationError::Malformed(text.to_string()));
    }
    let too_large = || DurationError::TooLarge(text.to_string());
    let whole: u128 = whole.parse().map_err(|_| too_large())?;
    let mut nanos = whole.checked_mul(unit_nanos).ok_or_else(too_large)?;
    if !fraction.is_empty() {
        let digits: u128 = fraction
            .parse()
            .map_err(|_| DurationError::Malformed(text.to_string()))?;
        let scale = 10u128.pow(fraction.len() as u32);
        nanos = nanos
            .checked_add(digits * unit_nanos / scale)
            .ok_or_else(too_large)?;
    }
    let secs = u64::try_from(nanos / NANOS_PER_S).map_err(|_| too_large())?;
    // The remainder of a division by 1e9 always fits in u32.
    let sub = (nanos % NANOS_PER_S) as u32;
    Ok(Duration::new(secs, sub))
}

/// Formats a duration in the shortest unit that is exact, so that
/// `parse(&format(d)) == d` and dumps read like hand-written config.
pub fn format(d: Duration) -> String {
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        if secs != 0 && secs.is_multiple_of(3600) {
            format!("{}h", secs / 3600)
        } else if secs != 0 && secs.is_multiple_of(60) {
            format!("{}m", secs / 60)
        } else {
            format!("{secs}s")
        }
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        let fraction = format!("{nanos:09}");
        format!("{secs}.{}s", fraction.trim_end_matches('0'))
    }
}

/// `#[serde(with = "crate::duration::serde_str")]` for `Duration` fields.
pub mod serde_str {
    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};
    use std::fmt;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }

    struct DurationVisitor;

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a duration string such as 15s")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
            super::parse(v).map_err(E::custom)
        }

        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Duration, E> {
            Err(E::custom(super::DurationError::MissingUnit))
        }

        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Duration, E> {
            Err(E::custom(super::DurationError::MissingUnit))
        }

        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Duration, E> {
            Err(E::custom(super::DurationError::MissingUnit))
        }
    }
}

/// `#[serde(with = "crate::duration::serde_opt")]` for `Option<Duration>` fields.
pub mod serde_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serde_str::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "super::serde_str")] Duration);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_fractions() {
        assert_eq!(parse("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("0.5ms"), Ok(Duration::from_micros(500)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(parse("15"), Err(DurationError::MissingUnit));
        assert!(matches!(
            parse("15d"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(parse("s"), Err(DurationError::Malformed(_))));
        assert!(matches!(parse(".5s"), Err(DurationError::Malformed(_))));
        assert!(matches!(parse("1.2.3s"), Err(DurationError::Malformed(_))));
        assert!(matches!(parse("-1s"), Err(DurationError::Malformed(_))));
        assert!(matches!(
            parse("99999999999999999999999h"),
            Err(DurationError::TooLarge(_))
        ));
    }

    #[test]
    fn format_round_trips() {
        for text in [
            "15s",
            "500ms",
            "2m",
            "1h",
            "1500ms",
            "90s",
            "1.000001s",
            "0s",
        ] {
            let d = parse(text).expect(text);
            assert_eq!(format(d), text);
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }
}

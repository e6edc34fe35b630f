//! Value types that cannot hold an invalid value: entity ids, stakes, money,
//! dates and timestamps.
//!
//! Parse, don't validate: every constructor checks its input once, so a value
//! that exists is valid everywhere else. Amounts are exact integers (stakes in
//! millionths, money in ten-thousandths of a major unit); this module must
//! never do arithmetic or storage in floating point.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// One percent in millionths of a whole.
pub const PERCENT: u64 = 10_000;
/// A whole (100%) in millionths.
pub const WHOLE: u64 = 1_000_000;

/// An entity or deal id: a slug `^[a-z0-9][a-z0-9._-]{0,63}$`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntityId(String);

impl EntityId {
    /// Parses a slug.
    ///
    /// # Errors
    /// A message naming the text and the expected form when it is not a slug.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bytes = text.as_bytes();
        let first_ok = bytes.first().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok =
            bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
        if first_ok && rest_ok && bytes.len() <= 64 {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!(
                "`{}` is not a slug (lower-case letters, digits, `.`, `_`, `-`; 1 to 64 characters, starting with a letter or digit)",
                truncate(text, 80)
            ))
        }
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Shortens text for an error message.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// Parses an exact non-negative decimal (`12`, `12.5`, `1.25e3`) into an
/// integer scaled by 10^`decimals`; refuses more decimals than that.
fn parse_scaled(text: &str, decimals: u32) -> Result<u128, String> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => {
            let exp: i32 = text[at + 1..].parse().map_err(|_| format!("`{text}` is not a decimal number"))?;
            (&text[..at], exp)
        }
        None => (text, 0),
    };
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_ok(whole) || !digits_ok(frac) || (mantissa.contains('.') && frac.is_empty()) {
        return Err(if text.starts_with('-') {
            format!("`{text}` is negative")
        } else {
            format!("`{text}` is not a decimal number")
        });
    }
    let frac_digits = frac.trim_end_matches('0');
    // i64: an exponent near i32::MIN must not overflow.
    let scale = frac_digits.len() as i64 - i64::from(exponent);
    if scale > i64::from(decimals) {
        return Err(format!("`{text}` has more than {decimals} decimal places"));
    }
    let mut value: u128 = 0;
    for b in whole.bytes().chain(frac_digits.bytes()) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(b - b'0')))
            .ok_or_else(|| format!("`{text}` is too large"))?;
    }
    let shift = i64::from(decimals) - scale;
    u32::try_from(shift)
        .ok()
        .and_then(|shift| 10u128.checked_pow(shift))
        .and_then(|p| value.checked_mul(p))
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Writes an integer scaled by 10^4 as the shortest exact decimal text.
pub(crate) fn format_scaled4(value: u128) -> String {
    let (whole, frac) = (value / 10_000, value % 10_000);
    if frac == 0 {
        whole.to_string()
    } else {
        let frac = format!("{frac:04}");
        format!("{whole}.{}", frac.trim_end_matches('0'))
    }
}

/// The text of a JSON number or string holding a decimal.
pub(crate) fn decimal_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) => Some(s.trim().to_owned()),
        _ => None,
    }
}

/// A share of a company: `0 < x <= 100%`, in integer millionths (100% = 1,000,000).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Stake(u32);

impl Stake {
    /// Parses a percentage text such as `49` or `33.3333` (at most 4 decimals).
    ///
    /// # Errors
    /// A message when the text is not a decimal, has too many decimals, or is
    /// outside `0 < x <= 100`.
    pub fn parse_pct(text: &str) -> Result<Self, String> {
        let millionths = parse_scaled(text, 4)?;
        if millionths == 0 || millionths > u128::from(WHOLE) {
            return Err(format!("stake_pct `{text}` is outside 0 < x <= 100"));
        }
        Ok(Self(millionths as u32))
    }

    /// Builds a stake from millionths.
    ///
    /// # Errors
    /// When `millionths` is 0 or above 1,000,000.
    pub fn from_millionths(millionths: u64) -> Result<Self, String> {
        if millionths == 0 || millionths > WHOLE {
            return Err(format!("stake of {millionths} millionths is outside 0 < x <= 100%"));
        }
        Ok(Self(millionths as u32))
    }

    /// The stake in millionths of the whole.
    pub fn millionths(self) -> u64 {
        u64::from(self.0)
    }
}

impl fmt::Display for Stake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", format_scaled4(u128::from(self.0)))
    }
}

/// Millionths of a whole as a JSON number of percent with at most 4 decimals.
pub fn pct_json(millionths: u64) -> serde_json::Value {
    if millionths.is_multiple_of(PERCENT) {
        serde_json::Value::from(millionths / PERCENT)
    } else {
        // Exact: the f64 nearest to a 4-decimal value prints back as that value.
        serde_json::Value::from(millionths as f64 / PERCENT as f64)
    }
}

/// Millionths of a whole as percent text (`49%`, `33.3333%`).
pub fn pct_text(millionths: u64) -> String {
    format!("{}%", format_scaled4(u128::from(millionths)))
}

/// An exact amount of money: ten-thousandths of a major unit and an ISO 4217 code.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    amount: u128,
    currency: [u8; 3],
}

impl Money {
    /// Builds money from an amount text (at most 4 decimals) and a currency code.
    ///
    /// # Errors
    /// When the amount is not a non-negative decimal with at most 4 decimals, or
    /// the currency is not three upper-case letters.
    pub fn parse(amount: &str, currency: &str) -> Result<Self, String> {
        let amount = parse_scaled(amount, 4).map_err(|e| format!("amount {e}"))?;
        let bytes = currency.as_bytes();
        if bytes.len() != 3 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(format!(
                "currency `{}` is not an ISO 4217 code (three upper-case letters)",
                truncate(currency, 20)
            ));
        }
        Ok(Self { amount, currency: [bytes[0], bytes[1], bytes[2]] })
    }

    /// The amount as exact decimal text in major units.
    pub fn amount_text(&self) -> String {
        format_scaled4(self.amount)
    }

    /// The ISO 4217 currency code.
    pub fn currency(&self) -> &str {
        std::str::from_utf8(&self.currency).unwrap_or("???")
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_text(), self.currency())
    }
}

/// A calendar date (valid time), stored as days since 1970-01-01.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(NaiveDate);

impl Date {
    /// Parses a real date written `YYYY-MM-DD`.
    ///
    /// # Errors
    /// When the text is not of that form or names no real day (`2025-02-30`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let b = text.as_bytes();
        let shape_ok = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shape_ok {
            return Err(format!("`{}` is not a date YYYY-MM-DD", truncate(text, 40)));
        }
        let number = |digits: &[u8]| digits.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        let (year, month, day) = (number(&b[..4]), number(&b[5..7]), number(&b[8..]));
        i32::try_from(year)
            .ok()
            .and_then(|year| NaiveDate::from_ymd_opt(year, month, day))
            .map(Self)
            .ok_or_else(|| format!("`{text}` is not a real date"))
    }

    /// Today's date in UTC.
    pub fn today() -> Self {
        Self(Utc::now().date_naive())
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days(self) -> i32 {
        self.0.num_days_from_ce() - EPOCH_DAYS_FROM_CE
    }

    /// The date `days` after 1970-01-01.
    ///
    /// # Errors
    /// When the day is outside the calendar chrono supports.
    pub fn from_days(days: i32) -> Result<Self, String> {
        days.checked_add(EPOCH_DAYS_FROM_CE)
            .and_then(NaiveDate::from_num_days_from_ce_opt)
            .map(Self)
            .ok_or_else(|| format!("day number {days} is out of range"))
    }

    /// The underlying chrono date.
    pub fn naive(self) -> NaiveDate {
        self.0
    }

    /// Hands the date's [`Display`](fmt::Display) text to `f`, formatted on
    /// the stack without the formatting machinery (the hot path of answers).
    pub fn with_text<R>(self, f: impl FnOnce(&str) -> R) -> R {
        let mut text = [0u8; 10];
        match fill_ymd(&mut text, i64::from(self.days())).then(|| std::str::from_utf8(&text).ok()).flatten() {
            Some(text) => f(text),
            None => f(&self.to_string()),
        }
    }

    /// Appends the date's [`Display`](fmt::Display) text to `out` without
    /// the formatting machinery (the hot path of canonical bytes).
    pub fn write_text(self, out: &mut Vec<u8>) {
        if !push_ymd(out, i64::from(self.days())) {
            out.extend_from_slice(self.to_string().as_bytes());
        }
    }
}

const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// Appends `YYYY-MM-DD` for day number `days` (since 1970-01-01), or nothing
/// and `false` when its year is outside 0..=9999 (where the text is not four digits).
fn push_ymd(out: &mut Vec<u8>, days: i64) -> bool {
    let mut text = [0u8; 10];
    let fits = fill_ymd(&mut text, days);
    if fits {
        out.extend_from_slice(&text);
    }
    fits
}

/// Writes `YYYY-MM-DD` for day number `days` into `text`, or returns `false`
/// when its year is outside 0..=9999.
fn fill_ymd(text: &mut [u8; 10], days: i64) -> bool {
    let (year, month, day) = civil_from_days(days);
    let Ok(year @ 0..=9999) = u32::try_from(year) else { return false };
    write_padded(&mut text[..4], year);
    text[4] = b'-';
    write_padded(&mut text[5..7], month);
    text[7] = b'-';
    write_padded(&mut text[8..], day);
    true
}

/// The proleptic Gregorian `(year, month, day)` of a day number (days since
/// 1970-01-01), by Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of the 400-year era, 0..=146_096
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // from March 1st
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    // All three fit: day is 1..=31 and month 1..=12.
    (yoe + era * 400 + i64::from(month <= 2), month as u32, day as u32)
}

/// Appends `n` in decimal, zero-padded to `width` digits (`n` must fit).
fn push_padded(out: &mut Vec<u8>, n: u32, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    write_padded(&mut out[start..], n);
}

/// Writes `n` in decimal into `digits`, zero-padded to its length (`n` must fit).
fn write_padded(digits: &mut [u8], mut n: u32) {
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.0.year(), self.0.month(), self.0.day())
    }
}

impl Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(self.days())
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let days = i32::deserialize(d)?;
        Date::from_days(days).map_err(serde::de::Error::custom)
    }
}

/// A moment in transaction time: nanoseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(i64);

impl Timestamp {
    /// Now, truncated to whole microseconds (the precision of the text form).
    pub fn now() -> Self {
        let nanos = Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX);
        Self(nanos - nanos.rem_euclid(1_000))
    }

    /// Parses an RFC 3339 timestamp (any offset; kept as UTC).
    ///
    /// # Errors
    /// When the text is not RFC 3339 or is outside the representable range.
    pub fn parse(text: &str) -> Result<Self, String> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .and_then(|t| t.with_timezone(&Utc).timestamp_nanos_opt())
            .map(Self)
            .ok_or_else(|| format!("`{}` is not an RFC 3339 timestamp", truncate(text, 60)))
    }

    /// Nanoseconds since the Unix epoch.
    pub fn nanos(self) -> i64 {
        self.0
    }

    /// Builds a timestamp from nanoseconds since the Unix epoch.
    pub fn from_nanos(nanos: i64) -> Self {
        Self(nanos)
    }

    /// Appends the timestamp's [`Display`](fmt::Display) text (RFC 3339 in
    /// UTC, microseconds, `Z`) to `out` without chrono's formatting machinery
    /// (the hot path of canonical bytes).
    pub fn write_text(self, out: &mut Vec<u8>) {
        let secs = self.0.div_euclid(1_000_000_000);
        let micros = (self.0.rem_euclid(1_000_000_000) / 1_000) as u32; // below 1_000_000
        let of_day = secs.rem_euclid(86_400) as u32; // below 86_400
        if !push_ymd(out, secs.div_euclid(86_400)) {
            out.extend_from_slice(self.to_string().as_bytes());
            return;
        }
        out.push(b'T');
        push_padded(out, of_day / 3_600, 2);
        out.push(b':');
        push_padded(out, of_day / 60 % 60, 2);
        out.push(b':');
        push_padded(out, of_day % 60, 2);
        out.push(b'.');
        push_padded(out, micros, 6);
        out.push(b'Z');
    }

    /// The later of two timestamps (transaction time never goes backwards).
    pub fn max(self, other: Self) -> Self {
        Self(self.0.max(other.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = DateTime::<Utc>::from_timestamp_nanos(self.0);
        f.write_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_dates_and_timestamps_equal_their_display() {
        let text = |write: &dyn Fn(&mut Vec<u8>)| {
            let mut out = b"x".to_vec();
            write(&mut out);
            String::from_utf8(out).expect("text")
        };
        // Every day around the edges of the four-digit fast path and of today's
        // dates, every 13th day of years 0..=9999, then a wider spread.
        let every_day =
            [(-2, 2), (1896, 2104), (9998, 10_001)].into_iter().flat_map(|(a, b)| civil_days(a)..civil_days(b));
        let years = (civil_days(0)..civil_days(10_000)).step_by(13);
        let spread = (-100_000_000..100_000_000).step_by(99_991).chain([-719_529, 2_932_896]);
        for days in every_day.chain(years).chain(spread) {
            let Ok(date) = Date::from_days(days) else { continue };
            assert_eq!(text(&|out| date.write_text(out)), format!("x{date}"), "day {days}");
        }
        let step = i64::MAX / 5_000;
        let spread = (-5_000..=5_000).flat_map(|k: i64| {
            [0, 1, 999, 1_000, 59_999_999_999, 86_399_999_999_999, 123_456_789]
                .map(|off| (k * step).saturating_add(off))
        });
        for t in spread.chain([-1, i64::MAX, i64::MIN, 1_750_000_000_123_456_789]) {
            let t = Timestamp::from_nanos(t);
            assert_eq!(text(&|out| t.write_text(out)), format!("x{t}"), "{t:?}");
        }
    }

    /// The day number of January 1st of `year`.
    fn civil_days(year: i32) -> i32 {
        NaiveDate::from_ymd_opt(year, 1, 1).expect("year").num_days_from_ce() - EPOCH_DAYS_FROM_CE
    }

    #[test]
    fn slugs() {
        assert!(EntityId::parse("scale-ai").is_ok());
        assert!(EntityId::parse("a.b_c-9").is_ok());
        assert!(EntityId::parse("Meta").is_err());
        assert!(EntityId::parse("-x").is_err());
        assert!(EntityId::parse("").is_err());
        assert!(EntityId::parse(&"a".repeat(64)).is_ok());
        assert!(EntityId::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn stakes_are_exact() {
        assert_eq!(Stake::parse_pct("49").map(Stake::millionths), Ok(490_000));
        assert_eq!(Stake::parse_pct("33.3333").map(Stake::millionths), Ok(333_333));
        assert_eq!(Stake::parse_pct("100").map(Stake::millionths), Ok(1_000_000));
        assert_eq!(Stake::parse_pct("1e1").map(Stake::millionths), Ok(100_000));
        assert_eq!(Stake::parse_pct("12.50000").map(Stake::millionths), Ok(125_000));
        assert!(Stake::parse_pct("0").is_err());
        assert!(Stake::parse_pct("100.0001").is_err());
        assert!(Stake::parse_pct("12.34567").is_err());
        assert!(Stake::parse_pct("-5").is_err());
        assert!(Stake::parse_pct("5.").is_err());
        assert!(Stake::parse_pct("abc").is_err());
        assert!(Stake::parse_pct("1e-2147483648").is_err_and(|e| e.contains("decimal places")));
        assert!(Stake::parse_pct("1e2147483647").is_err_and(|e| e.contains("too large")));
    }

    #[test]
    fn percentages_print_with_at_most_four_decimals() {
        assert_eq!(pct_json(490_000).to_string(), "49");
        assert_eq!(pct_json(333_333).to_string(), "33.3333");
        assert_eq!(pct_json(1).to_string(), "0.0001");
        assert_eq!(pct_text(125_000), "12.5%");
    }

    #[test]
    fn money_is_exact() {
        let m = Money::parse("14800000000", "USD").expect("valid");
        assert_eq!(m.amount_text(), "14800000000");
        assert_eq!(Money::parse("100.50", "EUR").expect("valid").amount_text(), "100.5");
        assert!(Money::parse("1.23456", "USD").is_err());
        assert!(Money::parse("10", "usd").is_err());
        assert!(Money::parse("10", "USDX").is_err());
    }

    #[test]
    fn dates_are_real() {
        assert!(Date::parse("2025-02-30").is_err());
        assert!(Date::parse("2025-2-3").is_err());
        let d = Date::parse("2025-06-12").expect("valid");
        assert_eq!(d.to_string(), "2025-06-12");
        assert_eq!(Date::from_days(d.days()), Ok(d));
        assert_eq!(Date::parse("1970-01-01").map(Date::days), Ok(0));
    }

    #[test]
    fn timestamps_round_trip_at_microseconds() {
        let t = Timestamp::parse("2025-06-13T10:00:00.123456Z").expect("valid");
        assert_eq!(t.to_string(), "2025-06-13T10:00:00.123456Z");
        let n = Timestamp::now();
        assert_eq!(Timestamp::parse(&n.to_string()), Ok(n));
    }
}

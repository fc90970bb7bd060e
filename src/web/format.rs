//! How pages write money, dates and states for people, in Korean or English.

use time::{OffsetDateTime, UtcOffset};

use super::i18n::Lang;
use crate::catalog::{model::SaleState, money::Money};

/// The zone most events are in; its times are shown without a zone name.
pub const HOME_ZONE: &str = "Asia/Seoul";

/// The offset in force in the IANA zone `timezone` at `at` (summer time included) and the zone's
/// abbreviation then ("KST", "CET", "EDT"), from the time zone database built into the binary;
/// UTC for a name it does not know (events are checked on write).
fn zone_at(timezone: &str, at: OffsetDateTime) -> (UtcOffset, String) {
    let (Ok(zone), Ok(instant)) = (
        jiff::tz::TimeZone::get(timezone),
        jiff::Timestamp::from_second(at.unix_timestamp()),
    ) else {
        return (UtcOffset::UTC, "UTC".to_owned());
    };
    let info = zone.to_offset_info(instant);
    let offset = UtcOffset::from_whole_seconds(info.offset().seconds()).unwrap_or(UtcOffset::UTC);
    (offset, info.abbreviation().to_owned())
}

/// The UTC offset in force in the IANA zone `timezone` at `at`.
pub fn offset_at(timezone: &str, at: OffsetDateTime) -> UtcOffset {
    zone_at(timezone, at).0
}

/// "2026년 12월 24일 (목) 19:00" / "Thu 24 Dec 2026, 19:00" in the event's zone; outside Korea
/// the zone's abbreviation follows ("Thu 24 Dec 2026, 11:00 CET").
pub fn datetime(lang: Lang, at: OffsetDateTime, timezone: &str) -> String {
    let (offset, abbreviation) = zone_at(timezone, at);
    let at = at.to_offset(offset);
    let zone = if timezone == HOME_ZONE {
        String::new()
    } else {
        format!(" {abbreviation}")
    };
    match lang {
        Lang::Ko => {
            const DAYS: [&str; 7] = ["월", "화", "수", "목", "금", "토", "일"];
            format!(
                "{}년 {}월 {}일 ({}) {:02}:{:02}{zone}",
                at.year(),
                u8::from(at.month()),
                at.day(),
                DAYS[at.weekday().number_days_from_monday() as usize],
                at.hour(),
                at.minute()
            )
        }
        Lang::En => {
            const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            format!(
                "{} {} {} {}, {:02}:{:02}{zone}",
                DAYS[at.weekday().number_days_from_monday() as usize],
                at.day(),
                MONTHS[u8::from(at.month()) as usize - 1],
                at.year(),
                at.hour(),
                at.minute()
            )
        }
    }
}

/// RFC 3339, for `<time datetime>` and scripts.
pub fn iso(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// "165,000원" / "₩165,000"; other currencies as "12.50 USD".
pub fn money(lang: Lang, amount: Money, currency: &str) -> String {
    let minor = amount.minor();
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let units = group(abs / 100);
    let cents = abs % 100;
    match (currency, lang) {
        ("KRW", Lang::Ko) => format!("{sign}{units}원"),
        ("KRW", Lang::En) => format!("{sign}₩{units}"),
        _ => format!("{sign}{units}.{cents:02} {currency}"),
    }
}

fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A sale state in words, and the CSS class of its badge.
pub fn sale_state(lang: Lang, state: SaleState) -> (&'static str, &'static str) {
    let (ko, en, class) = match state {
        SaleState::Upcoming => ("판매 예정", "Opens soon", "upcoming"),
        SaleState::OnSale => ("판매 중", "On sale", "on-sale"),
        SaleState::SoldOut => ("매진", "Sold out", "sold-out"),
        SaleState::Closed => ("판매 종료", "Closed", "closed"),
    };
    (if lang == Lang::Ko { ko } else { en }, class)
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn won_are_grouped_by_thousands_without_decimals() {
        let price = Money::from_minor(16_500_000);
        assert_eq!(money(Lang::Ko, price, "KRW"), "165,000원");
        assert_eq!(money(Lang::En, price, "KRW"), "₩165,000");
        assert_eq!(money(Lang::En, Money::from_minor(1250), "USD"), "12.50 USD");
    }

    #[test]
    fn korean_events_are_shown_in_korean_time() {
        let at = datetime!(2026-12-24 10:00 UTC);
        assert_eq!(
            datetime(Lang::Ko, at, "Asia/Seoul"),
            "2026년 12월 24일 (목) 19:00"
        );
        assert_eq!(
            datetime(Lang::En, at, "Asia/Seoul"),
            "Thu 24 Dec 2026, 19:00"
        );
        assert_eq!(
            datetime(Lang::En, at, "Europe/Paris"),
            "Thu 24 Dec 2026, 11:00 CET"
        );
        assert_eq!(
            datetime(
                Lang::En,
                datetime!(2027-07-01 10:00 UTC),
                "America/New_York"
            ),
            "Thu 1 Jul 2027, 06:00 EDT"
        );
        assert_eq!(datetime(Lang::En, at, "UTC"), "Thu 24 Dec 2026, 10:00 UTC");
    }
}

//! Retention arithmetic and the built-in default policy.
//!
//! German commercial and tax law (§ 257 (5) HGB, § 147 (4) AO) starts a retention period at
//! the end of the calendar year in which a document was received, sent or created. The
//! periods come from a versioned catalogue (`catalogue`, data in `schemas/retention-de.toml`);
//! holds and four-eyes disposal live a layer up, in `crate::disposal`. Pure functions take
//! `now`; nothing here reads the store.

pub mod catalogue;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// The retention block of a record revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Policy name, e.g. `booking-voucher-8y`.
    pub policy: String,
    /// The norm the period rests on.
    pub legal_basis: String,
    /// Catalogue version used for the computation.
    pub catalogue: String,
    /// Length of the period in years.
    pub period_years: u32,
    /// Day the period starts (end of the calendar year of the trigger date).
    pub start: NaiveDate,
    /// Last day the record must be kept.
    pub retain_until: NaiveDate,
    /// For event-triggered classes: the event (e.g. `contract end`) not yet recorded;
    /// until it is, `retain_until` is a lower bound counted from the document date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub awaiting_event: Option<String>,
}

/// Last day of the year `date` falls in.
pub fn end_of_year(date: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(date.year(), 12, 31).unwrap_or(date)
}

/// Retention for a record of `class` by the shipped catalogue.
pub fn compute(class: &str, trigger: NaiveDate) -> Retention {
    catalogue::Catalogue::shipped().compute(class, trigger)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn invoice_kept_eight_years_from_end_of_year() {
        let r = compute("invoice", d(2025, 3, 14));
        assert_eq!(r.start, d(2025, 12, 31));
        assert_eq!(r.retain_until, d(2033, 12, 31));
        assert_eq!(r.period_years, 8);
    }

    #[test]
    fn email_six_years_annual_statement_ten_years() {
        assert_eq!(
            compute("email", d(2024, 12, 31)).retain_until,
            d(2030, 12, 31)
        );
        assert_eq!(
            compute("annual-statement", d(2024, 1, 1)).retain_until,
            d(2034, 12, 31)
        );
    }

    #[test]
    fn recompute_never_shortens() {
        let c = catalogue::Catalogue::shipped();
        let ten = compute("annual-statement", d(2024, 2, 29));
        let again = c.recompute(&ten, "email", d(2024, 2, 29));
        assert_eq!(again.retain_until, ten.retain_until);
    }

    proptest! {
        #[test]
        fn retain_until_is_a_year_end_after_the_trigger(y in 1970i32..2200, doy in 1u32..=366, class in "[a-z-]{1,12}") {
            let trigger = NaiveDate::from_yo_opt(y, doy).unwrap_or(d(y, 12, 31));
            let r = compute(&class, trigger);
            prop_assert_eq!((r.retain_until.month(), r.retain_until.day()), (12, 31));
            prop_assert!(r.retain_until > trigger);
            prop_assert_eq!(r.retain_until.year() - trigger.year(), r.period_years as i32);
        }
    }
}

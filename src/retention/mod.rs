//! Retention arithmetic and the built-in default policy.
//!
//! German commercial and tax law (§ 257 (5) HGB, § 147 (4) AO) starts a retention period at
//! the end of the calendar year in which a document was received, sent or created. The
//! full, data-driven catalogue comes later; until then a small built-in table maps the
//! three statutory groups. Pure functions: `now` is passed in.

pub mod disposal;
pub mod hold;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// Version label of the built-in table, stored with every computation so that a change of
/// law can be traced.
pub const BUILTIN_CATALOGUE: &str = "builtin-2025.1";

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
}

struct Policy {
    name: &'static str,
    years: u32,
    basis: &'static str,
    classes: &'static [&'static str],
}

const POLICIES: &[Policy] = &[
    Policy {
        name: "booking-voucher-8y",
        years: 8,
        basis: "§ 147 (3) AO, § 257 (4) HGB, § 14b UStG (as amended by BEG IV)",
        classes: &["invoice", "credit-note", "booking-voucher", "receipt"],
    },
    Policy {
        name: "business-letter-6y",
        years: 6,
        basis: "§ 257 (1) nos. 2-3 HGB, § 147 (1) nos. 2-3 AO",
        classes: &[
            "email",
            "business-letter",
            "letter",
            "order",
            "offer",
            "delivery-note",
            "complaint",
            "phone-note",
        ],
    },
];

const DEFAULT_POLICY: Policy = Policy {
    name: "books-10y",
    years: 10,
    basis: "§ 257 (1) no. 1 HGB, § 147 (1) no. 1 AO (conservative default)",
    classes: &[],
};

fn policy_for(class: &str) -> &'static Policy {
    POLICIES
        .iter()
        .find(|p| p.classes.contains(&class))
        .unwrap_or(&DEFAULT_POLICY)
}

/// Last day of the year `date` falls in.
pub fn end_of_year(date: NaiveDate) -> NaiveDate {
    NaiveDate::from_ymd_opt(date.year(), 12, 31).unwrap_or(date)
}

/// Retention for a record of `class` whose trigger date (document date, or the day it
/// was archived) is `trigger`.
pub fn compute(class: &str, trigger: NaiveDate) -> Retention {
    let p = policy_for(class);
    let start = end_of_year(trigger);
    let until_year = start.year().saturating_add(p.years as i32);
    let retain_until = NaiveDate::from_ymd_opt(until_year, 12, 31).unwrap_or(NaiveDate::MAX);
    Retention {
        policy: p.name.to_string(),
        legal_basis: p.basis.to_string(),
        catalogue: BUILTIN_CATALOGUE.to_string(),
        period_years: p.years,
        start,
        retain_until,
    }
}

/// The retention that results from recomputing `current` for a new class or date:
/// never shorter than `current` (retention can be extended, never shortened).
pub fn recompute(current: &Retention, class: &str, trigger: NaiveDate) -> Retention {
    let next = compute(class, trigger);
    if next.retain_until >= current.retain_until {
        next
    } else {
        current.clone()
    }
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
    fn email_six_years_contract_ten_years() {
        assert_eq!(
            compute("email", d(2024, 12, 31)).retain_until,
            d(2030, 12, 31)
        );
        assert_eq!(
            compute("contract", d(2024, 1, 1)).retain_until,
            d(2034, 12, 31)
        );
    }

    #[test]
    fn recompute_never_shortens() {
        let ten = compute("contract", d(2024, 2, 29));
        let again = recompute(&ten, "email", d(2024, 2, 29));
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

//! The retention catalogue as data (`schemas/retention-de.toml`): class → period →
//! trigger → legal basis, versioned. A company catalogue in the same format adds classes
//! and overrides entries.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use super::{Retention, end_of_year};
use crate::error::{Error, Result};

/// The shipped German catalogue.
pub const SHIPPED: &str = include_str!("../../schemas/retention-de.toml");

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub label_de: Option<String>,
    #[serde(default)]
    pub label_en: Option<String>,
    pub years: u32,
    /// `document-date` (default) or `event`.
    #[serde(default)]
    pub trigger: Option<String>,
    /// For event triggers: what the event is (`contract end`, `case closed`).
    #[serde(default)]
    pub event: Option<String>,
    pub basis: String,
}

impl Entry {
    pub fn policy_name(&self) -> String {
        self.policy
            .clone()
            .unwrap_or_else(|| format!("{}-{}y", self.id, self.years))
    }

    pub fn is_event(&self) -> bool {
        self.trigger.as_deref() == Some("event")
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    version: String,
    #[serde(default)]
    law: Option<String>,
    #[serde(default)]
    default: Option<Entry>,
    #[serde(default)]
    class: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    pub version: String,
    pub law: String,
    pub default: Entry,
    pub classes: BTreeMap<String, Entry>,
}

fn check(e: &Entry, what: &str) -> Result<()> {
    if e.years == 0 || e.years > 100 {
        return Err(Error::invalid(
            "catalogue",
            format!("{what}: years must be 1..100"),
        ));
    }
    match e.trigger.as_deref() {
        None | Some("document-date") | Some("event") => {}
        Some(t) => {
            return Err(Error::invalid(
                "catalogue",
                format!("{what}: unknown trigger {t:?}"),
            ));
        }
    }
    if e.basis.trim().is_empty() {
        return Err(Error::invalid(
            "catalogue",
            format!("{what}: every entry names its legal basis"),
        ));
    }
    Ok(())
}

impl Catalogue {
    pub fn parse(text: &str) -> Result<Catalogue> {
        let f: FileFormat =
            toml::from_str(text).map_err(|e| Error::invalid("catalogue", e.to_string()))?;
        let default = f.default.unwrap_or(Entry {
            id: "unclassified".into(),
            policy: Some("unclassified-10y".into()),
            label_de: None,
            label_en: None,
            years: 10,
            trigger: None,
            event: None,
            basis: "conservative default: § 257 (1) Nr. 1 HGB, § 147 (1) Nr. 1 AO".into(),
        });
        check(&default, "default")?;
        let mut classes = BTreeMap::new();
        for e in f.class {
            crate::ids::validate_class(&e.id).map_err(|_| {
                Error::invalid(
                    "catalogue",
                    format!("{:?} is not a kebab-case class id", e.id),
                )
            })?;
            check(&e, &e.id)?;
            if classes.insert(e.id.clone(), e.clone()).is_some() {
                return Err(Error::invalid(
                    "catalogue",
                    format!("class {} given twice", e.id),
                ));
            }
        }
        Ok(Catalogue {
            version: f.version,
            law: f.law.unwrap_or_default(),
            default,
            classes,
        })
    }

    /// The shipped catalogue. It is parsed by a test on every build; should it ever fail,
    /// a 10-year default is used for every class rather than refusing to archive.
    pub fn shipped() -> Catalogue {
        Catalogue::parse(SHIPPED).unwrap_or_else(|e| {
            tracing::error!("the shipped retention catalogue does not parse: {e}");
            Catalogue {
                version: "fallback".into(),
                law: String::new(),
                default: Entry {
                    id: "unclassified".into(),
                    policy: None,
                    label_de: None,
                    label_en: None,
                    years: 10,
                    trigger: None,
                    event: None,
                    basis: "fallback".into(),
                },
                classes: BTreeMap::new(),
            }
        })
    }

    /// This catalogue with a company catalogue's classes added or overriding.
    pub fn with_company(mut self, company: Catalogue) -> Catalogue {
        self.version = format!("{}+{}", self.version, company.version);
        self.classes.extend(company.classes);
        self
    }

    pub fn entry(&self, class: &str) -> &Entry {
        self.classes.get(class).unwrap_or(&self.default)
    }

    /// Retention for a record of `class` whose trigger date is `trigger`.
    pub fn compute(&self, class: &str, trigger: NaiveDate) -> Retention {
        let e = self.entry(class);
        let start = end_of_year(trigger);
        let until_year = start.year().saturating_add(e.years as i32);
        Retention {
            policy: e.policy_name(),
            legal_basis: e.basis.clone(),
            catalogue: self.version.clone(),
            period_years: e.years,
            start,
            retain_until: NaiveDate::from_ymd_opt(until_year, 12, 31).unwrap_or(NaiveDate::MAX),
            awaiting_event: if e.is_event() {
                e.event.clone().or(Some("event".into()))
            } else {
                None
            },
        }
    }

    /// Recomputes for a new class, date or catalogue: never shorter than `current`.
    pub fn recompute(&self, current: &Retention, class: &str, trigger: NaiveDate) -> Retention {
        let mut next = self.compute(class, trigger);
        if current.awaiting_event.is_none()
            && next.awaiting_event.is_some()
            && current.policy == next.policy
        {
            next.awaiting_event = None;
        }
        if next.retain_until >= current.retain_until {
            next
        } else {
            current.clone()
        }
    }

    /// Applies an event (contract end, case closed) to an event-triggered retention:
    /// the period now runs from the end of the event's year; never shorter than before.
    pub fn apply_event(&self, current: &Retention, class: &str, event: NaiveDate) -> Retention {
        let e = self.entry(class);
        let start = end_of_year(event);
        let until = NaiveDate::from_ymd_opt(start.year().saturating_add(e.years as i32), 12, 31)
            .unwrap_or(NaiveDate::MAX);
        let mut next = current.clone();
        next.awaiting_event = None;
        next.catalogue = self.version.clone();
        if until > current.retain_until {
            next.start = start;
            next.retain_until = until;
        }
        next
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
    fn shipped_catalogue_parses_and_names_its_law() {
        let c = Catalogue::parse(SHIPPED).unwrap();
        assert_eq!(c.version, "de-2025.1");
        assert_eq!(c.entry("invoice").years, 8);
        assert_eq!(c.entry("email").years, 6);
        assert_eq!(c.entry("annual-statement").years, 10);
        assert!(c.entry("contract").is_event());
        assert!(c.classes.values().all(|e| !e.basis.is_empty()));
        assert_eq!(c.entry("no-such-class").years, 10);
    }

    #[test]
    fn company_catalogue_adds_and_overrides() {
        let company = Catalogue::parse(
            "version = \"acme-3\"\n[[class]]\nid = \"email\"\nyears = 10\nbasis = \"Konzernrichtlinie\"\n[[class]]\nid = \"quality-record\"\nyears = 15\nbasis = \"ISO 9001 Handbuch\"\n",
        )
        .unwrap();
        let c = Catalogue::shipped().with_company(company);
        assert_eq!(c.version, "de-2025.1+acme-3");
        assert_eq!(
            c.compute("email", d(2025, 5, 1)).retain_until,
            d(2035, 12, 31)
        );
        assert_eq!(
            c.compute("quality-record", d(2025, 5, 1)).retain_until,
            d(2040, 12, 31)
        );
        assert_eq!(
            c.compute("invoice", d(2025, 5, 1)).retain_until,
            d(2033, 12, 31)
        );
    }

    #[test]
    fn bad_catalogues_are_refused() {
        assert!(
            Catalogue::parse(
                "version = \"x\"\n[[class]]\nid = \"Bad Id\"\nyears = 5\nbasis = \"b\"\n"
            )
            .is_err()
        );
        assert!(
            Catalogue::parse("version = \"x\"\n[[class]]\nid = \"a\"\nyears = 0\nbasis = \"b\"\n")
                .is_err()
        );
        assert!(
            Catalogue::parse("version = \"x\"\n[[class]]\nid = \"a\"\nyears = 5\nbasis = \"\"\n")
                .is_err()
        );
        assert!(Catalogue::parse("version = \"x\"\n[[class]]\nid = \"a\"\nyears = 5\nbasis = \"b\"\ntrigger = \"moon\"\n").is_err());
    }

    #[test]
    fn contract_end_extends_from_the_end_of_its_year() {
        let c = Catalogue::shipped();
        let r = c.compute("contract", d(2020, 3, 1));
        assert_eq!(r.retain_until, d(2026, 12, 31));
        assert_eq!(r.awaiting_event.as_deref(), Some("contract end"));
        let ended = c.apply_event(&r, "contract", d(2029, 6, 30));
        assert_eq!(ended.retain_until, d(2035, 12, 31));
        assert!(ended.awaiting_event.is_none());
        // An event earlier than the current basis never shortens.
        assert_eq!(
            c.apply_event(&ended, "contract", d(2021, 1, 1))
                .retain_until,
            d(2035, 12, 31)
        );
    }

    proptest! {
        #[test]
        fn every_entry_ends_on_a_year_end_after_its_trigger(y in 1990i32..2100, doy in 1u32..=366, pick in 0usize..64) {
            let c = Catalogue::shipped();
            let ids: Vec<&String> = c.classes.keys().collect();
            let class = ids[pick % ids.len()];
            let trigger = NaiveDate::from_yo_opt(y, doy).unwrap_or(d(y, 12, 31));
            let r = c.compute(class, trigger);
            prop_assert_eq!((r.retain_until.month(), r.retain_until.day()), (12, 31));
            prop_assert_eq!(r.retain_until.year() - trigger.year(), c.entry(class).years as i32);
            prop_assert_eq!(r.start, d(y, 12, 31));
        }

        #[test]
        fn recomputation_and_events_only_extend(y in 1990i32..2100, m in 1u32..=12, y2 in 1990i32..2100, a in 0usize..64, b in 0usize..64) {
            let c = Catalogue::shipped();
            let ids: Vec<&String> = c.classes.keys().collect();
            let (ca, cb) = (ids[a % ids.len()], ids[b % ids.len()]);
            let cur = c.compute(ca, d(y, m, 1));
            prop_assert!(c.recompute(&cur, cb, d(y2, m, 1)).retain_until >= cur.retain_until);
            prop_assert!(c.apply_event(&cur, ca, d(y2, m, 1)).retain_until >= cur.retain_until);
        }
    }
}

//! Facet counts (class, party, role, year, retention state) over all hits of a query,
//! read from fast fields. The retention state is computed at query time from
//! `retain_until`, `held` and `awaiting`, so it never goes stale as days pass.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

/// Counts per facet: `class`, `party`, `role`, `year`, `retention_state`.
pub type Facets = BTreeMap<String, BTreeMap<String, u64>>;

const STR_FACETS: [&str; 3] = ["class", "party", "role"];

pub struct FacetCollector {
    today: i64,
}

impl FacetCollector {
    pub fn new(today: NaiveDate) -> FacetCollector {
        FacetCollector {
            today: today
                .and_hms_opt(0, 0, 0)
                .map(|t| t.and_utc().timestamp())
                .unwrap_or(0),
        }
    }
}

pub struct SegmentFacets {
    today: i64,
    strs: Vec<(&'static str, Option<StrColumn>, HashMap<u64, u64>)>,
    year: Column<u64>,
    retain_until: Column<tantivy::DateTime>,
    held: Column<u64>,
    awaiting: Column<u64>,
    years: HashMap<u64, u64>,
    states: HashMap<&'static str, u64>,
}

impl Collector for FacetCollector {
    type Fruit = Facets;
    type Child = SegmentFacets;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        seg: &SegmentReader,
    ) -> tantivy::Result<SegmentFacets> {
        let ff = seg.fast_fields();
        let mut strs = Vec::new();
        for name in STR_FACETS {
            strs.push((name, ff.str(name)?, HashMap::new()));
        }
        Ok(SegmentFacets {
            today: self.today,
            strs,
            year: ff.u64("year")?,
            retain_until: ff.date("retain_until")?,
            held: ff.u64("held")?,
            awaiting: ff.u64("awaiting")?,
            years: HashMap::new(),
            states: HashMap::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Facets>) -> tantivy::Result<Facets> {
        let mut out = Facets::new();
        for f in fruits {
            for (facet, counts) in f {
                let e = out.entry(facet).or_default();
                for (v, n) in counts {
                    *e.entry(v).or_default() += n;
                }
            }
        }
        Ok(out)
    }
}

impl SegmentCollector for SegmentFacets {
    type Fruit = Facets;

    fn collect(&mut self, doc: DocId, _: Score) {
        for (_, col, counts) in &mut self.strs {
            if let Some(col) = col {
                for ord in col.term_ords(doc) {
                    *counts.entry(ord).or_default() += 1;
                }
            }
        }
        if let Some(y) = self.year.first(doc) {
            *self.years.entry(y).or_default() += 1;
        }
        let state = if self.held.first(doc) == Some(1) {
            "held"
        } else if self
            .retain_until
            .first(doc)
            .is_some_and(|d| d.into_timestamp_secs() < self.today)
        {
            "eligible"
        } else if self.awaiting.first(doc) == Some(1) {
            "awaiting-event"
        } else {
            "retained"
        };
        *self.states.entry(state).or_default() += 1;
    }

    fn harvest(self) -> Facets {
        let mut out = Facets::new();
        for (name, col, counts) in self.strs {
            let e = out.entry(name.to_string()).or_default();
            if let Some(col) = col {
                let mut s = String::new();
                for (ord, n) in counts {
                    s.clear();
                    if col.ord_to_str(ord, &mut s).unwrap_or(false) {
                        *e.entry(s.clone()).or_default() += n;
                    }
                }
            }
        }
        out.insert(
            "year".into(),
            self.years
                .into_iter()
                .map(|(y, n)| (y.to_string(), n))
                .collect(),
        );
        out.insert(
            "retention_state".into(),
            self.states
                .into_iter()
                .map(|(s, n)| (s.to_string(), n))
                .collect(),
        );
        out
    }
}

//! Facet counts (class, party, role, year, retention state) over all hits of a query,
//! read from fast fields. The retention state is computed at query time from the packed
//! `facet_key` (retain-until, held, awaiting an event), so it never goes stale as days
//! pass. String values are counted by term ordinal and named through a per-segment cache
//! of each column's terms (segments never change, so it is built once per segment).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

/// Counts per facet: `class`, `party`, `role`, `year`, `retention_state`.
pub type Facets = BTreeMap<String, BTreeMap<String, u64>>;

const STR_FACETS: [&str; 3] = ["class", "party", "role"];

pub struct FacetCollector {
    today: u64,
    cache: Arc<TermCache>,
}

/// Terms of each facet column per segment, by ordinal.
#[derive(Debug, Default)]
pub struct TermCache(Mutex<HashMap<(tantivy::index::SegmentId, &'static str), Terms>>);

/// A column's terms, by ordinal.
type Terms = Arc<Vec<String>>;

impl TermCache {
    fn terms(
        &self,
        seg: tantivy::index::SegmentId,
        name: &'static str,
        col: &StrColumn,
    ) -> tantivy::Result<Arc<Vec<String>>> {
        if let Ok(m) = self.0.lock()
            && let Some(t) = m.get(&(seg, name))
        {
            return Ok(t.clone());
        }
        let mut terms = Vec::with_capacity(col.num_terms());
        let mut stream = col.dictionary().stream()?;
        while stream.advance() {
            terms.push(String::from_utf8_lossy(stream.key()).into_owned());
        }
        let terms = Arc::new(terms);
        if let Ok(mut m) = self.0.lock() {
            m.insert((seg, name), terms.clone());
        }
        Ok(terms)
    }

    /// Drops the entries of segments no longer searched (after merges).
    pub fn retain(&self, live: &[tantivy::index::SegmentId]) {
        if let Ok(mut m) = self.0.lock() {
            m.retain(|(s, _), _| live.contains(s));
        }
    }
}

fn days(d: NaiveDate) -> u64 {
    u64::try_from(d.signed_duration_since(NaiveDate::MIN).num_days()).unwrap_or(0)
}

/// Packs what the year and retention-state facets need into one fast value: year (bits
/// 40..), retain-until as days since `NaiveDate::MIN` (bits 2..40, 0 when unknown), held
/// (bit 1), awaiting an event (bit 0).
pub fn pack(year: i32, retain_until: Option<NaiveDate>, held: bool, awaiting: bool) -> u64 {
    (u64::try_from(year).unwrap_or(0) << 40)
        | (retain_until.map_or(0, days) << 2)
        | (u64::from(held) << 1)
        | u64::from(awaiting)
}

impl FacetCollector {
    pub fn new(today: NaiveDate, cache: Arc<TermCache>) -> FacetCollector {
        FacetCollector {
            today: days(today),
            cache,
        }
    }
}

pub struct SegmentFacets {
    today: u64,
    /// Per string facet: its column, the segment's terms by ordinal, a count per ordinal.
    strs: Vec<(&'static str, Option<StrColumn>, Vec<u64>)>,
    terms: Vec<Arc<Vec<String>>>,
    key: Column<u64>,
    keys: Vec<Option<u64>>,
    ords: Vec<Option<u64>>,
    doc_buf: Vec<DocId>,
    row_buf: Vec<u32>,
    val_buf: Vec<u64>,
    years: HashMap<u64, u64>,
    /// held, eligible, awaiting-event, retained.
    states: [u64; 4],
}

/// FNV-1a: facet values are short ids, and std's SipHash dominates the merge otherwise.
#[derive(Default, Clone, Copy)]
struct Fnv;

impl std::hash::BuildHasher for Fnv {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(0xcbf2_9ce4_8422_2325)
    }
}

struct FnvHasher(u64);

impl std::hash::Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// What one segment counted: per string facet its terms and a count per ordinal.
pub struct SegmentCounts {
    strs: Vec<(&'static str, Terms, Vec<u64>)>,
    years: HashMap<u64, u64>,
    states: [u64; 4],
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
        let mut terms = Vec::new();
        for name in STR_FACETS {
            let col = ff.str(name)?;
            let n = col.as_ref().map_or(0, |c| c.num_terms());
            terms.push(match &col {
                Some(c) => self.cache.terms(seg.segment_id(), name, c)?,
                None => Arc::default(),
            });
            strs.push((name, col, vec![0; n]));
        }
        Ok(SegmentFacets {
            today: self.today,
            strs,
            terms,
            key: ff.u64("facet_key")?,
            keys: Vec::new(),
            ords: Vec::new(),
            doc_buf: Vec::new(),
            row_buf: Vec::new(),
            val_buf: Vec::new(),
            years: HashMap::new(),
            states: [0; 4],
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<SegmentCounts>) -> tantivy::Result<Facets> {
        let mut out = Facets::new();
        for (i, name) in STR_FACETS.iter().enumerate() {
            // Borrowed names while adding up: no string is copied until the end.
            let mut sum: HashMap<&str, u64, Fnv> = HashMap::default();
            for f in &fruits {
                if let Some((_, terms, counts)) = f.strs.get(i) {
                    for (ord, n) in counts.iter().enumerate() {
                        if *n > 0
                            && let Some(t) = terms.get(ord)
                        {
                            *sum.entry(t.as_str()).or_default() += n;
                        }
                    }
                }
            }
            let mut v: Vec<(&str, u64)> = sum.into_iter().collect();
            if *name == "party" && v.len() > super::PARTY_FACET_LIMIT {
                v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
                v.truncate(super::PARTY_FACET_LIMIT);
            }
            out.insert(
                name.to_string(),
                v.into_iter().map(|(t, n)| (t.to_string(), n)).collect(),
            );
        }
        let mut years: BTreeMap<String, u64> = BTreeMap::new();
        let mut states = [0u64; 4];
        for f in &fruits {
            for (y, n) in &f.years {
                *years.entry(y.to_string()).or_default() += n;
            }
            for (s, n) in states.iter_mut().zip(f.states) {
                *s += n;
            }
        }
        out.insert("year".into(), years);
        out.insert(
            "retention_state".into(),
            ["held", "eligible", "awaiting-event", "retained"]
                .into_iter()
                .zip(states)
                .filter(|(_, n)| *n > 0)
                .map(|(s, n)| (s.to_string(), n))
                .collect(),
        );
        Ok(out)
    }
}

impl SegmentCollector for SegmentFacets {
    type Fruit = SegmentCounts;

    fn collect(&mut self, doc: DocId, _: Score) {
        self.collect_block(&[doc]);
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        for (name, col, counts) in &mut self.strs {
            if let Some(col) = col {
                if *name == "class" {
                    // One class per record: a block read.
                    self.ords.clear();
                    self.ords.resize(docs.len(), None);
                    col.ords().first_vals(docs, &mut self.ords);
                    for o in self.ords.iter().flatten() {
                        if let Some(c) = counts.get_mut(*o as usize) {
                            *c += 1;
                        }
                    }
                    continue;
                }
                // Several links per record: row ids for the block, then values in one go.
                self.doc_buf.clear();
                self.row_buf.clear();
                col.ords()
                    .row_ids_for_docs(docs, &mut self.doc_buf, &mut self.row_buf);
                self.val_buf.clear();
                self.val_buf.resize(self.row_buf.len(), 0);
                col.ords().values.get_vals(&self.row_buf, &mut self.val_buf);
                for o in &self.val_buf {
                    if let Some(c) = counts.get_mut(*o as usize) {
                        *c += 1;
                    }
                }
            }
        }
        self.keys.clear();
        self.keys.resize(docs.len(), None);
        self.key.first_vals(docs, &mut self.keys);
        for k in self.keys.iter().flatten() {
            *self.years.entry(k >> 40).or_default() += 1;
            let until = (k >> 2) & ((1 << 38) - 1);
            let state = if k & 2 != 0 {
                0
            } else if until != 0 && until < self.today {
                1
            } else if k & 1 != 0 {
                2
            } else {
                3
            };
            self.states[state] += 1;
        }
    }

    fn harvest(self) -> SegmentCounts {
        SegmentCounts {
            strs: self
                .strs
                .into_iter()
                .zip(self.terms)
                .map(|((name, _, counts), terms)| (name, terms, counts))
                .collect(),
            years: self.years,
            states: self.states,
        }
    }
}

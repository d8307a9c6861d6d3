//! Facet counts (class, party, role, year, retention state) over all hits of a query,
//! read from fast fields. The retention state is computed at query time from the packed
//! `facet_key` (retain-until, held, awaiting an event), so it never goes stale as days
//! pass. String values are counted by term ordinal; each segment's ordinals map to ids
//! shared by all segments (built once per segment: segments never change), so adding up
//! the segments is adding arrays, and only the values shown are ever named.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use rustc_hash::FxHashMap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, StrColumn};
use tantivy::index::SegmentId;
use tantivy::query::Weight;
use tantivy::{COLLECT_BLOCK_BUFFER_LEN, DocId, DocSet, Score, SegmentOrdinal, SegmentReader};

/// Counts per facet: `class`, `party`, `role`, `year`, `retention_state`.
pub type Facets = BTreeMap<String, BTreeMap<String, u64>>;

/// Documents counted together when they arrive one at a time.
const BLOCK: usize = 64;

const STR_FACETS: [&str; 3] = ["class", "party", "role"];

pub struct FacetCollector {
    today: u64,
    cache: Arc<TermCache>,
}

/// Per segment: each facet column's ordinals as shared ids, and the counts of all its
/// live documents (for queries that match most of it).
#[derive(Default)]
pub struct TermCache {
    terms: Mutex<HashMap<(SegmentId, usize), Terms>>,
    /// Per string facet, the values of all segments seen, by shared id.
    names: Mutex<[Names; 3]>,
    totals: Mutex<HashMap<(SegmentId, u32, u64), Arc<SegmentCounts>>>,
}

#[derive(Default)]
struct Names {
    ids: FxHashMap<String, u32>,
    names: Vec<String>,
}

impl std::fmt::Debug for TermCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TermCache").finish_non_exhaustive()
    }
}

/// Segments with fewer live documents are always counted hit by hit.
const DENSE_MIN: u32 = 4096;

/// A column's ordinals, as shared ids.
type Terms = Arc<Vec<u32>>;

fn lock_err<T>(_: T) -> tantivy::TantivyError {
    tantivy::TantivyError::InternalError("facet term cache lock poisoned".into())
}

impl TermCache {
    fn terms(&self, seg: SegmentId, facet: usize, col: &StrColumn) -> tantivy::Result<Terms> {
        if let Some(t) = self.terms.lock().map_err(lock_err)?.get(&(seg, facet)) {
            return Ok(t.clone());
        }
        let mut ids = Vec::with_capacity(col.num_terms());
        {
            let mut names = self.names.lock().map_err(lock_err)?;
            let names = &mut names[facet];
            let mut stream = col.dictionary().stream()?;
            while stream.advance() {
                let term = String::from_utf8_lossy(stream.key());
                let id = match names.ids.get(term.as_ref()) {
                    Some(id) => *id,
                    None => {
                        let id = u32::try_from(names.names.len()).unwrap_or(u32::MAX);
                        names.ids.insert(term.to_string(), id);
                        names.names.push(term.into_owned());
                        id
                    }
                };
                ids.push(id);
            }
        }
        let ids = Arc::new(ids);
        self.terms
            .lock()
            .map_err(lock_err)?
            .insert((seg, facet), ids.clone());
        Ok(ids)
    }

    /// Drops the entries of segments no longer searched (after merges).
    pub fn retain(&self, live: &[SegmentId]) {
        if let Ok(mut m) = self.terms.lock() {
            m.retain(|(s, _), _| live.contains(s));
        }
        // The shared names stay: they are as many as the distinct values (parties,
        // classes, roles) ever indexed.
        if let Ok(mut m) = self.totals.lock() {
            m.retain(|(s, _, _), _| live.contains(s));
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

    /// The counts of every live document of a segment, from the cache or counted now.
    fn whole_segment(
        &self,
        ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Arc<SegmentCounts>> {
        let key = (reader.segment_id(), reader.num_deleted_docs(), self.today);
        if let Ok(m) = self.cache.totals.lock()
            && let Some(c) = m.get(&key)
        {
            return Ok(c.clone());
        }
        let mut seg = self.for_segment(ord, reader)?;
        let mut block = Vec::with_capacity(COLLECT_BLOCK_BUFFER_LEN);
        for d in reader.doc_ids_alive() {
            block.push(d);
            if block.len() == COLLECT_BLOCK_BUFFER_LEN {
                seg.collect_block(&block);
                block.clear();
            }
        }
        seg.collect_block(&block);
        let counts = Arc::new(seg.harvest());
        if let Ok(mut m) = self.cache.totals.lock() {
            // Yesterday's counts and those of older deletions are of no further use.
            m.retain(|(id, _, day), _| *id != key.0 || *day == key.2);
            m.insert(key, counts.clone());
        }
        Ok(counts)
    }
}

pub struct SegmentFacets {
    today: u64,
    /// Per string facet: its column, the segment's terms by ordinal, a count per ordinal.
    strs: Vec<(&'static str, Option<StrColumn>, Vec<u64>)>,
    terms: Vec<Terms>,
    key: Column<u64>,
    keys: Vec<Option<u64>>,
    ords: Vec<Option<u64>>,
    doc_buf: Vec<DocId>,
    /// Documents collected one by one, not yet counted.
    single: Vec<DocId>,
    row_buf: Vec<u32>,
    val_buf: Vec<u64>,
    years: Years,
    /// held, eligible, awaiting-event, retained.
    states: [u64; 4],
    hits: u64,
}

/// Counts per year: an array for the years records usually have, a list for the rest.
#[derive(Clone)]
struct Years {
    common: Box<[u64; Years::SPAN]>,
    other: Vec<(u64, u64)>,
}

impl Default for Years {
    fn default() -> Years {
        Years {
            common: Box::new([0; Years::SPAN]),
            other: Vec::new(),
        }
    }
}

impl Years {
    const FIRST: u64 = 1900;
    const SPAN: usize = 256;

    fn add(&mut self, year: u64) {
        match year
            .checked_sub(Years::FIRST)
            .and_then(|i| self.common.get_mut(usize::try_from(i).ok()?))
        {
            Some(n) => *n += 1,
            None => match self.other.iter_mut().find(|(y, _)| *y == year) {
                Some((_, n)) => *n += 1,
                None => self.other.push((year, 1)),
            },
        }
    }

    /// Takes `n` from `year`'s count.
    fn take(&mut self, year: u64, n: u64) {
        let slot = year
            .checked_sub(Years::FIRST)
            .and_then(|i| self.common.get_mut(usize::try_from(i).ok()?));
        if let Some(m) = slot.or_else(|| {
            self.other
                .iter_mut()
                .find(|(y, _)| *y == year)
                .map(|(_, m)| m)
        }) {
            *m = m.saturating_sub(n);
        }
    }

    /// The years counted, with their counts.
    fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        (Years::FIRST..)
            .zip(self.common.iter().copied())
            .chain(self.other.iter().copied())
            .filter(|(_, n)| *n > 0)
    }
}

/// What one segment counted: its hits, per string facet its terms and a count per
/// ordinal, the years and the retention states.
#[derive(Clone)]
pub struct SegmentCounts {
    hits: u64,
    strs: Vec<(&'static str, Terms, Vec<u64>)>,
    years: Years,
    states: [u64; 4],
}

impl SegmentCounts {
    /// `self` less `other`, both of one segment (`other` counted a subset of `self`).
    fn minus(&self, other: &SegmentCounts) -> SegmentCounts {
        let mut out = self.clone();
        out.hits = out.hits.saturating_sub(other.hits);
        for ((_, _, mine), (_, _, theirs)) in out.strs.iter_mut().zip(&other.strs) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m = m.saturating_sub(*t);
            }
        }
        for (y, n) in other.years.iter() {
            out.years.take(y, n);
        }
        for (m, t) in out.states.iter_mut().zip(other.states) {
            *m = m.saturating_sub(t);
        }
        out
    }
}

impl Collector for FacetCollector {
    /// The number of hits, and the facets.
    type Fruit = (usize, Facets);
    type Child = SegmentFacets;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        seg: &SegmentReader,
    ) -> tantivy::Result<SegmentFacets> {
        let ff = seg.fast_fields();
        let mut strs = Vec::new();
        let mut terms = Vec::new();
        for (i, name) in STR_FACETS.into_iter().enumerate() {
            let col = ff.str(name)?;
            let n = col.as_ref().map_or(0, |c| c.num_terms());
            terms.push(match &col {
                Some(c) => self.cache.terms(seg.segment_id(), i, c)?,
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
            single: Vec::with_capacity(BLOCK),
            row_buf: Vec::new(),
            val_buf: Vec::new(),
            years: Years::default(),
            hits: 0,
            states: [0; 4],
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    /// Counts the hits of one segment. When the query matches most of the segment (by
    /// its scorer's size hint), the documents it does *not* match are counted instead
    /// and taken from the counts of the whole segment, which are computed once per
    /// segment, deletions and day: a query for a common word reads a fraction of the
    /// columns it would read otherwise.
    fn collect_segment(
        &self,
        weight: &dyn Weight,
        ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentCounts> {
        let mut scorer = weight.scorer(reader, 1.0)?;
        let alive = reader.alive_bitset();
        let is_alive = |d: DocId| alive.is_none_or(|a| a.is_alive(d));
        let live = reader.num_docs();
        let dense = live >= DENSE_MIN && u64::from(scorer.size_hint()) * 2 > u64::from(live);
        let mut seg = self.for_segment(ord, reader)?;
        let mut buf = [0; COLLECT_BLOCK_BUFFER_LEN];
        if !dense {
            loop {
                let n = scorer.fill_buffer(&mut buf);
                if n == 0 {
                    break;
                }
                match alive {
                    None => seg.collect_block(&buf[..n]),
                    Some(_) => buf[..n]
                        .iter()
                        .filter(|d| is_alive(**d))
                        .for_each(|d| seg.collect(*d, 0.0)),
                }
            }
            return Ok(seg.harvest());
        }
        let all = self.whole_segment(ord, reader)?;
        // `seg` counts the live documents between hits.
        let mut next: DocId = 0;
        loop {
            let n = scorer.fill_buffer(&mut buf);
            if n == 0 {
                break;
            }
            for &d in &buf[..n] {
                (next..d)
                    .filter(|g| is_alive(*g))
                    .for_each(|g| seg.collect(g, 0.0));
                next = d + 1;
            }
        }
        (next..reader.max_doc())
            .filter(|g| is_alive(*g))
            .for_each(|g| seg.collect(g, 0.0));
        Ok(all.minus(&seg.harvest()))
    }

    fn merge_fruits(&self, fruits: Vec<SegmentCounts>) -> tantivy::Result<(usize, Facets)> {
        let hits = fruits.iter().map(|f| f.hits).sum::<u64>();
        let mut out = Facets::new();
        for (i, name) in STR_FACETS.iter().enumerate() {
            let mut sums: Vec<u64> = Vec::new();
            for f in &fruits {
                if let Some((_, ids, counts)) = f.strs.get(i) {
                    for (id, n) in ids.iter().zip(counts) {
                        let id = *id as usize;
                        if *n > 0 {
                            if sums.len() <= id {
                                sums.resize(id + 1, 0);
                            }
                            sums[id] += n;
                        }
                    }
                }
            }
            let names = self.cache.names.lock().map_err(lock_err)?;
            let names = &names[i].names;
            let mut v: Vec<(&str, u64)> = sums
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .filter_map(|(id, n)| Some((names.get(id)?.as_str(), *n)))
                .collect();
            if *name == "party" && v.len() > super::PARTY_FACET_LIMIT {
                // The most hits first, then by name: only the first ones are put in order.
                let order = |a: &(&str, u64), b: &(&str, u64)| b.1.cmp(&a.1).then(a.0.cmp(b.0));
                v.select_nth_unstable_by(super::PARTY_FACET_LIMIT - 1, order);
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
            for (y, n) in f.years.iter() {
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
        Ok((usize::try_from(hits).unwrap_or(usize::MAX), out))
    }
}

impl SegmentCollector for SegmentFacets {
    type Fruit = SegmentCounts;

    fn collect(&mut self, doc: DocId, _: Score) {
        // One document at a time (a segment with deletions, or a scoring pass): gathered
        // into blocks, so that columns are still read a block at a time.
        self.single.push(doc);
        if self.single.len() == BLOCK {
            let docs = std::mem::take(&mut self.single);
            self.collect_block(&docs);
            self.single = docs;
            self.single.clear();
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        self.hits += docs.len() as u64;
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
            self.years.add(k >> 40);
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

    fn harvest(mut self) -> SegmentCounts {
        let docs = std::mem::take(&mut self.single);
        self.collect_block(&docs);
        SegmentCounts {
            hits: self.hits,
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

//! Facet counts (class, party, role, year, retention state) over all hits of a query,
//! read from fast fields. The retention state is computed at query time from the packed
//! `facet_key` (retain-until, held, awaiting an event), so it never goes stale as days
//! pass. String values are counted by term ordinal; each segment's ordinals map to ids
//! shared by all segments (built once per segment: segments never change), so adding up
//! the segments is adding arrays, and only the values shown are ever named.
//!
//! The columns are compressed for the disk; reading them hit by hit was most of a
//! faceted query's time. A segment's facet columns are therefore decoded once into plain
//! arrays ([`Table`]), kept while the segment is searched, within a memory budget
//! (`--facet-cache-mb`); segments beyond it are counted from the columns.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

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

/// The memory decoded facet tables may take unless told otherwise (`--facet-cache-mb`).
static BUDGET: AtomicUsize = AtomicUsize::new(256 << 20);

/// Sets the memory budget of the decoded facet tables of indexes opened from now on.
pub fn set_budget(bytes: usize) {
    BUDGET.store(bytes, Ordering::Relaxed);
}

/// Per segment: each facet column's ordinals as shared ids, its decoded table, and the
/// counts of all its live documents (for queries that match most of it).
pub struct TermCache {
    terms: Mutex<HashMap<(SegmentId, usize), Terms>>,
    /// Per string facet, the values of all segments seen, by shared id.
    names: Mutex<[Names; 3]>,
    totals: Mutex<HashMap<(SegmentId, u32, u64), Arc<SegmentCounts>>>,
    /// Per segment, its table.
    tables: Mutex<HashMap<SegmentId, TableCell>>,
    /// Bytes the tables may take, and take.
    budget: usize,
    used: Arc<AtomicUsize>,
}

impl Default for TermCache {
    fn default() -> TermCache {
        TermCache::with_budget(BUDGET.load(Ordering::Relaxed))
    }
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

/// A segment's table, decoded once (`None`: beyond the budget, or not decodable).
type TableCell = Arc<OnceLock<Option<Arc<Table>>>>;

/// A column's ordinals, as shared ids.
type Terms = Arc<Vec<u32>>;

/// The length of an array indexed by the shared ids in `terms`.
fn width(terms: &Terms) -> usize {
    terms.iter().max().map_or(0, |m| *m as usize + 1)
}

struct Prepared {
    cols: Vec<Option<StrColumn>>,
    terms: Vec<Terms>,
    /// `None` when the table is.
    key: Option<Column<u64>>,
    table: Option<Arc<Table>>,
}

/// No value (a document without a class, or without a facet key).
const NONE: u32 = u32::MAX;

/// A segment's facet columns as plain arrays by document, so that counting a hit is an
/// increment for its [`Kind`] (class, year, retention flags) and one per link (party and
/// role). The counts per kind and per link become counts per facet value once per
/// segment, when it is harvested.
///
/// (Measured at 1M records, faceted p50 against bare tantivy: 2.25× when class, party,
/// role, year and state were each counted on their own, 1.57–1.66× this way; numbering
/// each document's whole set of links instead made it 1.90–2.20×: there were nearly as
/// many sets as documents, and their counts no longer fit the cache.)
struct Table {
    /// Per document, the index of its kind in `kinds`.
    kind: Vec<u16>,
    kinds: Vec<Kind>,
    /// Per document, its retain-until in days since `NaiveDate::MIN` (0: unknown).
    until: Vec<u32>,
    /// Document `d`'s links are `link[starts[d]..starts[d + 1]]`, indexes in `links`.
    starts: Vec<u32>,
    link: Vec<u32>,
    /// (party, role) by shared id (see [`TermCache::terms`]), [`NONE`] for none: a
    /// record's parties and roles paired by position (a record has a role per party).
    links: Vec<(u32, u32)>,
    /// The number of shared ids per string facet.
    widths: [usize; 3],
    /// What the table is charged against the budget (given back when it is dropped).
    _charge: Option<Charge>,
}

/// What a document contributes to the single-valued facets, but for whether its
/// retain-until has passed (which depends on the day of the query).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Kind {
    /// Shared id, or [`NONE`].
    class: u32,
    /// `None`: the document has no facet key (no year, no retention state).
    year: Option<u32>,
    held: bool,
    awaiting: bool,
}

/// Bytes charged against the tables' budget, given back when dropped: a table's when
/// its segment is no longer searched and the last search holding it has ended.
struct Charge {
    used: Arc<AtomicUsize>,
    bytes: usize,
}

impl Drop for Charge {
    fn drop(&mut self) {
        self.used.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

/// Document `doc`'s rows in `starts`.
fn span(starts: &[u32], doc: usize) -> std::ops::Range<usize> {
    match (starts.get(doc), starts.get(doc + 1)) {
        (Some(&a), Some(&b)) => a as usize..b as usize,
        _ => 0..0,
    }
}

/// A multi-valued column's values by document, while decoding.
#[derive(Default)]
struct Rows {
    starts: Vec<u32>,
    vals: Vec<u32>,
}

/// Counts of a segment's hits by the indexes of its [`Table`].
struct TableCounts {
    /// Per kind, the hits whose retain-until had not passed (`2 * kind`) and had
    /// (`2 * kind + 1`).
    kinds: Vec<u32>,
    links: Vec<u32>,
}

impl Table {
    /// The most bytes a table of `docs` documents with `rows` links takes.
    fn estimate(docs: usize, rows: usize) -> usize {
        docs.saturating_mul(2 + 4 + 4 + 4 + std::mem::size_of::<Kind>())
            .saturating_add(rows.saturating_mul(4 + 8))
    }

    /// The bytes this table takes.
    fn size(&self) -> usize {
        self.kind.len() * 2
            + self.kinds.len() * std::mem::size_of::<Kind>()
            + self.until.len() * 4
            + self.starts.len() * 4
            + self.link.len() * 4
            + self.links.len() * 8
    }

    fn counts(&self) -> TableCounts {
        TableCounts {
            kinds: vec![0; 2 * self.kinds.len()],
            links: vec![0; self.links.len()],
        }
    }

    /// Counts `docs`: per document a kind and its links.
    fn count(&self, docs: &[DocId], counts: &mut TableCounts, today: u64) {
        let (kind, until) = (&self.kind[..], &self.until[..]);
        let (starts, link) = (&self.starts[..], &self.link[..]);
        let (kinds, links) = (&mut counts.kinds[..], &mut counts.links[..]);
        for &d in docs {
            let d = d as usize;
            if let (Some(&k), Some(&u)) = (kind.get(d), until.get(d)) {
                let past = usize::from(passed(u64::from(u), today));
                if let Some(n) = kinds.get_mut(2 * usize::from(k) + past) {
                    *n += 1;
                }
            }
            for &l in link.get(span(starts, d)).unwrap_or_default() {
                if let Some(n) = links.get_mut(l as usize) {
                    *n += 1;
                }
            }
        }
    }

    /// The counts per facet value of what [`Table::count`] counted: per string facet a
    /// count per shared id, then the years and the retention states.
    fn harvest(&self, counts: &TableCounts) -> (Vec<Vec<u32>>, Years, [u64; 4]) {
        let mut strs: Vec<Vec<u32>> = self.widths.iter().map(|w| vec![0; *w]).collect();
        let mut years = Years::default();
        let mut states = [0u64; 4];
        let mut add = |facet: usize, id: u32, n: u32| {
            if let Some(c) = strs.get_mut(facet).and_then(|c| c.get_mut(id as usize)) {
                *c += n;
            }
        };
        for (k, pair) in self.kinds.iter().zip(counts.kinds.chunks_exact(2)) {
            let (kept, passed) = (pair[0], pair[1]);
            if kept + passed == 0 {
                continue;
            }
            add(0, k.class, kept + passed);
            let Some(year) = k.year else { continue };
            years.add_n(u64::from(year), u64::from(kept + passed));
            states[state_of(k.held, false, k.awaiting)] += u64::from(kept);
            states[state_of(k.held, true, k.awaiting)] += u64::from(passed);
        }
        for (&(party, role), &n) in self.links.iter().zip(&counts.links) {
            if n > 0 {
                add(1, party, n);
                add(2, role, n);
            }
        }
        (strs, years, states)
    }

    /// Decodes the columns of a segment of `docs` documents, a block at a time. `None`
    /// when it has more kinds than 16 bits can number, or a retain-until beyond 32 bits
    /// of days: such a segment is counted from its columns.
    fn build(
        docs: u32,
        cols: &[Option<StrColumn>],
        terms: &[Terms],
        key: &Column<u64>,
    ) -> Option<Table> {
        let shared = |facet: usize, ord: u64| -> u32 {
            terms
                .get(facet)
                .and_then(|t| t.get(usize::try_from(ord).ok()?))
                .copied()
                .unwrap_or(NONE)
        };
        let width = |i: usize| terms.get(i).map_or(0, width);
        let widths = [width(0), width(1), width(2)];
        let n = docs as usize;
        let mut kind = Vec::with_capacity(n);
        let mut kinds: Vec<Kind> = Vec::new();
        let mut kind_ids: FxHashMap<Kind, u16> = FxHashMap::default();
        let mut until = Vec::with_capacity(n);
        let mut starts = Vec::with_capacity(n + 1);
        let mut link = Vec::new();
        let mut links: Vec<(u32, u32)> = Vec::new();
        let mut link_ids: FxHashMap<(u32, u32), u32> = FxHashMap::default();
        let mut multi = [Rows::default(), Rows::default()];
        let mut ords = Vec::new();
        let mut keys = Vec::new();
        let (mut doc_buf, mut row_buf, mut val_buf) = (Vec::new(), Vec::new(), Vec::new());
        let mut block = Vec::with_capacity(COLLECT_BLOCK_BUFFER_LEN);
        let mut first = 0;
        while first < docs {
            let last = first
                .saturating_add(COLLECT_BLOCK_BUFFER_LEN as u32)
                .min(docs);
            block.clear();
            block.extend(first..last);
            ords.clear();
            ords.resize(block.len(), None);
            if let Some(Some(col)) = cols.first() {
                col.ords().first_vals(&block, &mut ords);
            }
            for (facet, (rows, col)) in multi.iter_mut().zip(cols.iter().skip(1)).enumerate() {
                rows.starts.clear();
                rows.vals.clear();
                let Some(col) = col else {
                    rows.starts.extend(block.iter().map(|_| 0));
                    rows.starts.push(0);
                    continue;
                };
                doc_buf.clear();
                row_buf.clear();
                col.ords()
                    .row_ids_for_docs(&block, &mut doc_buf, &mut row_buf);
                val_buf.clear();
                val_buf.resize(row_buf.len(), 0);
                col.ords().values.get_vals(&row_buf, &mut val_buf);
                // `doc_buf` names each value's document, in order.
                let mut next = 0;
                for &d in &block {
                    rows.starts.push(u32::try_from(rows.vals.len()).ok()?);
                    while next < doc_buf.len() && doc_buf[next] == d {
                        rows.vals.push(shared(facet + 1, val_buf[next]));
                        next += 1;
                    }
                }
                rows.starts.push(u32::try_from(rows.vals.len()).ok()?);
            }
            keys.clear();
            keys.resize(block.len(), None);
            key.first_vals(&block, &mut keys);
            for (i, (k, o)) in keys.iter().zip(&ords).enumerate() {
                let mut this = Kind {
                    class: o.map_or(NONE, |o| shared(0, o)),
                    year: None,
                    held: false,
                    awaiting: false,
                };
                let mut days = 0;
                if let Some(k) = k {
                    this.year = Some(u32::try_from(k >> 40).ok()?);
                    this.held = k & 2 != 0;
                    this.awaiting = k & 1 != 0;
                    days = u32::try_from((k >> 2) & ((1 << 38) - 1)).ok()?;
                }
                let next = kinds.len();
                let id = *kind_ids.entry(this).or_insert_with(|| {
                    kinds.push(this);
                    u16::try_from(next).unwrap_or(u16::MAX)
                });
                if id == u16::MAX {
                    return None;
                }
                kind.push(id);
                until.push(days);
                // The document's links: its parties and roles paired by position.
                let [parties, roles] = &multi;
                let p = parties
                    .vals
                    .get(span(&parties.starts, i))
                    .unwrap_or_default();
                let r = roles.vals.get(span(&roles.starts, i)).unwrap_or_default();
                starts.push(u32::try_from(link.len()).ok()?);
                for j in 0..p.len().max(r.len()) {
                    let at = |v: &[u32]| v.get(j).copied().unwrap_or(NONE);
                    let pair = (at(p), at(r));
                    let next = u32::try_from(links.len()).ok()?;
                    link.push(*link_ids.entry(pair).or_insert_with(|| {
                        links.push(pair);
                        next
                    }));
                }
            }
            first = last;
        }
        starts.push(u32::try_from(link.len()).ok()?);
        link.shrink_to_fit();
        links.shrink_to_fit();
        Some(Table {
            kind,
            kinds,
            until,
            starts,
            link,
            links,
            widths,
            _charge: None,
        })
    }
}

fn lock_err<T>(_: T) -> tantivy::TantivyError {
    tantivy::TantivyError::InternalError("facet term cache lock poisoned".into())
}

impl TermCache {
    pub fn with_budget(budget: usize) -> TermCache {
        TermCache {
            terms: Default::default(),
            names: Default::default(),
            totals: Default::default(),
            tables: Default::default(),
            budget,
            used: Default::default(),
        }
    }

    /// The bytes the decoded tables take.
    pub fn decoded_bytes(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

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

    /// The decoded table of a segment: decoded on first use if the budget allows (a
    /// segment refused now is tried again by later searches). Concurrent searches of the
    /// same segment wait for one decoding.
    fn table(
        &self,
        seg: &SegmentReader,
        cols: &[Option<StrColumn>],
        terms: &[Terms],
        key: &Column<u64>,
    ) -> Option<Arc<Table>> {
        let cell = self
            .tables
            .lock()
            .ok()?
            .entry(seg.segment_id())
            .or_default()
            .clone();
        if let Some(t) = cell.get() {
            return t.clone();
        }
        let rows = |i: usize| {
            cols.get(i)
                .and_then(|c| c.as_ref())
                .map_or(0, |c| c.ords().values.num_vals() as usize)
        };
        let bytes = Table::estimate(seg.max_doc() as usize, rows(1).max(rows(2)));
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(bytes).filter(|n| *n <= self.budget)
            })
            .ok()?;
        // Given back when dropped: unused if another search decoded the table meanwhile,
        // or when the segment cannot be decoded.
        let mut reserved = Some(Charge {
            used: self.used.clone(),
            bytes,
        });
        cell.get_or_init(|| {
            let mut charge = reserved.take()?;
            let table = Table::build(seg.max_doc(), cols, terms, key)?;
            // The estimate was the most it could take: keep what it takes.
            let size = table.size().min(charge.bytes);
            self.used.fetch_sub(charge.bytes - size, Ordering::AcqRel);
            charge.bytes = size;
            Some(Arc::new(Table {
                _charge: Some(charge),
                ..table
            }))
        })
        .clone()
    }

    /// A segment's facet columns, their terms as shared ids and its table, made now if
    /// not made before.
    fn prepare(&self, seg: &SegmentReader) -> tantivy::Result<Prepared> {
        // A segment with a table needs nothing else.
        let ready = self
            .tables
            .lock()
            .map_err(lock_err)?
            .get(&seg.segment_id())
            .and_then(|cell| cell.get().cloned().flatten());
        if let Some(table) = ready {
            return Ok(Prepared {
                cols: vec![None, None, None],
                terms: vec![Terms::default(); 3],
                key: None,
                table: Some(table),
            });
        }
        let ff = seg.fast_fields();
        let mut cols = Vec::new();
        let mut terms = Vec::new();
        for (i, name) in STR_FACETS.into_iter().enumerate() {
            let col = ff.str(name)?;
            terms.push(match &col {
                Some(c) => self.terms(seg.segment_id(), i, c)?,
                None => Arc::default(),
            });
            cols.push(col);
        }
        let key = ff.u64("facet_key")?;
        let table = self.table(seg, &cols, &terms, &key);
        let key = Some(key);
        Ok(Prepared {
            cols,
            terms,
            key,
            table,
        })
    }

    /// Makes the terms and tables of segments new to the reader, so that the first
    /// faceted search over them does not wait for their decoding.
    pub fn warm(&self, segs: &[SegmentReader]) -> tantivy::Result<()> {
        for seg in segs {
            self.prepare(seg)?;
        }
        Ok(())
    }

    /// Drops the entries of segments no longer searched (after merges).
    pub fn retain(&self, live: &[SegmentId]) {
        if let Ok(mut m) = self.terms.lock() {
            m.retain(|(s, _), _| live.contains(s));
        }
        if let Ok(mut m) = self.tables.lock() {
            // Their bytes are given back as the last search holding them ends.
            m.retain(|s, _| live.contains(s));
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
    /// Per string facet: its column and a count per value by the column's ordinal
    /// (empty when the segment has a table: then the table's counts are used).
    strs: Vec<(&'static str, Option<StrColumn>, Vec<u32>)>,
    /// Per string facet, the shared id of each ordinal.
    terms: Vec<Terms>,
    /// The segment's decoded table, when it fits the budget, and the counts by it.
    table: Option<(Arc<Table>, TableCounts)>,
    key: Option<Column<u64>>,
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
        self.add_n(year, 1);
    }

    fn add_n(&mut self, year: u64, n: u64) {
        match year
            .checked_sub(Years::FIRST)
            .and_then(|i| self.common.get_mut(usize::try_from(i).ok()?))
        {
            Some(c) => *c += n,
            None => match self.other.iter_mut().find(|(y, _)| *y == year) {
                Some((_, c)) => *c += n,
                None => self.other.push((year, n)),
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

/// What one segment counted: its hits, per string facet a count per shared id, the years
/// and the retention states.
#[derive(Clone)]
pub struct SegmentCounts {
    hits: u64,
    strs: Vec<Vec<u32>>,
    years: Years,
    states: [u64; 4],
}

impl SegmentCounts {
    /// `self` less `other`, both of one segment (`other` counted a subset of `self`).
    fn minus(&self, other: &SegmentCounts) -> SegmentCounts {
        let mut out = self.clone();
        out.hits = out.hits.saturating_sub(other.hits);
        for (mine, theirs) in out.strs.iter_mut().zip(&other.strs) {
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
        let Prepared {
            cols,
            terms,
            key,
            table,
        } = self.cache.prepare(seg)?;
        let strs = STR_FACETS
            .into_iter()
            .zip(cols)
            .map(|(name, col)| {
                // With a table, the counts are by the table's indexes until harvested.
                let n = match &table {
                    Some(_) => 0,
                    None => col.as_ref().map_or(0, |c| c.num_terms()),
                };
                (name, col, vec![0; n])
            })
            .collect();
        Ok(SegmentFacets {
            today: self.today,
            strs,
            terms,
            table: table.map(|t| {
                let counts = t.counts();
                (t, counts)
            }),
            key,
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
            let width = fruits
                .iter()
                .filter_map(|f| Some(f.strs.get(i)?.len()))
                .max();
            let mut sums = vec![0u64; width.unwrap_or(0)];
            for counts in fruits.iter().filter_map(|f| f.strs.get(i)) {
                for (s, n) in sums.iter_mut().zip(counts) {
                    *s += u64::from(*n);
                }
            }
            // The party facet shows the parties with the most hits, ties by name: those
            // with fewer hits than the LIMIT-th most are never named.
            let mut least = 1;
            if *name == "party" && sums.len() > super::PARTY_FACET_LIMIT {
                let mut c: Vec<u64> = sums.iter().copied().filter(|n| *n > 0).collect();
                if let Some(k) = c.len().checked_sub(super::PARTY_FACET_LIMIT) {
                    least = *c.select_nth_unstable(k).1;
                }
            }
            let names = self.cache.names.lock().map_err(lock_err)?;
            let names = &names[i].names;
            let mut v: Vec<(&str, u64)> = sums
                .iter()
                .enumerate()
                .filter(|(_, n)| **n >= least)
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

/// The retention state of a packed facet key on day `today` (see [`state_of`]).
fn state(key: u64, today: u64) -> usize {
    let until = (key >> 2) & ((1 << 38) - 1);
    state_of(key & 2 != 0, passed(until, today), key & 1 != 0)
}

/// Whether a retain-until (days; 0: unknown) has passed on day `today`.
fn passed(until: u64, today: u64) -> bool {
    until != 0 && until < today
}

/// The retention state: held (0), eligible once its retain-until has passed (1),
/// awaiting an event (2), retained (3).
fn state_of(held: bool, passed: bool, awaiting: bool) -> usize {
    if held {
        0
    } else if passed {
        1
    } else if awaiting {
        2
    } else {
        3
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
        if let Some((t, counts)) = &mut self.table {
            t.count(docs, counts, self.today);
            return;
        }
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
        if let Some(key) = &self.key {
            key.first_vals(docs, &mut self.keys);
        }
        for k in self.keys.iter().flatten() {
            self.years.add(k >> 40);
            self.states[state(*k, self.today)] += 1;
        }
    }

    fn harvest(mut self) -> SegmentCounts {
        let docs = std::mem::take(&mut self.single);
        self.collect_block(&docs);
        if let Some((t, counts)) = &self.table {
            let (strs, years, states) = t.harvest(counts);
            return SegmentCounts {
                hits: self.hits,
                strs,
                years,
                states,
            };
        }
        SegmentCounts {
            hits: self.hits,
            strs: self
                .strs
                .into_iter()
                .zip(self.terms)
                .map(|((_, _, counts), terms)| {
                    // By ordinal to by shared id.
                    let mut out = vec![0u32; width(&terms)];
                    for (id, n) in terms.iter().zip(counts) {
                        if let Some(o) = out.get_mut(*id as usize) {
                            *o += n;
                        }
                    }
                    out
                })
                .collect(),
            years: self.years,
            states: self.states,
        }
    }
}

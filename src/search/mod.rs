//! Full-text search (DESIGN §7): a tantivy index over every record's latest revision.
//!
//! The index is derived state. Its commits carry the last journal sequence they cover
//! (`{"seq":N}` as the commit payload); [`indexer`] follows the journal from there, and
//! `akte reindex` rebuilds it from the store alone.
//!
//! Language: each record is detected as German or English (whatlang, restricted to
//! those two; German when unsure) and its title and text go into `title_de`/`body_de`
//! or `title_en`/`body_en`, each with its own analyzer ([`analysis`]). Queries search
//! both; users write `title:` and `body:` and the parser expands them to both fields.
//! The index stores no text: hit summaries come from the catalog, snippets from the
//! record's content, read again for the hits of one page.

pub mod analysis;
mod facets;
pub mod indexer;
mod query;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::TermQuery;
use tantivy::schema::{
    DateOptions, DateTimePrecision, Field, IndexRecordOption, NumericOptions, STORED, STRING,
    Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TokenizerManager;
use tantivy::{Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};

use crate::error::{Error, Result};

pub use facets::{Facets, set_budget as set_facet_budget};

/// The party facet lists this many parties at most (those with the most hits).
pub const PARTY_FACET_LIMIT: usize = 50;

/// Heap for the index writer (split across its threads).
const WRITER_HEAP: usize = 96 * 1024 * 1024;

/// The language a record's text was analysed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    De,
    En,
}

impl Lang {
    /// Detects German or English from the first KiB of `text`; German when unsure.
    ///
    /// Function words decide first: they are most of any running text, and a clear
    /// majority of one language's (at least three, twice the other's) settles it at a
    /// fraction of the cost of trigram statistics. Short or mixed texts go to whatlang.
    pub fn detect(text: &str) -> Lang {
        let mut end = text.len().min(1024);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let head = &text[..end];
        let (mut de, mut en) = (0u32, 0u32);
        for w in head.split(|c: char| !c.is_alphabetic()) {
            match function_word(w) {
                Some(Lang::De) => de += 1,
                Some(Lang::En) => en += 1,
                None => {}
            }
        }
        if de.max(en) >= 3 && de.max(en) >= 2 * de.min(en) {
            return if de > en { Lang::De } else { Lang::En };
        }
        let d = whatlang::Detector::with_allowlist(vec![whatlang::Lang::Deu, whatlang::Lang::Eng]);
        match d.detect_lang(head) {
            Some(whatlang::Lang::Eng) => Lang::En,
            _ => Lang::De,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Lang::De => "de",
            Lang::En => "en",
        }
    }
}

/// The language a frequent function word belongs to (words both languages use, such as
/// *in*, *an*, *was* or *also*, belong to none).
fn function_word(w: &str) -> Option<Lang> {
    if w.len() < 2 || w.len() > 6 {
        return None;
    }
    let mut buf = [0u8; 6];
    for (b, c) in buf.iter_mut().zip(w.bytes()) {
        *b = c.to_ascii_lowercase();
    }
    match &buf[..w.len()] {
        b"der" | b"die" | b"das" | b"und" | b"ist" | b"nicht" | b"mit" | b"ein" | b"eine"
        | b"einen" | b"dem" | b"den" | b"des" | b"von" | b"zu" | b"zum" | b"zur" | b"auf"
        | b"sie" | b"wir" | b"ich" | b"sich" | b"auch" | b"bei" | b"im" | b"ihre" | b"ihr"
        | b"uns" | b"unsere" | b"wird" | b"werden" | b"sind" | b"haben" | b"hat" | b"als"
        | b"oder" | b"aber" | b"noch" | b"nach" | b"wie" | b"bitte" | b"dank" | b"vielen"
        | b"sehr" | b"gerne" | b"wurde" | b"kann" => Some(Lang::De),
        b"the" | b"and" | b"of" | b"to" | b"is" | b"are" | b"with" | b"for" | b"that" | b"this"
        | b"you" | b"your" | b"we" | b"our" | b"be" | b"have" | b"has" | b"were" | b"not"
        | b"from" | b"at" | b"by" | b"on" | b"or" | b"but" | b"please" | b"thank" | b"thanks"
        | b"would" | b"will" | b"can" | b"which" | b"it" => Some(Lang::En),
        _ => None,
    }
}

/// Everything the index knows about one record.
#[derive(Debug, Clone, Default)]
pub struct IndexDoc {
    pub id: String,
    pub title: String,
    /// Extracted text of the content (body, attachments).
    pub body: String,
    /// Detected from title and body when `None`.
    pub lang: Option<Lang>,
    pub class: String,
    /// (party id, role) of each link.
    pub parties: Vec<(String, String)>,
    /// Names and identifiers of the linked parties (searchable: "Müller GmbH", a VAT id).
    pub party_names: String,
    pub cases: Vec<String>,
    pub holds: Vec<String>,
    pub from: String,
    pub to: String,
    pub cc: String,
    /// Other small metadata (`extra` values), searchable as words.
    pub extra: String,
    pub media_type: String,
    pub document_date: Option<NaiveDate>,
    pub archived_at: DateTime<Utc>,
    pub retain_until: Option<NaiveDate>,
    pub awaiting_event: bool,
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    title_de: Field,
    title_en: Field,
    body_de: Field,
    body_en: Field,
    names: Field,
    from: Field,
    to: Field,
    cc: Field,
    extra: Field,
    class: Field,
    party: Field,
    role: Field,
    party_role: Field,
    case: Field,
    hold: Field,
    media: Field,
    lang: Field,
    date: Field,
    archived: Field,
    year: Field,
    retain_until: Field,
    /// Packed facet inputs, one fast read per hit: see [`facets::pack`].
    facet_key: Field,
}

fn text(tokenizer: &str) -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    )
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let date = || {
        DateOptions::default()
            .set_indexed()
            .set_fast()
            .set_precision(DateTimePrecision::Seconds)
    };
    let num = || NumericOptions::default().set_indexed();
    let fast_str = STRING | tantivy::schema::FAST;
    let f = Fields {
        id: b.add_text_field("id", STRING | STORED),
        title_de: b.add_text_field("title_de", text(analysis::DE)),
        title_en: b.add_text_field("title_en", text(analysis::EN)),
        body_de: b.add_text_field("body_de", text(analysis::DE)),
        body_en: b.add_text_field("body_en", text(analysis::EN)),
        names: b.add_text_field("names", text(analysis::NAME)),
        from: b.add_text_field("from", text(analysis::NAME)),
        to: b.add_text_field("to", text(analysis::NAME)),
        cc: b.add_text_field("cc", text(analysis::NAME)),
        extra: b.add_text_field("extra", text(analysis::NAME)),
        class: b.add_text_field("class", fast_str.clone()),
        party: b.add_text_field("party", fast_str.clone()),
        role: b.add_text_field("role", fast_str.clone()),
        party_role: b.add_text_field("party_role", STRING),
        case: b.add_text_field("case", STRING),
        hold: b.add_text_field("hold", STRING),
        media: b.add_text_field("media", STRING),
        lang: b.add_text_field("lang", STRING | STORED),
        date: b.add_date_field("date", date()),
        archived: b.add_date_field("archived", date()),
        year: b.add_u64_field("year", num()),
        retain_until: b.add_date_field(
            "retain_until",
            DateOptions::default()
                .set_indexed()
                .set_precision(DateTimePrecision::Seconds),
        ),
        facet_key: b.add_u64_field("facet_key", NumericOptions::default().set_fast()),
    };
    (b.build(), f)
}

/// Field names users may write before a colon, and the fields each stands for.
fn user_fields(f: &Fields) -> Vec<(&'static str, Vec<Field>)> {
    vec![
        ("title", vec![f.title_de, f.title_en]),
        ("subject", vec![f.title_de, f.title_en]),
        ("body", vec![f.body_de, f.body_en]),
        ("text", vec![f.body_de, f.body_en]),
        ("name", vec![f.names]),
        ("from", vec![f.from]),
        ("to", vec![f.to]),
        ("cc", vec![f.cc]),
        ("class", vec![f.class]),
        ("party", vec![f.party]),
        ("role", vec![f.role]),
        ("case", vec![f.case]),
        ("hold", vec![f.hold]),
        ("media", vec![f.media]),
        ("lang", vec![f.lang]),
        ("date", vec![f.date]),
        ("archived", vec![f.archived]),
        ("year", vec![f.year]),
    ]
}

/// How hits are ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Sort {
    #[default]
    Relevance,
    /// Newest document date first.
    DateDesc,
    DateAsc,
}

impl std::str::FromStr for Sort {
    type Err = Error;
    fn from_str(s: &str) -> Result<Sort> {
        match s {
            "relevance" => Ok(Sort::Relevance),
            "date" | "-date" | "date-desc" => Ok(Sort::DateDesc),
            "+date" | "date-asc" => Ok(Sort::DateAsc),
            _ => Err(Error::invalid(
                "sort",
                format!("{s:?} is not one of relevance, date-desc, date-asc"),
            )),
        }
    }
}

/// The deepest hit a search may reach (`offset + limit`). Deeper paging is refused:
/// narrow the query (party, class, dates) instead. Same bound as Elasticsearch's
/// default `max_result_window`.
pub const MAX_WINDOW: usize = 50_000;
/// Longest query text, in characters.
pub const MAX_QUERY: usize = 4096;

/// Refuses an `offset + limit` beyond [`MAX_WINDOW`] (and any overflow on the way).
pub fn check_window(offset: usize, limit: usize) -> Result<()> {
    match offset.checked_add(limit) {
        Some(end) if end <= MAX_WINDOW => Ok(()),
        _ => Err(Error::Invalid {
            field: "page".into(),
            reason: format!(
                "results end at hit {MAX_WINDOW}: narrow the query (party, class, dates) instead of paging further"
            ),
        }),
    }
}

/// One search.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// Query text: words, "phrases", prefix*, field:value, AND/OR/NOT, +/-, ranges.
    pub q: String,
    /// Only records linked to one of these parties (`None`: no party filter).
    pub parties: Option<Vec<String>>,
    pub class: Option<String>,
    /// Only records of one of these classes (`None`: no such filter; a caller limited
    /// to classes).
    pub classes: Option<Vec<String>>,
    pub role: Option<String>,
    pub case: Option<String>,
    /// Document date range, inclusive.
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    pub sort: Sort,
    pub offset: usize,
    pub limit: usize,
    /// Match words within edit distance 1.
    pub fuzzy: bool,
    pub facets: bool,
}

#[derive(Debug, Clone)]
pub struct Hit {
    pub id: String,
    pub score: f32,
    /// The language the record was analysed as (for snippets).
    pub lang: Lang,
}

#[derive(Debug, Clone)]
pub struct SearchResult {
    pub total: usize,
    pub hits: Vec<Hit>,
    pub facets: Option<Facets>,
}

/// The index: one per node, under the data directory or `--index DIR`.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<Option<IndexWriter>>,
    f: Fields,
    query_tokenizers: TokenizerManager,
    dir: Option<PathBuf>,
    facet_terms: std::sync::Arc<facets::TermCache>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("dir", &self.dir)
            .finish()
    }
}

fn tv(e: tantivy::TantivyError) -> Error {
    Error::Internal(format!("search index: {e}"))
}

/// Commit payload: what the index covers.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    seq: u64,
}

impl SearchIndex {
    /// Opens (or creates) the index in `dir`. Fails with `Locked` when another process
    /// (a running server) holds its writer; `read_only` opens it for searching anyway.
    pub fn open(dir: &Path, read_only: bool) -> Result<SearchIndex> {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::Internal(format!("creating index directory {}: {e}", dir.display()))
        })?;
        let (schema, f) = schema();
        let mmap = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| Error::Internal(format!("index directory {}: {e}", dir.display())))?;
        let mut index = Index::open_or_create(mmap, schema.clone()).map_err(tv)?;
        if index.schema() != schema {
            // Derived state from an older version: start afresh; the journal (from
            // sequence 0) or `akte reindex` fills it again.
            if read_only {
                return Err(Error::Index(format!(
                    "the search index in {} was built by another version; run `akte reindex`",
                    dir.display()
                )));
            }
            tracing::warn!(dir = %dir.display(), "search index has an old schema; rebuilding it");
            drop(index);
            std::fs::remove_dir_all(dir)
                .and_then(|()| std::fs::create_dir_all(dir))
                .map_err(|e| Error::Index(format!("clearing {}: {e}", dir.display())))?;
            let mmap = tantivy::directory::MmapDirectory::open(dir)
                .map_err(|e| Error::Index(format!("index directory {}: {e}", dir.display())))?;
            index = Index::create(mmap, schema, tantivy::IndexSettings::default()).map_err(tv)?;
        }
        Self::finish(index, f, Some(dir.to_path_buf()), read_only)
    }

    /// An index in memory (tests, benches).
    pub fn in_memory() -> Result<SearchIndex> {
        let (schema, f) = schema();
        Self::finish(Index::create_in_ram(schema), f, None, false)
    }

    fn finish(
        mut index: Index,
        f: Fields,
        dir: Option<PathBuf>,
        read_only: bool,
    ) -> Result<SearchIndex> {
        analysis::register(index.tokenizers());
        // Searches visit segments in parallel (facet counting over many hits profits most).
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        index
            .set_multithread_executor(cores.clamp(1, 4))
            .map_err(tv)?;
        let writer = if read_only {
            None
        } else {
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .clamp(1, 4);
            let w: IndexWriter = index
                .writer_with_num_threads(threads, WRITER_HEAP)
                .map_err(|e| match e {
                    tantivy::TantivyError::LockFailure(..) => Error::IndexInUse {
                        dir: dir
                            .as_ref()
                            .map_or("memory".into(), |d| d.display().to_string()),
                    },
                    e => tv(e),
                })?;
            let mut policy = tantivy::merge_policy::LogMergePolicy::default();
            // Merge segments that carry many deleted (superseded) documents, so that the
            // index stays proportional to the live records under heavy amendment.
            policy.set_del_docs_ratio_before_merge(0.3);
            w.set_merge_policy(Box::new(policy));
            Some(w)
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(tv)?;
        Ok(SearchIndex {
            index,
            reader,
            writer: Mutex::new(writer),
            f,
            query_tokenizers: analysis::query_manager(),
            dir,
            facet_terms: Default::default(),
        })
    }

    /// Decodes the facet columns of the segments searched now on a thread of its own (a
    /// server's start: its first faceted searches need not wait for them).
    pub fn warm_in_background(&self) {
        let searcher = self.reader.searcher();
        let cache = self.facet_terms.clone();
        let spawned = std::thread::Builder::new()
            .name("facet-warm".into())
            .spawn(move || {
                if let Err(e) = cache.warm(searcher.segment_readers()) {
                    tracing::warn!(error = %e, "decoding facet columns");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "starting the facet warmer");
        }
    }

    /// The memory the decoded facet columns take (bounded by `--facet-cache-mb`).
    pub fn facet_table_bytes(&self) -> usize {
        self.facet_terms.decoded_bytes()
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// The journal sequence the last commit covers (0 for a new index).
    pub fn committed_seq(&self) -> Result<u64> {
        let metas = self.index.load_metas().map_err(tv)?;
        Ok(metas
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str::<Payload>(p).ok())
            .map_or(0, |p| p.seq))
    }

    fn with_writer<T>(&self, f: impl FnOnce(&mut IndexWriter) -> Result<T>) -> Result<T> {
        let mut g = self
            .writer
            .lock()
            .map_err(|_| Error::Internal("search index writer lock poisoned".into()))?;
        match g.as_mut() {
            Some(w) => f(w),
            None => Err(Error::Index("the search index was opened read-only".into())),
        }
    }

    /// Adds or replaces the document of one record (visible after [`commit`]).
    pub fn put(&self, d: &IndexDoc) -> Result<()> {
        let doc = self.document(d);
        self.with_writer(|w| {
            w.delete_term(Term::from_field_text(self.f.id, &d.id));
            w.add_document(doc).map_err(tv)?;
            Ok(())
        })
    }

    /// Adds documents to an index known not to hold them (bulk build).
    pub fn add_new(&self, docs: impl IntoIterator<Item = IndexDoc>) -> Result<()> {
        // Language detection and document building on all cores; tantivy's writer
        // threads then analyse.
        let docs: Vec<IndexDoc> = docs.into_iter().collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = docs.len().div_ceil(threads).max(1);
        let docs: Vec<TantivyDocument> = std::thread::scope(|sc| {
            let parts: Vec<_> = docs
                .chunks(chunk)
                .map(|c| sc.spawn(move || c.iter().map(|d| self.document(d)).collect::<Vec<_>>()))
                .collect();
            parts
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        self.with_writer(|w| {
            for d in docs {
                w.add_document(d).map_err(tv)?;
            }
            Ok(())
        })
    }

    /// Removes a record (disposed).
    pub fn remove(&self, id: &str) -> Result<()> {
        self.with_writer(|w| {
            w.delete_term(Term::from_field_text(self.f.id, id));
            Ok(())
        })
    }

    /// Removes everything (before a rebuild into the same directory).
    pub fn clear(&self) -> Result<()> {
        self.with_writer(|w| w.delete_all_documents().map(|_| ()).map_err(tv))
    }

    /// Makes everything added so far durable and searchable, recording `seq` as covered.
    pub fn commit(&self, seq: u64) -> Result<()> {
        self.with_writer(|w| {
            let mut c = w.prepare_commit().map_err(tv)?;
            c.set_payload(&serde_json::to_string(&Payload { seq }).unwrap_or_default());
            c.commit().map_err(tv)?;
            Ok(())
        })?;
        self.reload()
    }

    /// Merges all segments into one and drops files no commit references (after a
    /// rebuild). Blocks until done.
    pub fn optimize(&self) -> Result<()> {
        let ids = self.index.searchable_segment_ids().map_err(tv)?;
        self.with_writer(|w| {
            if ids.len() > 1 {
                w.merge(&ids).wait().map_err(tv)?;
            }
            w.garbage_collect_files().wait().map_err(tv)?;
            Ok(())
        })?;
        self.reload()
    }

    fn reload(&self) -> Result<()> {
        self.reader.reload().map_err(tv)?;
        let searcher = self.reader.searcher();
        let segs = searcher.segment_readers();
        let live: Vec<tantivy::index::SegmentId> = segs.iter().map(|s| s.segment_id()).collect();
        self.facet_terms.retain(&live);
        // The commit stands whatever happens here: the first faceted search decodes what
        // this could not.
        if let Err(e) = self.facet_terms.warm(segs) {
            tracing::warn!(error = %e, "decoding facet columns");
        }
        Ok(())
    }

    /// Bytes of all files in the index directory.
    pub fn size_on_disk(&self) -> u64 {
        let Some(dir) = &self.dir else { return 0 };
        std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Live documents.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    fn document(&self, d: &IndexDoc) -> TantivyDocument {
        let f = &self.f;
        let lang = d.lang.unwrap_or_else(|| {
            Lang::detect(&format!("{} {}", d.title, &d.body[..floor(&d.body, 1024)]))
        });
        let (title, body) = match lang {
            Lang::De => (f.title_de, f.body_de),
            Lang::En => (f.title_en, f.body_en),
        };
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, &d.id);
        doc.add_text(title, &d.title);
        doc.add_text(body, &d.body);
        for (field, v) in [
            (f.names, &d.party_names),
            (f.from, &d.from),
            (f.to, &d.to),
            (f.cc, &d.cc),
            (f.extra, &d.extra),
        ] {
            if !v.is_empty() {
                doc.add_text(field, v);
            }
        }
        doc.add_text(f.class, &d.class);
        for (p, r) in &d.parties {
            doc.add_text(f.party, p);
            doc.add_text(f.role, r);
            doc.add_text(f.party_role, format!("{p}:{r}"));
        }
        for c in &d.cases {
            doc.add_text(f.case, c);
        }
        for h in &d.holds {
            doc.add_text(f.hold, h);
        }
        doc.add_text(f.media, &d.media_type);
        doc.add_text(f.lang, lang.as_str());
        let date = d.document_date.unwrap_or(d.archived_at.date_naive());
        doc.add_date(f.date, day(date));
        doc.add_date(
            f.archived,
            tantivy::DateTime::from_timestamp_secs(d.archived_at.timestamp()),
        );
        doc.add_u64(f.year, u64::try_from(date.year()).unwrap_or(0));
        if let Some(r) = d.retain_until {
            doc.add_date(f.retain_until, day(r));
        }
        doc.add_u64(
            f.facet_key,
            facets::pack(
                date.year(),
                d.retain_until,
                !d.holds.is_empty(),
                d.awaiting_event,
            ),
        );
        doc
    }

    /// Runs a search. `today` decides the retention state facet.
    ///
    /// Refuses a window beyond [`MAX_WINDOW`]: tantivy reserves room for
    /// `offset + limit` hits per segment up front, so an unbounded page is an
    /// allocation a caller controls.
    pub fn search(&self, r: &SearchRequest, today: NaiveDate) -> Result<SearchResult> {
        let limit = r.limit.clamp(1, 1000);
        check_window(r.offset, limit)?;
        let query = self.build(r)?;
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(limit).and_offset(r.offset);
        let ids = |addrs: Vec<(f32, tantivy::DocAddress)>| -> Result<Vec<Hit>> {
            addrs
                .into_iter()
                .map(|(score, a)| {
                    let doc: TantivyDocument = searcher.doc(a).map_err(tv)?;
                    let id = doc
                        .get_first(self.f.id)
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string();
                    let lang = match doc.get_first(self.f.lang).and_then(|v| v.as_str()) {
                        Some("en") => Lang::En,
                        _ => Lang::De,
                    };
                    Ok(Hit { id, score, lang })
                })
                .collect()
        };
        let by_date = |top: TopDocs| {
            let order = if r.sort == Sort::DateDesc {
                Order::Desc
            } else {
                Order::Asc
            };
            top.order_by_fast_field::<tantivy::DateTime>("date", order)
        };
        let (hits, total, facets) = if r.facets {
            // The top hits alone (pruned: block-max WAND skips what cannot rank), then the
            // count and the facets together in one pass without scoring.
            let hits = match r.sort {
                Sort::Relevance => {
                    ids(searcher.search(&query, &top.order_by_score()).map_err(tv)?)?
                }
                Sort::DateDesc | Sort::DateAsc => {
                    let h = searcher.search(&query, &by_date(top)).map_err(tv)?;
                    ids(h.into_iter().map(|(_, a)| (0.0, a)).collect())?
                }
            };
            let facets = facets::FacetCollector::new(today, self.facet_terms.clone());
            let (total, facets) = searcher.search(&query, &facets).map_err(tv)?;
            (hits, total, Some(facets))
        } else {
            match r.sort {
                Sort::Relevance => {
                    let (h, n) = searcher
                        .search(&query, &(top.order_by_score(), Count))
                        .map_err(tv)?;
                    (ids(h)?, n, None)
                }
                Sort::DateDesc | Sort::DateAsc => {
                    let (h, n) = searcher
                        .search(&query, &(by_date(top), Count))
                        .map_err(tv)?;
                    (
                        ids(h.into_iter().map(|(_, a)| (0.0, a)).collect())?,
                        n,
                        None,
                    )
                }
            }
        };
        Ok(SearchResult {
            total,
            hits,
            facets,
        })
    }

    /// A highlighted excerpt of `body` (and of `title`) for the request's query:
    /// HTML-escaped text with the matched words in `<mark>`.
    pub fn snippet(
        &self,
        r: &SearchRequest,
        lang: Lang,
        title: &str,
        body: &str,
    ) -> Result<(String, String)> {
        let query = self.parse(&r.q, r.fuzzy)?;
        let searcher = self.reader.searcher();
        let (tf, bf) = match lang {
            Lang::De => (self.f.title_de, self.f.body_de),
            Lang::En => (self.f.title_en, self.f.body_en),
        };
        let html = |field: Field, text: &str, chars: usize| -> Result<String> {
            let mut g = SnippetGenerator::create(&searcher, &*query, field).map_err(tv)?;
            g.set_max_num_chars(chars);
            let mut s = g.snippet(text);
            s.set_snippet_prefix_postfix("<mark>", "</mark>");
            Ok(s.to_html())
        };
        let mut t = html(tf, title, 1024)?;
        if t.is_empty() {
            // No match in the title: the whole title, escaped.
            t = escape_html(title);
        }
        Ok((t, html(bf, body, 240)?))
    }

    /// Ids of live records in `class` (to re-evaluate after a class-wide hold).
    pub fn ids_with_class(&self, class: &str) -> Result<Vec<String>> {
        let searcher = self.reader.searcher();
        let q = TermQuery::new(
            Term::from_field_text(self.f.class, class),
            IndexRecordOption::Basic,
        );
        let n = searcher.search(&q, &Count).map_err(tv)?;
        let top = searcher
            .search(&q, &TopDocs::with_limit(n.max(1)).order_by_score())
            .map_err(tv)?;
        top.into_iter()
            .map(|(_, a)| {
                let doc: TantivyDocument = searcher.doc(a).map_err(tv)?;
                Ok(doc
                    .get_first(self.f.id)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string())
            })
            .collect()
    }
}

/// A day as a tantivy date. Tantivy counts nanoseconds in an `i64` (years 1677 to 2262):
/// days outside are clamped to its ends rather than overflowing.
fn day(d: NaiveDate) -> tantivy::DateTime {
    const LIMIT: i64 = i64::MAX / 1_000_000_000;
    let secs = d
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp())
        .unwrap_or(0);
    tantivy::DateTime::from_timestamp_secs(secs.clamp(-LIMIT, LIMIT))
}

/// The largest char boundary ≤ `max`.
fn floor(s: &str, max: usize) -> usize {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    end
}

/// `s` with `<`, `>`, `&`, `"` and `'` escaped for HTML.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_german_and_english() {
        assert_eq!(
            Lang::detect(
                "Invoice 4711 Dear customer, please find the invoices for the delivered goods attached."
            ),
            Lang::En
        );
        assert_eq!(
            Lang::detect("Sehr geehrte Damen und Herren, anbei die Verträge zur Unterschrift."),
            Lang::De
        );
        // Function words settle running text; whatlang decides the rest.
        assert_eq!(
            Lang::detect("Die Lieferung ist nicht vollständig, bitte senden Sie uns den Rest."),
            Lang::De
        );
        assert_eq!(
            Lang::detect("The delivery is not complete, please send us the rest of it."),
            Lang::En
        );
        assert_eq!(
            Lang::detect("Rechnungsnummer Zahlungsziel Mahnung"),
            Lang::De
        );
    }

    #[test]
    fn function_words_count_only_in_their_language() {
        assert_eq!(function_word("Und"), Some(Lang::De));
        assert_eq!(function_word("THE"), Some(Lang::En));
        assert_eq!(function_word("in"), None);
        assert_eq!(function_word("was"), None);
        assert_eq!(function_word("Verträge"), None);
    }

    /// Facets of a query matching most of a large segment are counted as the segment's
    /// totals less the documents not matched; they must equal a count of the hits, with
    /// deleted documents, on a second (cached) query and after a day passes; from the
    /// decoded tables and, with no memory for them, from the columns.
    #[test]
    fn facets_are_the_same_whether_hits_or_non_hits_are_counted() {
        use chrono::TimeZone;
        let mut index = SearchIndex::in_memory().expect("index");
        let classes = ["invoice", "email", "contract"];
        let roles = ["customer", "supplier", "sender"];
        let docs: Vec<IndexDoc> = (0..20_000u32)
            .map(|i| {
                let day = NaiveDate::from_ymd_opt(2015 + (i % 6) as i32, 3, 1).expect("date");
                let word = if i % 5 == 0 { "beta" } else { "alpha" };
                IndexDoc {
                    id: format!("r{i}"),
                    title: format!("{word} title"),
                    body: format!("{word} body text number {i}"),
                    lang: Some(Lang::En),
                    class: classes[(i % 3) as usize].into(),
                    parties: (0..1 + i % 2)
                        .map(|k| {
                            (
                                format!("p{}", (i + k) % 7),
                                // Some records have two parties in one role.
                                roles[if i % 4 == 1 {
                                    0
                                } else {
                                    ((i + k) % 3) as usize
                                }]
                                .to_string(),
                            )
                        })
                        .collect(),
                    holds: if i % 11 == 0 {
                        vec!["h1".into()]
                    } else {
                        vec![]
                    },
                    media_type: "text/plain".into(),
                    document_date: Some(day),
                    archived_at: Utc.from_utc_datetime(&day.and_hms_opt(9, 0, 0).expect("t")),
                    retain_until: Some(
                        NaiveDate::from_ymd_opt(2026, 1, 1).expect("d")
                            + chrono::Days::new(u64::from(i % 400)),
                    ),
                    awaiting_event: i % 13 == 0,
                    ..Default::default()
                }
            })
            .collect();
        index.add_new(docs.clone()).expect("add");
        index.commit(1).expect("commit");
        for i in (0..20_000).step_by(17) {
            index.remove(&format!("r{i}")).expect("remove");
        }
        index.commit(2).expect("commit");
        let expect = |word: Option<&str>, today: NaiveDate| -> (usize, Facets) {
            let mut f = Facets::new();
            let mut n = 0;
            for (i, d) in docs.iter().enumerate() {
                if i % 17 == 0 || word.is_some_and(|w| !d.title.starts_with(w)) {
                    continue;
                }
                n += 1;
                let mut add = |facet: &str, v: String| {
                    *f.entry(facet.into()).or_default().entry(v).or_default() += 1;
                };
                add("class", d.class.clone());
                for (p, r) in &d.parties {
                    add("party", p.clone());
                    add("role", r.clone());
                }
                add("year", d.document_date.expect("date").year().to_string());
                let state = if !d.holds.is_empty() {
                    "held"
                } else if d.retain_until.is_some_and(|r| r < today) {
                    "eligible"
                } else if d.awaiting_event {
                    "awaiting-event"
                } else {
                    "retained"
                };
                add("retention_state", state.into());
            }
            for k in ["class", "party", "role", "year", "retention_state"] {
                f.entry(k.into()).or_default();
            }
            (n, f)
        };
        for (budget, today) in [
            (usize::MAX, NaiveDate::from_ymd_opt(2026, 6, 1).expect("d")),
            (usize::MAX, NaiveDate::from_ymd_opt(2026, 6, 2).expect("d")),
            (0, NaiveDate::from_ymd_opt(2026, 6, 1).expect("d")),
            (0, NaiveDate::from_ymd_opt(2026, 6, 2).expect("d")),
        ] {
            if index.facet_terms.decoded_bytes() > budget {
                index.facet_terms = std::sync::Arc::new(facets::TermCache::with_budget(budget));
            }
            for (q, word) in [
                ("alpha", Some("alpha")),
                ("beta", Some("beta")),
                ("*", None),
            ] {
                for _ in 0..2 {
                    let r = SearchRequest {
                        q: q.into(),
                        facets: true,
                        limit: 5,
                        ..Default::default()
                    };
                    let got = index.search(&r, today).expect("search");
                    let (n, f) = expect(word, today);
                    assert_eq!(got.total, n, "{q}");
                    assert_eq!(got.facets.as_ref(), Some(&f), "{q} on {today}");
                }
            }
            // The tables were used when they could be, and not when they could not.
            assert_eq!(index.facet_terms.decoded_bytes() > 0, budget > 0);
        }
    }

    /// The party facet names the parties with the most hits, ties by name, from the
    /// decoded tables and from the columns alike.
    #[test]
    fn the_party_facet_shows_the_parties_with_most_hits() {
        let mut index = SearchIndex::in_memory().expect("index");
        let parties = 3 * PARTY_FACET_LIMIT;
        let mut docs = Vec::new();
        let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
        for p in 0..parties {
            // Counts of 1 to 9: many ties across the cut.
            for k in 0..1 + (p * 7) % 9 {
                let party = format!("party-{p:03}");
                *counts.entry(party.clone()).or_default() += 1;
                docs.push(IndexDoc {
                    id: format!("r{p}-{k}"),
                    title: "gamma".into(),
                    body: "gamma".into(),
                    lang: Some(Lang::En),
                    class: "letter".into(),
                    parties: vec![(party, "customer".into())],
                    ..Default::default()
                });
            }
        }
        // Two commits: two segments, whose counts are added.
        let half = docs.split_off(docs.len() / 2);
        index.add_new(docs).expect("add");
        index.commit(1).expect("commit");
        index.add_new(half).expect("add");
        index.commit(2).expect("commit");
        let mut want: Vec<(String, u64)> = counts.into_iter().collect();
        want.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        want.truncate(PARTY_FACET_LIMIT);
        let want: std::collections::BTreeMap<String, u64> = want.into_iter().collect();
        let today = NaiveDate::from_ymd_opt(2026, 6, 1).expect("d");
        for budget in [usize::MAX, 0] {
            index.facet_terms = std::sync::Arc::new(facets::TermCache::with_budget(budget));
            let r = SearchRequest {
                q: "gamma".into(),
                facets: true,
                ..Default::default()
            };
            let got = index.search(&r, today).expect("search");
            let party = got.facets.as_ref().and_then(|f| f.get("party"));
            assert_eq!(party, Some(&want), "budget {budget}");
        }
        // Segments merged away give their tables' bytes back; the merged one is decoded.
        index.facet_terms = std::sync::Arc::new(facets::TermCache::with_budget(usize::MAX));
        let r = SearchRequest {
            q: "gamma".into(),
            facets: true,
            ..Default::default()
        };
        index.search(&r, today).expect("search");
        let two = index.facet_table_bytes();
        index.optimize().expect("merge");
        let one = index.facet_table_bytes();
        assert!(
            one > 0 && one <= two,
            "{one} bytes after the merge, {two} before"
        );
    }

    #[test]
    fn days_beyond_tantivys_range_are_clamped_not_overflowing() {
        let far = NaiveDate::from_ymd_opt(7023, 6, 21).expect("date");
        let early = NaiveDate::from_ymd_opt(1, 1, 1).expect("date");
        assert!(day(far) > day(NaiveDate::from_ymd_opt(2262, 1, 1).expect("date")));
        assert!(day(early) < day(NaiveDate::from_ymd_opt(1678, 1, 1).expect("date")));
    }
}

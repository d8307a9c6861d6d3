//! The archive: records as chains of revisions over blobs, every change journaled.
//!
//! Order of writes for every change: blob → revision → journal entry (through `audit`,
//! the one committer). A change is acknowledged (the method returns) only after the
//! journal entry is durable; a crash before it leaves a leftover that recovery records
//! and no reader sees (see ARCHITECTURE.md). `write.rs`: new records; `change.rs`:
//! amendments, events, links, content versions, tombstones; `read.rs`: reads.
//!
//! Archiving identical content twice makes two records that share one blob: each
//! archiving is its own act with its own metadata and retention.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::audit::{self, journal::Journal};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::record::{self, ContentRef, PartyLink, RecordRevision};
use crate::retention;
use crate::store::Store;
use crate::store::blob::BlobRef;
use crate::store::codec;
use crate::store::keys::{self};

mod change;
mod read;
mod write;

/// A record written but not committed yet (see [`Archive::stage`]).
#[derive(Debug, Clone)]
pub struct Staged {
    pub archived: Archived,
    /// SHA-256 of the stored revision's bytes, which the journal entry commits to.
    digest: String,
}

/// Metadata for a new record.
#[derive(Debug, Clone, Default)]
pub struct NewRecord {
    pub class: Option<String>,
    pub title: Option<String>,
    pub document_date: Option<NaiveDate>,
    pub media_type: Option<String>,
    pub file_name: Option<String>,
    pub parties: Vec<PartyLink>,
    pub cases: Vec<String>,
    pub extra: std::collections::BTreeMap<String, String>,
}

/// Links to add to or remove from a record.
#[derive(Debug, Clone, Default)]
pub struct LinkChange {
    pub add_parties: Vec<PartyLink>,
    /// (party, role) pairs to remove; role `*` removes every link to the party.
    pub remove_parties: Vec<(String, String)>,
    pub add_cases: Vec<String>,
    pub remove_cases: Vec<String>,
    pub reason: Option<String>,
}

/// What an ingest acknowledges.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Archived {
    pub id: String,
    pub rev: u32,
    pub sha256: String,
    pub size: u64,
    /// False when the content was already stored (deduplicated blob).
    pub new_blob: bool,
    pub retain_until: NaiveDate,
    pub journal_seq: u64,
    /// The revision written, in clear (for derived state such as the catalog).
    #[serde(skip)]
    pub revision: RecordRevision,
}

/// A metadata change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct Amendment {
    pub title: Option<String>,
    pub class: Option<String>,
    pub document_date: Option<NaiveDate>,
    pub retain_until: Option<NaiveDate>,
    pub reason: Option<String>,
    /// The revision this amendment was made against; if a newer one exists the
    /// amendment is refused as a conflict (no lost updates).
    pub base_rev: Option<u32>,
}

/// A new content version.
#[derive(Debug, Clone, Default)]
pub struct NewContent {
    pub media_type: Option<String>,
    pub file_name: Option<String>,
    pub reason: Option<String>,
    /// What reading the new content found (text, e-invoice facts, why there is none):
    /// replaces what was found in the old content. `None` keeps the old facts.
    pub facts: Option<BTreeMap<String, String>>,
}

/// The `extra` keys that reading a record's content fills (and a new content version
/// replaces).
pub const CONTENT_FACTS: &[&str] = &[
    "text",
    "extraction",
    "einvoice",
    "invoice_number",
    "invoice_date",
    "due_date",
    "seller",
    "buyer",
    "seller_vat",
    "buyer_vat",
    "net_total",
    "gross_total",
    "currency",
];

pub const DEFAULT_CLASS: &str = "document";

/// How far a document date given by a person may lie in the future (a pre-dated
/// invoice); beyond it, a typo such as 2099 is refused rather than kept for good. Dates
/// read from the content (an email's `Date:`) are kept as they are.
pub const FUTURE_TOLERANCE_DAYS: u64 = 366;

#[derive(Debug, Clone)]
pub struct Archive {
    store: Store,
    journal: Arc<Journal>,
    clock: Arc<dyn Clock>,
    /// Commits in flight; see [`Archive::drain`].
    commits: tokio_util::task::TaskTracker,
    /// The retention catalogue in force.
    catalogue: Arc<retention::catalogue::Catalogue>,
    /// Per-record keys sealing titles and file names (destroyed at disposal).
    keys: Arc<crate::store::crypt::KeyStore>,
}

impl Archive {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Archive {
        let journal = Arc::new(Journal::new(store.clone(), clock.clone()));
        Archive {
            keys: Arc::new(crate::store::crypt::KeyStore::new(
                store.clone(),
                journal.clone(),
            )),
            store,
            journal,
            clock,
            commits: tokio_util::task::TaskTracker::new(),
            catalogue: Arc::new(retention::catalogue::Catalogue::shipped()),
        }
    }

    /// Refuses a class the retention catalogue does not know (a misspelled `invioce`
    /// would otherwise get the conservative default period silently). `document`, the
    /// class of a record nobody classified, is always accepted.
    pub fn check_class(&self, class: &str) -> Result<()> {
        if class == DEFAULT_CLASS || self.catalogue.classes.contains_key(class) {
            return Ok(());
        }
        let mut known: Vec<&str> = self.catalogue.classes.keys().map(String::as_str).collect();
        known.sort_unstable();
        let closest = known
            .iter()
            .map(|k| (strsim::levenshtein(k, class), *k))
            .min()
            .filter(|(d, _)| *d <= 3)
            .map(|(_, k)| format!(" (did you mean {k:?}?)"))
            .unwrap_or_default();
        // 422: the request is well-formed, but breaks a rule of this archive.
        Err(crate::error::Error::unprocessable(
            "class",
            format!(
                "unknown class {class:?}{closest}: the retention catalogue {} has no such \
                 class, so its retention period is unknown. Classes: {}; or leave the class \
                 out and the rules decide (else `{DEFAULT_CLASS}`, {} years)",
                self.catalogue.version,
                known.join(", "),
                self.catalogue.entry(DEFAULT_CLASS).years
            ),
        ))
    }

    /// The same archive with another retention catalogue in force.
    pub fn with_catalogue(mut self, c: retention::catalogue::Catalogue) -> Archive {
        self.catalogue = Arc::new(c);
        self
    }

    /// Refuses a document date a person gave that lies more than
    /// [`FUTURE_TOLERANCE_DAYS`] in the future.
    pub fn check_document_date(&self, date: NaiveDate) -> Result<()> {
        let today = self.clock.now().date_naive();
        if today
            .checked_add_days(chrono::Days::new(FUTURE_TOLERANCE_DAYS))
            .is_some_and(|limit| date > limit)
        {
            return Err(crate::error::Error::unprocessable(
                "date",
                format!(
                    "{date} lies more than {FUTURE_TOLERANCE_DAYS} days in the future (today is \
                     {today}); a document date decides the retention period and cannot be \
                     taken back"
                ),
            ));
        }
        Ok(())
    }

    /// The retention catalogue in force.
    pub fn catalogue(&self) -> &retention::catalogue::Catalogue {
        &self.catalogue
    }

    pub(super) fn record_key_id(id: &str) -> String {
        format!("record-{id}")
    }

    /// Moves title, file name and extras into the block sealed with the record's key.
    pub(super) async fn seal_meta(&self, r: RecordRevision) -> Result<RecordRevision> {
        if r.tombstone.is_some() {
            return Self::seal_with(r, None);
        }
        let key = self.keys.get_or_create(&Self::record_key_id(&r.id)).await?;
        Self::seal_with(r, Some(&key))
    }

    pub(super) fn seal_with(
        mut r: RecordRevision,
        key: Option<&[u8; 32]>,
    ) -> Result<RecordRevision> {
        let Some(key) = key else {
            r.sealed = None;
            return Ok(r);
        };
        let meta = record::SealedMeta {
            title: std::mem::take(&mut r.title),
            file_name: r.content.file_name.take(),
            extra: std::mem::take(&mut r.extra),
        };
        let kid = Self::record_key_id(&r.id);
        r.sealed = Some(crate::store::crypt::seal(
            key,
            &kid,
            &codec::encode(&meta)?,
        )?);
        Ok(r)
    }

    /// A stored revision as readers see it: sealed metadata opened (or, once the record's
    /// key is destroyed by disposal, gone).
    pub async fn open_meta(&self, mut r: RecordRevision) -> Result<RecordRevision> {
        if let Some(s) = r.sealed.take() {
            let kid = Self::record_key_id(&r.id);
            if let Some(key) = self.keys.get(&kid).await? {
                let corrupt = |_| Error::CorruptObject {
                    key: keys::record_rev(&r.id, r.rev).to_string(),
                    reason: "sealed metadata do not authenticate with the record's key".into(),
                };
                let plain = crate::store::crypt::open(&key, &kid, &s).map_err(corrupt)?;
                let meta: record::SealedMeta =
                    codec::decode("record metadata", &plain).map_err(corrupt)?;
                r.title = meta.title;
                r.content.file_name = meta.file_name;
                r.extra = meta.extra;
            }
        }
        Ok(r)
    }

    /// Destroys a disposed record's metadata key (called by disposal only).
    pub(crate) async fn destroy_record_key(&self, id: &str) -> Result<()> {
        self.keys.destroy(&Self::record_key_id(id)).await
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts a writer on this archive: takes the writer lock and records what a crash
    /// left behind (see `audit::recovery`). Keep the session for the writer's lifetime.
    pub async fn start_writer(&self) -> Result<audit::recovery::WriterSession> {
        audit::recovery::start_writer(
            &self.store,
            &self.journal,
            &self.clock,
            audit::recovery::ACTOR,
        )
        .await
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The shared journal handle (one head per process avoids needless races).
    pub fn journal_arc(&self) -> Arc<Journal> {
        self.journal.clone()
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// A fresh record id (time-ordered).
    pub fn new_id(&self) -> String {
        self.clock.new_id().to_string()
    }
}

pub(super) fn content_ref(
    blob: &BlobRef,
    media_type: String,
    file_name: Option<String>,
    version: u32,
) -> ContentRef {
    ContentRef {
        sha256: blob.sha256.clone(),
        size: blob.size,
        media_type,
        file_name,
        version,
    }
}

/// Record ids are UUIDs; anything else is refused before it reaches a key.
/// Checks a new record's metadata (class, title, media type) before anything is written.
pub fn check_new(meta: &NewRecord) -> Result<()> {
    Archive::class_and_title(meta)?;
    if let Some(m) = &meta.media_type {
        validate_media_type(m)?;
    }
    Ok(())
}

pub fn validate_media_type(m: &str) -> Result<String> {
    let ok = m.len() <= 255 && crate::ids::shape::matches(crate::ids::shape::MEDIA_TYPE, m);
    if ok {
        Ok(m.to_ascii_lowercase())
    } else {
        Err(Error::invalid(
            "media_type",
            format!("{m:?} is not a media type"),
        ))
    }
}

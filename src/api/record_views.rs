//! What `/v1/records` answers with and accepts: record, content, link and retention
//! views, the upload receipt, new-record metadata, amendments.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::record::RecordRevision;

/// A record revision as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordView {
    pub id: String,
    pub rev: u32,
    pub class: String,
    pub title: String,
    pub document_date: Option<NaiveDate>,
    pub archived_at: DateTime<Utc>,
    pub revised_at: DateTime<Utc>,
    pub actor: String,
    pub change: String,
    pub reason: Option<String>,
    pub prev_hash: Option<String>,
    pub content: ContentView,
    pub parties: Vec<PartyLinkView>,
    /// Cases (Vorgänge) the record belongs to.
    pub cases: Vec<String>,
    pub retention: RetentionView,
    pub holds: Vec<String>,
    /// What ingest found and kept (mail headers, e-invoice facts such as
    /// `invoice_number` and `seller_vat`, `class_rule`, `extraction` when there is no
    /// text, `parent` of an attachment); the extracted text itself is not repeated here.
    pub extra: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContentView {
    pub sha256: String,
    pub size: u64,
    pub media_type: String,
    pub file_name: Option<String>,
    pub version: u32,
    /// Where to download this revision's content.
    pub href: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartyLinkView {
    pub party: String,
    pub role: String,
    /// Why ingest linked it (an address, an identifier, a rule); absent when a person did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionView {
    pub policy: String,
    pub legal_basis: String,
    pub catalogue: String,
    pub period_years: u32,
    pub start: NaiveDate,
    pub retain_until: NaiveDate,
}

impl From<crate::archive::Archived> for Archived {
    fn from(a: crate::archive::Archived) -> Self {
        Archived {
            id: a.id,
            rev: a.rev,
            sha256: a.sha256,
            size: a.size,
            new_blob: a.new_blob,
            retain_until: a.retain_until,
            journal_seq: a.journal_seq,
            auto_links: vec![],
            ambiguous: vec![],
            class: a.revision.class,
            extraction: None,
        }
    }
}

impl From<RecordRevision> for RecordView {
    fn from(r: RecordRevision) -> Self {
        RecordView {
            content: ContentView {
                href: format!("/v1/records/{}/content?rev={}", r.id, r.rev),
                sha256: r.content.sha256,
                size: r.content.size,
                media_type: r.content.media_type,
                file_name: r.content.file_name,
                version: r.content.version,
            },
            parties: r
                .parties
                .into_iter()
                .map(|p| PartyLinkView {
                    party: p.party,
                    role: p.role,
                    reason: p.reason,
                })
                .collect(),
            cases: r.cases,
            retention: RetentionView {
                policy: r.retention.policy,
                legal_basis: r.retention.legal_basis,
                catalogue: r.retention.catalogue,
                period_years: r.retention.period_years,
                start: r.retention.start,
                retain_until: r.retention.retain_until,
            },
            id: r.id,
            rev: r.rev,
            class: r.class,
            title: r.title,
            document_date: r.document_date,
            archived_at: r.archived_at,
            revised_at: r.revised_at,
            actor: r.actor,
            change: r.change,
            reason: r.reason,
            prev_hash: r.prev_hash,
            extra: r.extra.into_iter().filter(|(k, _)| k != "text").collect(),
            holds: r.holds,
        }
    }
}

/// What an upload acknowledges: durable blob, revision and journal entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct Archived {
    pub id: String,
    pub rev: u32,
    pub sha256: String,
    pub size: u64,
    /// False when identical content was already stored.
    pub new_blob: bool,
    pub retain_until: NaiveDate,
    pub journal_seq: u64,
    /// Links made automatically from evidence (sender/recipient addresses), with reasons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub auto_links: Vec<crate::catalog::LinkBrief>,
    /// Evidence that points to more than one party: not linked, left for a human.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ambiguous: Vec<crate::catalog::Match>,
    /// The class the record got (given, by a rule, or the default).
    pub class: String,
    /// Archived, but its text could not be read: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extraction: Option<String>,
}

/// Metadata of a new record (multipart `metadata` part, or query parameters).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordMeta {
    pub class: Option<String>,
    pub title: Option<String>,
    /// `YYYY-MM-DD`
    pub document_date: Option<NaiveDate>,
    pub file_name: Option<String>,
    pub media_type: Option<String>,
    /// Parties to link, with their role in this record.
    #[serde(default)]
    pub parties: Vec<super::parties::LinkItem>,
    /// Cases this record belongs to.
    #[serde(default)]
    pub cases: Vec<String>,
    /// Sender address(es): linked to the party whose contact it is, when unambiguous.
    #[serde(default)]
    pub from: Vec<String>,
    /// Recipient address(es), likewise.
    #[serde(default)]
    pub to: Vec<String>,
}

impl RecordMeta {
    /// This metadata, with what it leaves open taken from `defaults` (a multipart
    /// upload's query parameters).
    pub fn or(self, defaults: RecordMeta) -> RecordMeta {
        fn list<T>(a: Vec<T>, b: Vec<T>) -> Vec<T> {
            if a.is_empty() { b } else { a }
        }
        RecordMeta {
            class: self.class.or(defaults.class),
            title: self.title.or(defaults.title),
            document_date: self.document_date.or(defaults.document_date),
            file_name: self.file_name.or(defaults.file_name),
            media_type: self.media_type.or(defaults.media_type),
            parties: list(self.parties, defaults.parties),
            cases: list(self.cases, defaults.cases),
            from: list(self.from, defaults.from),
            to: list(self.to, defaults.to),
        }
    }
}

/// A multipart upload: the part `metadata` (JSON), then the part `file`.
#[derive(ToSchema)]
#[allow(dead_code)] // describes the multipart body; the parts are read as they stream
pub struct RecordUpload {
    pub metadata: Option<RecordMeta>,
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// A metadata amendment; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendRequest {
    pub title: Option<String>,
    pub class: Option<String>,
    pub document_date: Option<NaiveDate>,
    /// Extends retention; an earlier date is refused with 423.
    pub retain_until: Option<NaiveDate>,
    pub reason: Option<String>,
    /// The revision the change was made against: 409 if a newer one exists.
    #[serde(default, deserialize_with = "crate::api::params::whole_number")]
    #[schema(minimum = 1)]
    pub base_rev: Option<u32>,
}

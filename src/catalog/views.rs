//! What the catalog answers with: summaries of records, parties and cases, the party
//! file, matches. (Read models shared by the API, which documents them, and the CLI.)

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::case::CaseStatus;
use crate::party::{Party, PartyData, PartyKind};
use crate::record::RecordRevision;

/// Record classes that make up the communication timeline.
pub const COMMUNICATION: &[&str] = &[
    "email",
    "business-letter",
    "letter",
    "phone-note",
    "memo",
    "note",
    "fax",
];
/// Record classes that are transaction documents.
pub const TRANSACTIONS: &[&str] = &[
    "order",
    "order-confirmation",
    "delivery-note",
    "invoice",
    "credit-note",
    "offer",
    "quotation",
];

/// A record as the catalog keeps it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordBrief {
    pub id: String,
    pub rev: u32,
    pub class: String,
    pub title: String,
    pub date: NaiveDate,
    pub archived_at: DateTime<Utc>,
    pub media_type: String,
    pub size: u64,
    /// Links of the record: party id and its role in the record.
    pub parties: Vec<LinkBrief>,
    pub cases: Vec<String>,
    /// SHA-256 of the content (empty once disposed): finds duplicates on ingest.
    #[serde(skip)]
    pub sha256: String,
    /// Message-ID of an archived email.
    #[serde(skip)]
    pub message_id: Option<String>,
    /// The record this one was carried in (an email's attachment, a PDF's embedded XML).
    #[serde(skip)]
    pub parent: Option<String>,
    /// In a party file: an email with the Message-ID of an earlier record but other bytes
    /// (the same message received twice, by different routes) names that record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant_of: Option<String>,
    /// In a party file: `in` for a message the party sent, `out` for one it received
    /// (from the sender and recipient links, which come from the headers and the
    /// journaling envelope). Absent when the links do not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// The conversation an email belongs to (a hash of its thread id: References, else
    /// In-Reply-To, else its own Message-ID), kept small: the catalog holds one per email.
    #[serde(skip)]
    pub thread_key: Option<u64>,
    /// In a party file: the conversation this message belongs to, when the file holds
    /// more than one message of it; the timeline keeps a conversation's messages together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// What the retention report needs of the record (not part of the API's views).
    #[serde(skip)]
    pub retention: RetentionBrief,
}

/// A record's retention as the catalog keeps it: enough for the retention report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RetentionBrief {
    pub retain_until: NaiveDate,
    pub policy: String,
    pub legal_basis: String,
    pub catalogue: String,
    pub awaiting_event: bool,
    /// The record was disposed (its latest revision is a tombstone).
    pub disposed: bool,
}

/// A conversation's key: the first 8 bytes of the SHA-256 of its thread id.
pub fn thread_key(thread: &str) -> u64 {
    use sha2::Digest;
    let d = sha2::Sha256::digest(thread.as_bytes());
    u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LinkBrief {
    pub party: String,
    pub role: String,
    pub reason: Option<String>,
}

impl From<&RecordRevision> for RecordBrief {
    fn from(r: &RecordRevision) -> Self {
        RecordBrief {
            id: r.id.clone(),
            rev: r.rev,
            class: r.class.clone(),
            title: r.title.clone(),
            date: r.document_date.unwrap_or(r.archived_at.date_naive()),
            archived_at: r.archived_at,
            media_type: r.content.media_type.clone(),
            size: r.content.size,
            parties: r
                .parties
                .iter()
                .map(|l| LinkBrief {
                    party: l.party.clone(),
                    role: l.role.clone(),
                    reason: l.reason.clone(),
                })
                .collect(),
            cases: r.cases.clone(),
            sha256: if r.tombstone.is_some() {
                String::new()
            } else {
                r.content.sha256.clone()
            },
            message_id: r.extra.get("message_id").cloned(),
            parent: r.extra.get("parent").cloned(),
            variant_of: None,
            direction: None,
            thread_key: r
                .extra
                .get("thread")
                .or_else(|| r.extra.get("message_id"))
                .map(|t| thread_key(t)),
            thread: None,
            retention: RetentionBrief {
                retain_until: r.retention.retain_until,
                policy: r.retention.policy.clone(),
                legal_basis: r.retention.legal_basis.clone(),
                catalogue: r.retention.catalogue.clone(),
                awaiting_event: r.retention.awaiting_event.is_some(),
                disposed: r.tombstone.is_some(),
            },
        }
    }
}

/// A party as the catalog keeps it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PartyBrief {
    pub id: String,
    pub rev: u32,
    pub merged_into: Option<String>,
    pub erased: bool,
    #[serde(flatten)]
    pub data: PartyData,
}

impl From<&Party> for PartyBrief {
    fn from(p: &Party) -> Self {
        PartyBrief {
            id: p.revision.id.clone(),
            rev: p.revision.rev,
            merged_into: p.revision.merged_into.clone(),
            erased: p.erased,
            data: p.data.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseBrief {
    pub id: String,
    pub rev: u32,
    pub kind: String,
    pub title: String,
    pub party: String,
    pub status: CaseStatus,
    pub status_changed_at: DateTime<Utc>,
    pub status_changed_by: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
    pub reference: Option<String>,
    pub records: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgreementInForce {
    pub case: CaseBrief,
    /// The newest records of the agreement (at most five).
    pub key_documents: Vec<RecordBrief>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RelatedParty {
    pub id: String,
    pub name: String,
    pub kind: PartyKind,
    /// The relation, read from the party in the file: `works-for`, `subsidiary-of`, or
    /// the inverse `has-contact`, `parent-of`.
    pub relation: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Timeline {
    pub items: Vec<RecordBrief>,
    pub total: usize,
    pub page: usize,
    pub per_page: usize,
}

/// A legal hold as the party file names it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HoldNote {
    pub id: String,
    pub name: String,
    pub reason: String,
    pub placed_at: DateTime<Utc>,
}

/// Everything a clerk sees when opening a party (the Kundenakte).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PartyFile {
    pub party: PartyBrief,
    /// Parties merged into this one; their records are part of this file.
    pub merged_from: Vec<String>,
    pub today: NaiveDate,
    pub agreements_in_force: Vec<AgreementInForce>,
    pub open_cases: Vec<CaseBrief>,
    /// Emails (whatever their class), letters, notes: newest first, paged.
    pub communication: Timeline,
    /// Everything else linked to the party (contracts, complaints, reports, …) that is
    /// neither communication nor a transaction: the newest 50, and how many in all.
    pub other_documents: Timeline,
    /// Active legal holds placed on this party (filled by the API).
    pub holds: Vec<HoldNote>,
    /// Orders, invoices, credit notes … by year, newest first.
    pub transactions_by_year: BTreeMap<i32, Vec<RecordBrief>>,
    /// How many transaction documents each year has (all of them, also when
    /// `per_year` shortened the lists).
    pub transactions_per_year: BTreeMap<i32, usize>,
    pub counts_by_class: BTreeMap<String, usize>,
    pub records_total: usize,
    pub related: Vec<RelatedParty>,
}

#[derive(Debug, Clone, Default)]
pub struct PartyFilter {
    pub role: Option<String>,
    pub name_prefix: Option<String>,
    /// `vat:DE…`, `customer:4711`, `supplier:…`, `email:…`, `domain:…`, or any value.
    pub identifier: Option<String>,
    pub include_merged: bool,
    pub limit: usize,
}

/// What contact matching found for a piece of evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Match {
    pub evidence: String,
    pub parties: Vec<String>,
    pub reason: String,
}

//! What the pages read from the API's answers: only the fields they show (serde skips
//! the rest, so the API may grow without breaking a page).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use crate::party::{Address, PartyKind, RoleEntry};

#[derive(Debug, Deserialize)]
pub struct Link {
    pub party: String,
    pub role: String,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SearchAnswer {
    pub total: u64,
    pub hits: Vec<Hit>,
    #[serde(default)]
    pub facets: Option<BTreeMap<String, BTreeMap<String, u64>>>,
}

#[derive(Debug, Deserialize)]
pub struct Hit {
    pub id: String,
    pub title: String,
    pub class: String,
    pub date: NaiveDate,
    pub media_type: String,
    #[serde(default)]
    pub parties: Vec<Link>,
    #[serde(default)]
    pub snippet: Option<String>,
    #[serde(default)]
    pub title_html: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PartyBrief {
    pub id: String,
    #[serde(default)]
    pub merged_into: Option<String>,
    #[serde(flatten)]
    pub data: PartyInfo,
}

/// A party's data as the API shows it (the fields the pages use).
#[derive(Debug, Deserialize)]
pub struct PartyInfo {
    pub kind: PartyKind,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub addresses: Vec<Address>,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub phones: Vec<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub vat_id: Option<String>,
    #[serde(default)]
    pub register_number: Option<String>,
    #[serde(default)]
    pub identifiers: BTreeMap<String, String>,
    #[serde(default)]
    pub roles: Vec<RoleEntry>,
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RecordBrief {
    pub id: String,
    pub class: String,
    pub title: String,
    pub date: NaiveDate,
    #[serde(default)]
    pub variant_of: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CaseBrief {
    pub id: String,
    pub kind: String,
    pub title: String,
    #[serde(default)]
    pub valid_until: Option<NaiveDate>,
    #[serde(default)]
    pub records: u64,
}

#[derive(Debug, Deserialize)]
pub struct Agreement {
    pub case: CaseBrief,
    #[serde(default)]
    pub key_documents: Vec<RecordBrief>,
}

#[derive(Debug, Deserialize)]
pub struct Related {
    pub id: String,
    pub name: String,
    pub relation: String,
}

#[derive(Debug, Deserialize)]
pub struct Timeline {
    pub items: Vec<RecordBrief>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

#[derive(Debug, Deserialize)]
pub struct HoldNote {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
pub struct PartyFile {
    pub party: PartyBrief,
    #[serde(default)]
    pub merged_from: Vec<String>,
    #[serde(default)]
    pub agreements_in_force: Vec<Agreement>,
    #[serde(default)]
    pub open_cases: Vec<CaseBrief>,
    pub communication: Timeline,
    #[serde(default)]
    pub other_documents: Option<Timeline>,
    #[serde(default)]
    pub holds: Vec<HoldNote>,
    #[serde(default)]
    pub transactions_by_year: BTreeMap<i32, Vec<RecordBrief>>,
    #[serde(default)]
    pub transactions_per_year: BTreeMap<i32, usize>,
    #[serde(default)]
    pub counts_by_class: BTreeMap<String, u64>,
    pub records_total: u64,
    #[serde(default)]
    pub related: Vec<Related>,
}

#[derive(Debug, Deserialize)]
pub struct ContentView {
    #[serde(default)]
    pub file_name: Option<String>,
    pub media_type: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Deserialize)]
pub struct RetentionView {
    pub legal_basis: String,
    pub period_years: u32,
    pub retain_until: NaiveDate,
    pub start: NaiveDate,
}

#[derive(Debug, Deserialize)]
pub struct RecordView {
    pub id: String,
    pub rev: u32,
    pub class: String,
    pub title: String,
    #[serde(default)]
    pub document_date: Option<NaiveDate>,
    pub archived_at: DateTime<Utc>,
    pub revised_at: DateTime<Utc>,
    pub actor: String,
    pub change: String,
    #[serde(default)]
    pub reason: Option<String>,
    pub content: ContentView,
    #[serde(default)]
    pub parties: Vec<Link>,
    pub retention: RetentionView,
    #[serde(default)]
    pub holds: Vec<String>,
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
pub struct Archived {
    pub id: String,
    pub class: String,
    #[serde(default)]
    pub duplicate: bool,
    #[serde(default)]
    pub extraction: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ImportSummary {
    pub archived: u64,
    pub duplicates: u64,
    pub failed: u64,
    #[serde(default)]
    pub failures: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct ImportJob {
    pub id: String,
    pub state: String,
    #[serde(default)]
    pub items: u64,
    #[serde(default)]
    pub bytes_done: u64,
    #[serde(default)]
    pub bytes_total: u64,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub summary: Option<ImportSummary>,
}

#[derive(Debug, Deserialize)]
pub struct HoldView {
    pub id: String,
    pub name: String,
    pub reason: String,
    pub active: bool,
    pub placed_at: DateTime<Utc>,
    pub placed_by: String,
    pub scope: serde_json::Value,
}

#[derive(Debug, Deserialize)]
pub struct PolicyRow {
    pub class: String,
    pub legal_basis: String,
    pub records: u64,
    #[serde(default)]
    pub expiring_90_days: u64,
    #[serde(default)]
    pub eligible: u64,
    #[serde(default)]
    pub on_hold: u64,
    #[serde(default)]
    pub disposed: u64,
}

#[derive(Debug, Deserialize)]
pub struct DisposalRow {
    pub id: String,
    pub requested_by: String,
    pub records: u64,
    pub state: String,
}

#[derive(Debug, Deserialize)]
pub struct Report {
    pub records_total: u64,
    pub expiring_90_days: u64,
    pub eligible_now: u64,
    pub on_hold: u64,
    pub disposed: u64,
    #[serde(default)]
    pub last_verify: Option<String>,
    #[serde(default)]
    pub by_policy: Vec<PolicyRow>,
    #[serde(default)]
    pub disposals: Vec<DisposalRow>,
}

#[derive(Debug, Deserialize)]
pub struct Execution {
    #[serde(default)]
    pub error: Option<String>,
    pub records_done: u64,
    pub records_total: u64,
    #[serde(default)]
    pub running: bool,
}

#[derive(Debug, Deserialize)]
pub struct DisposalView {
    pub id: String,
    pub reason: String,
    pub requested_at: DateTime<Utc>,
    pub requested_by: String,
    #[serde(default)]
    pub approved_by: Option<String>,
    pub state: String,
    #[serde(default)]
    pub records: Vec<String>,
    #[serde(default)]
    pub execution: Option<Execution>,
}

#[derive(Debug, Deserialize)]
pub struct Subject {
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Deserialize)]
pub struct Entry {
    pub seq: u64,
    pub time: DateTime<Utc>,
    pub action: String,
    pub actor: String,
    #[serde(default)]
    pub detail: Option<String>,
    pub hash: String,
    #[serde(default)]
    pub subjects: Vec<Subject>,
}

#[derive(Debug, Deserialize)]
pub struct JournalPage {
    pub entries: Vec<Entry>,
    pub head: u64,
    pub next_since: u64,
}

#[derive(Debug, Deserialize)]
pub struct VerifyReport {
    pub objects: u64,
    pub records: u64,
    pub journal_entries: u64,
    #[serde(default)]
    pub problems: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct VerifyJob {
    pub id: String,
    pub state: String,
    pub started_at: DateTime<Utc>,
    pub started_by: String,
    #[serde(default)]
    pub bytes_done: u64,
    #[serde(default)]
    pub bytes_total: u64,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub report: Option<VerifyReport>,
}

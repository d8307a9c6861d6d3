//! The retention audit report: what is kept under which policy, what expires soon, what
//! is eligible, what is held, what was disposed (with certificates), and when the store
//! was last verified. Read-only by construction: it computes, it never writes.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;

use super::hold::{Held, HoldRevision, HoldScope, Holds};
use super::{DisposalRevision, Disposals};
use crate::archive::Archive;
use crate::catalog::{Catalog, RecordBrief};
use crate::error::Result;
use crate::store::keys::ObjectKind;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PolicyRow {
    pub class: String,
    pub policy: String,
    pub legal_basis: String,
    pub catalogue: String,
    pub records: usize,
    /// Of them: still retained, but only for 90 days or less.
    pub expiring_90_days: usize,
    /// Past retention and under no hold.
    pub eligible: usize,
    pub on_hold: usize,
    pub disposed: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecordRow {
    pub id: String,
    pub class: String,
    pub policy: String,
    pub retain_until: NaiveDate,
    /// `retained`, `eligible`, `held`, `disposed`, `awaiting-event`
    pub state: String,
    pub holds: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HoldRow {
    pub id: String,
    pub name: String,
    pub active: bool,
    pub records: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DisposalRow {
    pub id: String,
    pub state: String,
    pub requested_by: String,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub records: usize,
    pub certificate: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RetentionReport {
    pub today: NaiveDate,
    pub catalogue: String,
    pub records_total: usize,
    pub by_policy: Vec<PolicyRow>,
    pub expiring_30_days: usize,
    pub expiring_90_days: usize,
    pub expiring_365_days: usize,
    pub eligible_now: usize,
    pub on_hold: usize,
    pub awaiting_event: usize,
    /// Records whose class is not in the catalogue (kept by the default policy).
    pub without_policy: usize,
    pub disposed: usize,
    pub holds: Vec<HoldRow>,
    pub disposals: Vec<DisposalRow>,
    /// The last verification (journal `audit.verify`), if any: time and result.
    pub last_verify: Option<String>,
    pub records: Vec<RecordRow>,
}

async fn latest_of(archive: &Archive, kind: ObjectKind) -> Result<Vec<object_store::path::Path>> {
    crate::audit::latest_keys(archive.journal(), kind).await
}

/// Counts and rows of the report, added up record by record.
pub struct Tally {
    today: NaiveDate,
    classes: std::collections::HashSet<String>,
    holds: Vec<HoldRevision>,
    /// Per party-scoped hold's party: it and the parties merged into it.
    families: HashMap<String, HashSet<String>>,
    with_rows: bool,
    records: usize,
    hold_counts: BTreeMap<String, usize>,
    rows: Vec<RecordRow>,
    /// Where rows go as they are made, instead of `rows` (a streamed report).
    sink: Option<RowSink>,
    /// Per class, per policy.
    by_policy: BTreeMap<String, BTreeMap<String, PolicyRow>>,
    e30: usize,
    e90: usize,
    e365: usize,
    eligible: usize,
    held: usize,
    awaiting: usize,
    without: usize,
    disposed: usize,
}

impl Tally {
    fn add(&mut self, r: RecordBrief) {
        let today = self.today;
        self.records += 1;
        let ret = &r.retention;
        let names: Vec<String> = if ret.disposed {
            vec![]
        } else {
            let held = Held {
                id: &r.id,
                cases: &r.cases,
                class: &r.class,
                date: r.date,
            };
            let links = |party: &str| {
                self.families
                    .get(party)
                    .is_some_and(|f| r.parties.iter().any(|l| f.contains(&l.party)))
            };
            self.holds
                .iter()
                .filter(|h| h.covers_parts(&held, &links))
                .map(|h| h.name.clone())
                .collect()
        };
        for h in &self.holds {
            if names.contains(&h.name) {
                *self.hold_counts.entry(h.id.clone()).or_default() += 1;
            }
        }
        let until = ret.retain_until;
        let state = if ret.disposed {
            self.disposed += 1;
            "disposed"
        } else if !names.is_empty() {
            self.held += 1;
            "held"
        } else if until < today {
            self.eligible += 1;
            "eligible"
        } else if ret.awaiting_event {
            self.awaiting += 1;
            "awaiting-event"
        } else {
            "retained"
        };
        let mut soon = false;
        if !ret.disposed && until >= today {
            let left = |d: u64| {
                today
                    .checked_add_days(Days::new(d))
                    .is_some_and(|x| until <= x)
            };
            self.e30 += usize::from(left(30));
            soon = left(90);
            self.e90 += usize::from(soon);
            self.e365 += usize::from(left(365));
        }
        if !self.classes.contains(&r.class) {
            self.without += 1;
        }
        // Looked up by borrowed names: a string is copied once per class and policy.
        if !self
            .by_policy
            .get(&r.class)
            .is_some_and(|p| p.contains_key(&ret.policy))
        {
            self.by_policy.entry(r.class.clone()).or_default().insert(
                ret.policy.clone(),
                PolicyRow {
                    class: r.class.clone(),
                    policy: ret.policy.clone(),
                    legal_basis: ret.legal_basis.clone(),
                    catalogue: ret.catalogue.clone(),
                    records: 0,
                    expiring_90_days: 0,
                    eligible: 0,
                    on_hold: 0,
                    disposed: 0,
                },
            );
        }
        let Some(row) = self
            .by_policy
            .get_mut(&r.class)
            .and_then(|p| p.get_mut(&ret.policy))
        else {
            return;
        };
        row.records += 1;
        row.expiring_90_days += usize::from(soon);
        match state {
            "eligible" => row.eligible += 1,
            "held" => row.on_hold += 1,
            "disposed" => row.disposed += 1,
            _ => {}
        }
        if self.with_rows {
            let row = RecordRow {
                policy: ret.policy.clone(),
                retain_until: until,
                state: state.into(),
                holds: names,
                id: r.id,
                class: r.class,
            };
            match &mut self.sink {
                Some(sink) => sink.send(&row),
                None => self.rows.push(row),
            }
        }
    }
}

/// The row formats a report streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// The JSON report, its `records` first.
    Json,
    /// One CSV line per record.
    Csv,
}

/// Chunks of a streamed report, for a response body.
type Chunks = tokio::sync::mpsc::Sender<std::result::Result<bytes::Bytes, std::io::Error>>;

/// The columns of the report's CSV.
const CSV_COLUMNS: [&str; 6] = ["id", "class", "policy", "retain_until", "state", "holds"];

/// Rows written into a channel as they are made, a chunk of several rows at a time.
struct RowSink {
    format: RowFormat,
    tx: Chunks,
    buf: Vec<u8>,
    rows: usize,
    /// The reader went away: the rest is not written.
    gone: bool,
}

impl RowSink {
    const CHUNK: usize = 64 << 10;

    fn send(&mut self, row: &RecordRow) {
        if self.gone {
            return;
        }
        match self.format {
            RowFormat::Json => {
                if self.rows > 0 {
                    self.buf.push(b',');
                }
                if serde_json::to_writer(&mut self.buf, row).is_err() {
                    self.gone = true;
                }
            }
            RowFormat::Csv => {
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .buffer_capacity(256)
                    .from_writer(&mut self.buf);
                let _ = w.write_record(csv_fields(row));
            }
        }
        self.rows += 1;
        if self.buf.len() >= Self::CHUNK {
            self.flush();
        }
    }

    /// Sends what is buffered (from the blocking thread the catalog is read on; the
    /// runtime's threads must not block).
    fn flush(&mut self) {
        if self.buf.is_empty() || self.gone {
            return;
        }
        let chunk = bytes::Bytes::from(std::mem::take(&mut self.buf));
        self.gone = self.tx.blocking_send(Ok(chunk)).is_err();
    }
}

/// The report, from the catalog's record summaries (one pass in the catalog's order,
/// memory bounded by its page cache, plus the rows when `with_rows`), the holds, the
/// disposals and the journal.
pub async fn build(
    archive: &Archive,
    catalog: &Catalog,
    holds: &Holds,
    disposals: &Disposals,
    with_rows: bool,
) -> Result<RetentionReport> {
    let tally = prepare(archive, catalog, holds, disposals, with_rows).await?;
    let t = catalog.fold_summaries(tally, |t, r| t.add(r)).await?;
    finish(archive, t).await
}

/// Streams the report in one pass with memory independent of the number of records:
/// its rows as they are counted, then (JSON) the counts, as chunks from the channel
/// returned. `tally` comes from [`prepare`] (whose errors come before anything is sent).
/// An error on the way is sent as the last chunk (the response is cut short).
pub fn spawn_stream(
    archive: Archive,
    catalog: std::sync::Arc<Catalog>,
    tally: Tally,
    format: RowFormat,
) -> tokio::sync::mpsc::Receiver<std::result::Result<bytes::Bytes, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move { stream(&archive, &catalog, tally, format, tx).await });
    rx
}

async fn stream(
    archive: &Archive,
    catalog: &Catalog,
    mut tally: Tally,
    format: RowFormat,
    tx: Chunks,
) {
    let head = match format {
        RowFormat::Json => "{\"records\":[".to_string(),
        RowFormat::Csv => format!("{}\n", CSV_COLUMNS.join(",")),
    };
    tally.with_rows = true;
    tally.sink = Some(RowSink {
        format,
        tx: tx.clone(),
        buf: head.into_bytes(),
        rows: 0,
        gone: false,
    });
    let mut done = catalog.fold_summaries(tally, |t, r| t.add(r)).await;
    // The rows not yet sent (here, on the runtime: no blocking send).
    if let Ok(t) = &mut done
        && let Some(sink) = t.sink.take()
        && !sink.gone
        && !sink.buf.is_empty()
        && tx.send(Ok(bytes::Bytes::from(sink.buf))).await.is_err()
    {
        return;
    }
    let tail = match (done, format) {
        (Ok(_), RowFormat::Csv) => return,
        (Ok(t), RowFormat::Json) => finish(archive, t).await.and_then(|r| {
            // `{…,"records":[]}` (its rows are sent, its last field is empty) → `],…}`:
            // the counts follow the rows in the same object, in the report's order.
            let all = serde_json::to_string(&r)
                .map_err(|e| crate::error::Error::Internal(e.to_string()))?;
            all.strip_prefix('{')
                .and_then(|a| a.strip_suffix(",\"records\":[]}"))
                .map(|counts| format!("],{counts}}}"))
                .ok_or_else(|| crate::error::Error::Internal("report without its rows".into()))
        }),
        (Err(e), _) => Err(e),
    };
    let chunk = tail
        .map(bytes::Bytes::from)
        .map_err(|e| std::io::Error::other(e.to_string()));
    let _ = tx.send(chunk).await;
}

/// What a report needs before its pass over the records: the day, the holds (with the
/// families of party holds), the catalog caught up with the journal.
pub async fn prepare(
    archive: &Archive,
    catalog: &Catalog,
    holds: &Holds,
    disposals: &Disposals,
    with_rows: bool,
) -> Result<Tally> {
    let today = disposals
        .trusted_today()
        .await
        .unwrap_or(archive.clock().now().date_naive());
    // Everything committed so far (a disposal's tombstones, another node's records).
    catalog.catch_up(archive.journal()).await?;
    let cat = archive.catalogue();
    let all_holds = holds.all().await?;
    let mut families = HashMap::new();
    for h in &all_holds {
        if let HoldScope::Party { id } = &h.scope
            && h.active
        {
            let family: HashSet<String> = catalog.merged_family(id).await.into_iter().collect();
            families.insert(id.clone(), family);
        }
    }
    let tally = Tally {
        today,
        classes: cat.classes.keys().cloned().collect(),
        holds: all_holds,
        families,
        with_rows,
        records: 0,
        hold_counts: BTreeMap::new(),
        rows: Vec::new(),
        sink: None,
        by_policy: BTreeMap::new(),
        e30: 0,
        e90: 0,
        e365: 0,
        eligible: 0,
        held: 0,
        awaiting: 0,
        without: 0,
        disposed: 0,
    };
    Ok(tally)
}

/// The report from a finished pass.
async fn finish(archive: &Archive, t: Tally) -> Result<RetentionReport> {
    let store = archive.store().clone();
    let cat = archive.catalogue();
    let today = t.today;
    let mut disposal_rows = Vec::new();
    for k in latest_of(archive, ObjectKind::Disposal).await? {
        let d = DisposalRevision::decode(k.as_ref(), &store.get(&k).await?)?;
        disposal_rows.push(DisposalRow {
            certificate: format!("/v1/disposals/{}", d.id),
            id: d.id,
            state: format!("{:?}", d.state).to_lowercase(),
            requested_by: d.requested_by,
            approved_by: d.approved_by,
            approved_at: d.approved_at,
            records: d.records.len(),
        });
    }
    let last_verify = archive.journal().last_verify().await?.map(|e| {
        format!(
            "{} by {}: {}",
            e.time.to_rfc3339(),
            e.actor,
            e.detail.clone().unwrap_or_default()
        )
    });
    Ok(RetentionReport {
        today,
        catalogue: cat.version.clone(),
        records_total: t.records,
        by_policy: t
            .by_policy
            .into_values()
            .flat_map(|p| p.into_values())
            .collect(),
        expiring_30_days: t.e30,
        expiring_90_days: t.e90,
        expiring_365_days: t.e365,
        eligible_now: t.eligible,
        on_hold: t.held,
        awaiting_event: t.awaiting,
        without_policy: t.without,
        disposed: t.disposed,
        holds: t
            .holds
            .iter()
            .map(|h| HoldRow {
                id: h.id.clone(),
                name: h.name.clone(),
                active: h.active,
                records: t.hold_counts.get(&h.id).copied().unwrap_or(0),
            })
            .collect(),
        disposals: disposal_rows,
        last_verify,
        records: t.rows,
    })
}

/// One CSV row per record.
pub fn to_csv(r: &RetentionReport) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(CSV_COLUMNS);
    for row in &r.records {
        let _ = w.write_record(csv_fields(row));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

fn csv_fields(row: &RecordRow) -> [String; 6] {
    [
        row.id.clone(),
        row.class.clone(),
        row.policy.clone(),
        row.retain_until.to_string(),
        row.state.clone(),
        row.holds.join("; "),
    ]
}

pub fn to_html(r: &RetentionReport) -> String {
    fn esc(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }
    let mut s = String::new();
    s.push_str("<!doctype html>\n<html lang=\"de\"><head><meta charset=\"utf-8\"><title>Aufbewahrungsbericht / Retention report</title>\n<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #999;padding:3px 8px;text-align:left}</style></head><body>\n");
    s.push_str(&format!("<h1>Aufbewahrungsbericht / Retention report</h1>\n<p>As of {} — catalogue <code>{}</code> — {} records.</p>\n", r.today, esc(&r.catalogue), r.records_total));
    s.push_str(&format!(
        "<table><tr><th>Expiring ≤ 30 days</th><th>≤ 90 days</th><th>≤ 365 days</th><th>Eligible now</th><th>On hold</th><th>Awaiting event</th><th>Without policy</th><th>Disposed</th></tr><tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>\n",
        r.expiring_30_days, r.expiring_90_days, r.expiring_365_days, r.eligible_now, r.on_hold, r.awaiting_event, r.without_policy, r.disposed
    ));
    s.push_str("<h2>Records by class and policy</h2><table><tr><th>Class</th><th>Policy</th><th>Legal basis</th><th>Catalogue</th><th>Records</th></tr>\n");
    for p in &r.by_policy {
        s.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&p.class),
            esc(&p.policy),
            esc(&p.legal_basis),
            esc(&p.catalogue),
            p.records
        ));
    }
    s.push_str("</table><h2>Legal holds</h2><table><tr><th>Hold</th><th>Active</th><th>Records</th></tr>\n");
    for h in &r.holds {
        s.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&h.name),
            h.active,
            h.records
        ));
    }
    s.push_str("</table><h2>Disposals</h2><table><tr><th>Request</th><th>State</th><th>Requested by</th><th>Approved by</th><th>Records</th></tr>\n");
    for d in &r.disposals {
        s.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            esc(&d.id),
            d.state,
            esc(&d.requested_by),
            esc(d.approved_by.as_deref().unwrap_or("-")),
            d.records
        ));
    }
    s.push_str(&format!(
        "</table><p>Last verification: {}</p>\n</body></html>\n",
        esc(r.last_verify.as_deref().unwrap_or("never"))
    ));
    s
}

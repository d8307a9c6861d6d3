//! The retention audit report: what is kept under which policy, what expires soon, what
//! is eligible, what is held, what was disposed (with certificates), and when the store
//! was last verified. Read-only by construction: it computes, it never writes.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::hold::Holds;
use super::{DisposalRevision, Disposals};
use crate::archive::Archive;
use crate::error::Result;
use crate::record::RecordRevision;
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

pub async fn build(
    archive: &Archive,
    holds: &Holds,
    disposals: &Disposals,
) -> Result<RetentionReport> {
    let today = disposals
        .trusted_today()
        .await
        .unwrap_or(archive.clock().now().date_naive());
    let cat = archive.catalogue();
    let keys = latest_of(archive, ObjectKind::Record).await?;
    let store = archive.store().clone();
    let records: Vec<RecordRevision> = futures::stream::iter(keys)
        .map(|k| {
            let store = store.clone();
            async move { RecordRevision::decode(k.as_ref(), &store.get(&k).await?) }
        })
        .buffered(32)
        .try_collect()
        .await?;
    let all_holds = holds.all().await?;
    let mut hold_counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut by_policy: BTreeMap<(String, String), PolicyRow> = BTreeMap::new();
    let (
        mut e30,
        mut e90,
        mut e365,
        mut eligible,
        mut held,
        mut awaiting,
        mut without,
        mut disposed,
    ) = (0, 0, 0, 0, 0, 0, 0, 0);
    for r in &records {
        let names = if r.tombstone.is_none() {
            disposals.held_by(&all_holds, r).await?
        } else {
            vec![]
        };
        for h in &all_holds {
            if names.contains(&h.name) {
                *hold_counts.entry(h.id.clone()).or_default() += 1;
            }
        }
        let until = r.retention.retain_until;
        let state = if r.tombstone.is_some() {
            disposed += 1;
            "disposed"
        } else if !names.is_empty() {
            held += 1;
            "held"
        } else if until < today {
            eligible += 1;
            "eligible"
        } else if r.retention.awaiting_event.is_some() {
            awaiting += 1;
            "awaiting-event"
        } else {
            "retained"
        };
        let mut soon = false;
        if r.tombstone.is_none() && until >= today {
            let left = |d: u64| {
                today
                    .checked_add_days(Days::new(d))
                    .is_some_and(|x| until <= x)
            };
            e30 += usize::from(left(30));
            soon = left(90);
            e90 += usize::from(soon);
            e365 += usize::from(left(365));
        }
        if !cat.classes.contains_key(&r.class) {
            without += 1;
        }
        let row = by_policy
            .entry((r.class.clone(), r.retention.policy.clone()))
            .or_insert_with(|| PolicyRow {
                class: r.class.clone(),
                policy: r.retention.policy.clone(),
                legal_basis: r.retention.legal_basis.clone(),
                catalogue: r.retention.catalogue.clone(),
                records: 0,
                expiring_90_days: 0,
                eligible: 0,
                on_hold: 0,
                disposed: 0,
            });
        row.records += 1;
        row.expiring_90_days += usize::from(soon);
        match state {
            "eligible" => row.eligible += 1,
            "held" => row.on_hold += 1,
            "disposed" => row.disposed += 1,
            _ => {}
        }
        rows.push(RecordRow {
            id: r.id.clone(),
            class: r.class.clone(),
            policy: r.retention.policy.clone(),
            retain_until: until,
            state: state.into(),
            holds: names,
        });
    }
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
    let entries = archive.journal().entries(0, usize::MAX).await?;
    let last_verify = entries
        .iter()
        .rev()
        .find(|e| e.action == "audit.verify")
        .map(|e| {
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
        records_total: records.len(),
        by_policy: by_policy.into_values().collect(),
        expiring_30_days: e30,
        expiring_90_days: e90,
        expiring_365_days: e365,
        eligible_now: eligible,
        on_hold: held,
        awaiting_event: awaiting,
        without_policy: without,
        disposed,
        holds: all_holds
            .iter()
            .map(|h| HoldRow {
                id: h.id.clone(),
                name: h.name.clone(),
                active: h.active,
                records: hold_counts.get(&h.id).copied().unwrap_or(0),
            })
            .collect(),
        disposals: disposal_rows,
        last_verify,
        records: rows,
    })
}

/// One CSV row per record.
pub fn to_csv(r: &RetentionReport) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(["id", "class", "policy", "retain_until", "state", "holds"]);
    for row in &r.records {
        let _ = w.write_record([
            row.id.as_str(),
            &row.class,
            &row.policy,
            &row.retain_until.to_string(),
            &row.state,
            &row.holds.join("; "),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
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

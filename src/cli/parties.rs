//! `akte party …`, `akte case …`, `akte note`, `akte link`.

use super::json_line;
use std::path::PathBuf;

use anyhow::Context;
use chrono::NaiveDate;
use clap::Subcommand;

use super::parse_date;
use crate::archive::LinkChange;
use crate::case::{CaseChange, CaseStatus, NewCase};
use crate::catalog::{PartyFile, PartyFilter};
use crate::ingest::NoteInput;
use crate::ingest::parties as import;
use crate::party::{PartyData, PartyKind, RoleEntry};
use crate::record::PartyLink;
use crate::service::Services;

#[derive(Debug, Subcommand)]
pub enum PartyCommand {
    /// Create a party.
    Create {
        #[arg(long)]
        name: String,
        /// organisation or person
        #[arg(long, default_value = "organisation")]
        kind: String,
        /// A role, optionally with its number: `customer:4711`, `supplier`, `prospect`.
        #[arg(long = "role")]
        roles: Vec<String>,
        #[arg(long = "email")]
        emails: Vec<String>,
        #[arg(long = "phone")]
        phones: Vec<String>,
        #[arg(long = "domain")]
        domains: Vec<String>,
        #[arg(long)]
        vat_id: Option<String>,
        /// `works-for:PARTY` or `subsidiary-of:PARTY`.
        #[arg(long = "relation")]
        relations: Vec<String>,
    },
    /// Open a party's file: master data, roles, agreements in force, open cases,
    /// communication, transactions by year.
    Show {
        id: String,
        /// Page of the communication timeline, from 1 (50 per page).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        page: u32,
        /// The day for "in force" (default today).
        #[arg(long, value_parser = parse_date)]
        date: Option<NaiveDate>,
    },
    /// List parties by role, name prefix or identifier.
    List {
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        identifier: Option<String>,
    },
    /// Every revision of a party.
    History { id: String },
    /// Import parties from an ERP/CRM export (CSV or JSON).
    Import {
        file: PathBuf,
        /// Column mapping, `Kundennummer:customer_number,Firma:name`.
        #[arg(long)]
        map: Option<String>,
    },
    /// Merge a party into another.
    Merge {
        absorbed: String,
        #[arg(long)]
        into: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Erase a party's personal data once no retention duty or hold needs them (GDPR).
    Erase {
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Add (or replace) a role of a party.
    Role {
        id: String,
        role: String,
        #[arg(long)]
        number: Option<String>,
        #[arg(long, value_parser = parse_date)]
        since: Option<NaiveDate>,
        #[arg(long, value_parser = parse_date)]
        until: Option<NaiveDate>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CaseCommand {
    /// Open a case for a party.
    Create {
        #[arg(long)]
        party: String,
        /// complaint, service-case, order, project, special-agreement, framework-agreement, …
        #[arg(long)]
        kind: String,
        #[arg(long)]
        title: String,
        #[arg(long, value_parser = parse_date)]
        from: Option<NaiveDate>,
        #[arg(long, value_parser = parse_date)]
        until: Option<NaiveDate>,
        #[arg(long)]
        reference: Option<String>,
    },
    /// Close a case.
    Close {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reopen a case.
    Reopen {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Show a case.
    Show { id: String },
}

fn parse_kind(k: &str) -> anyhow::Result<PartyKind> {
    match k {
        "organisation" | "organization" => Ok(PartyKind::Organisation),
        "person" => Ok(PartyKind::Person),
        _ => anyhow::bail!("--kind must be organisation or person, not {k:?}"),
    }
}

pub async fn party(
    svc: &Services,
    actor: &str,
    json: bool,
    cmd: PartyCommand,
) -> anyhow::Result<()> {
    match cmd {
        PartyCommand::Create {
            name,
            kind,
            roles,
            emails,
            phones,
            domains,
            vat_id,
            relations,
        } => {
            let data = PartyData {
                kind: parse_kind(&kind)?,
                name,
                addresses: vec![],
                emails,
                phones,
                domains,
                vat_id,
                register_number: None,
                identifiers: Default::default(),
                roles: roles
                    .iter()
                    .map(|r| {
                        let (role, number) = match r.split_once(':') {
                            Some((a, b)) => (a.to_string(), Some(b.to_string())),
                            None => (r.clone(), None),
                        };
                        RoleEntry {
                            role,
                            number,
                            since: None,
                            until: None,
                            notes: None,
                        }
                    })
                    .collect(),
                relations: relations
                    .iter()
                    .map(|r| {
                        let (kind, party) =
                            r.split_once(':').context("--relation must be KIND:PARTY")?;
                        Ok(crate::party::Relation {
                            kind: kind.into(),
                            party: party.into(),
                        })
                    })
                    .collect::<anyhow::Result<_>>()?,
                notes: None,
            };
            let p = svc
                .parties
                .create(actor, crate::party::normalise(data))
                .await?;
            if json {
                json_line(&crate::catalog::PartyBrief::from(&p))?;
            } else {
                outln!("{}  {}", p.revision.id, p.data.name);
            }
        }
        PartyCommand::Show { id, page, date } => {
            svc.load().await?;
            let today = date.unwrap_or(svc.archive.clock().now().date_naive());
            let mut file = svc
                .catalog
                .file(&id, today, page as usize, 50)
                .await
                .with_context(|| format!("unknown party {id}"))?;
            file.holds = svc.party_holds(&file.party.id).await?;
            if json {
                json_line(&file)?;
            } else {
                print_file(&file);
            }
        }
        PartyCommand::List {
            role,
            name,
            identifier,
        } => {
            svc.load().await?;
            let list = svc
                .catalog
                .list(&PartyFilter {
                    role,
                    name_prefix: name,
                    identifier,
                    include_merged: false,
                    limit: 1000,
                })
                .await;
            for p in list {
                if json {
                    json_line(&p)?;
                } else {
                    let roles: Vec<String> = p
                        .data
                        .roles
                        .iter()
                        .map(|r| match &r.number {
                            Some(n) => format!("{}:{n}", r.role),
                            None => r.role.clone(),
                        })
                        .collect();
                    outln!("{}  {:<40} {}", p.id, p.data.name, roles.join(" "));
                }
            }
        }
        PartyCommand::History { id } => {
            for p in svc.parties.history(&id).await? {
                if json {
                    json_line(&crate::catalog::PartyBrief::from(&p))?;
                } else {
                    outln!(
                        "rev {}  {}  {}  {}",
                        p.revision.rev,
                        p.revision.revised_at.format("%Y-%m-%d %H:%M:%S"),
                        p.revision.actor,
                        p.revision.change
                    );
                }
            }
        }
        PartyCommand::Import { file, map } => {
            svc.load().await?;
            let bytes = std::fs::read(&file).with_context(|| file.display().to_string())?;
            let mapping = import::parse_mapping(map.as_deref()).context("--map")?;
            let is_json = file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"));
            let (rows, errors) = if is_json {
                import::parse_json(&bytes)?
            } else {
                import::parse_csv(&bytes, &mapping)
            };
            let report = import::import_rows(&svc.parties, &svc.catalog, actor, rows, errors).await;
            if json {
                json_line(&report)?;
            } else {
                for e in &report.errors {
                    eprintln!("{}:{}: {}", file.display(), e.line, e.reason);
                }
                for u in &report.updated {
                    outln!("line {}: updated {} ({})", u.line, u.party, u.detail);
                }
                outln!(
                    "{} rows: {} created, {} updated, {} unchanged, {} errors",
                    report.rows,
                    report.created.len(),
                    report.updated.len(),
                    report.unchanged.len(),
                    report.errors.len()
                );
            }
            if !report.errors.is_empty() {
                anyhow::bail!(
                    "{} rows could not be imported (see above); the others were",
                    report.errors.len()
                );
            }
        }
        PartyCommand::Merge {
            absorbed,
            into,
            reason,
        } => {
            let p = svc.parties.merge(actor, &absorbed, &into, reason).await?;
            if json {
                json_line(&crate::catalog::PartyBrief::from(&p))?;
            } else {
                outln!("{absorbed} merged into {} ({})", p.revision.id, p.data.name);
            }
        }
        PartyCommand::Erase { id, reason } => {
            svc.load().await?;
            let p = svc.erase_party(actor, &id, &reason).await?;
            if json {
                json_line(&crate::catalog::PartyBrief::from(&p))?;
            } else {
                outln!(
                    "{}: personal data erased (key destroyed); rev {} keeps only non-personal facts",
                    p.revision.id,
                    p.revision.rev
                );
            }
        }
        PartyCommand::Role {
            id,
            role,
            number,
            since,
            until,
        } => {
            let cur = svc.parties.get(&id).await?;
            let mut data = cur.data.clone();
            data.roles.retain(|r| r.role != role);
            data.roles.push(RoleEntry {
                role,
                number,
                since,
                until,
                notes: None,
            });
            let p = svc
                .parties
                .update(
                    actor,
                    &id,
                    crate::party::normalise(data),
                    Some("role".into()),
                    Some(cur.revision.rev),
                )
                .await?;
            if json {
                json_line(&crate::catalog::PartyBrief::from(&p))?;
            } else {
                outln!(
                    "{} rev {}: {}",
                    p.revision.id,
                    p.revision.rev,
                    p.revision.change
                );
            }
        }
    }
    Ok(())
}

fn print_file(f: &PartyFile) {
    let p = &f.party;
    outln!("{}  ({:?})  {}", p.data.name, p.data.kind, p.id);
    if !f.merged_from.is_empty() {
        outln!("  merged from: {}", f.merged_from.join(", "));
    }
    for r in &p.data.roles {
        outln!(
            "  role {:<10} {}{}{}",
            r.role,
            r.number.as_deref().unwrap_or(""),
            r.since.map(|d| format!(" since {d}")).unwrap_or_default(),
            r.until.map(|d| format!(" until {d}")).unwrap_or_default()
        );
    }
    if let Some(v) = &p.data.vat_id {
        outln!("  VAT ID {v}");
    }
    if p.erased {
        outln!("  personal data erased (the party's key is destroyed)");
    }
    for a in &p.data.addresses {
        outln!("  address {}", a.one_line());
    }
    for ph in &p.data.phones {
        outln!("  phone {ph}");
    }
    for e in &p.data.emails {
        outln!("  email {e}");
    }
    for d in &p.data.domains {
        outln!("  domain {d}");
    }
    for h in &f.holds {
        outln!(
            "  LEGAL HOLD {} since {}: {}",
            h.name,
            h.placed_at.format("%Y-%m-%d"),
            h.reason
        );
    }
    outln!("Agreements in force on {}:", f.today);
    for a in &f.agreements_in_force {
        outln!(
            "  {} {} ({} – {})",
            a.case.kind,
            a.case.title,
            a.case.valid_from.map(|d| d.to_string()).unwrap_or_default(),
            a.case
                .valid_until
                .map(|d| d.to_string())
                .unwrap_or_default()
        );
        for d in &a.key_documents {
            outln!("      {} {} {}", d.date, d.class, d.title);
        }
    }
    outln!("Open cases:");
    for c in &f.open_cases {
        outln!("  {} {} ({} records)", c.kind, c.title, c.records);
    }
    outln!(
        "Communication ({} in all, newest first):",
        f.communication.total
    );
    for r in &f.communication.items {
        let variant = r
            .variant_of
            .as_ref()
            .map(|v| format!("  (same Message-ID as {v}, other bytes)"))
            .unwrap_or_default();
        let arrow = match r.direction.as_deref() {
            Some("in") => "← ",
            Some("out") => "→ ",
            _ => "",
        };
        outln!(
            "  {} {:<14} {arrow}{}  {}{variant}",
            r.date,
            r.class,
            r.title,
            r.id
        );
    }
    if f.communication.total > f.communication.page * f.communication.per_page {
        outln!(
            "  … page {} of {}: --page {} for more",
            f.communication.page,
            f.communication
                .total
                .div_ceil(f.communication.per_page.max(1)),
            f.communication.page + 1
        );
    }
    outln!("Transactions:");
    for (year, docs) in f.transactions_by_year.iter().rev() {
        let n = docs.len();
        outln!("  {year}: {n} document{}", if n == 1 { "" } else { "s" });
        for r in docs.iter().take(10) {
            outln!("    {} {:<14} {}  {}", r.date, r.class, r.title, r.id);
        }
        if n > 10 {
            outln!("    … and {} more", n - 10);
        }
    }
    outln!(
        "Other documents ({} in all, newest first):",
        f.other_documents.total
    );
    for r in &f.other_documents.items {
        outln!("  {} {:<14} {}  {}", r.date, r.class, r.title, r.id);
    }
    if f.records_total == 0 {
        outln!("Records: none");
    } else {
        let counts: Vec<String> = f
            .counts_by_class
            .iter()
            .map(|(c, n)| format!("{c} {n}"))
            .collect();
        outln!("Records: {} ({})", f.records_total, counts.join(", "));
    }
    for r in &f.related {
        outln!("Related: {} {} ({})", r.relation, r.name, r.id);
    }
}

pub async fn case(svc: &Services, actor: &str, json: bool, cmd: CaseCommand) -> anyhow::Result<()> {
    let c = match cmd {
        CaseCommand::Create {
            party,
            kind,
            title,
            from,
            until,
            reference,
        } => {
            let party = svc.parties.resolve(&party).await?.revision.id;
            svc.cases
                .create(
                    actor,
                    NewCase {
                        kind,
                        title,
                        party,
                        valid_from: from,
                        valid_until: until,
                        reference,
                    },
                )
                .await?
        }
        CaseCommand::Close { id, reason } => {
            svc.load().await?;
            svc.change_case(
                actor,
                &id,
                CaseChange {
                    status: Some(CaseStatus::Closed),
                    reason,
                    ..Default::default()
                },
            )
            .await?
        }
        CaseCommand::Reopen { id, reason } => {
            svc.cases
                .change(
                    actor,
                    &id,
                    CaseChange {
                        status: Some(CaseStatus::Open),
                        reason,
                        ..Default::default()
                    },
                )
                .await?
        }
        CaseCommand::Show { id } => {
            let c = svc.cases.get(&id).await?;
            // Its records, from the catalog, newest first.
            svc.load().await?;
            let mut records = Vec::new();
            for r in svc.catalog.records_in_case(&c.id).await {
                if let Some(b) = svc.catalog.record(&r).await {
                    records.push(b);
                }
            }
            records.sort_by(|a, b| b.date.cmp(&a.date).then(a.id.cmp(&b.id)));
            if json {
                json_line(&serde_json::json!({
                    "id": c.id, "rev": c.rev, "kind": c.kind, "title": c.title, "party": c.party,
                    "status": c.status, "valid_from": c.valid_from, "valid_until": c.valid_until,
                    "status_changed_at": c.status_changed_at, "status_changed_by": c.status_changed_by,
                    "records": records.iter().map(|r| serde_json::json!({
                        "id": r.id, "class": r.class, "title": r.title, "date": r.date,
                    })).collect::<Vec<_>>(),
                }))?;
            } else {
                outln!(
                    "{}  {} {:?}  {}  (party {})",
                    c.id,
                    c.kind,
                    c.status,
                    c.title,
                    c.party
                );
                let n = records.len();
                outln!("  {n} record{}", if n == 1 { "" } else { "s" });
                for r in &records {
                    outln!("  {} {} {:<14} {}", r.id, r.date, r.class, r.title);
                }
            }
            return Ok(());
        }
    };
    if json {
        json_line(&serde_json::json!({
            "id": c.id, "rev": c.rev, "kind": c.kind, "title": c.title, "party": c.party,
            "status": c.status, "valid_from": c.valid_from, "valid_until": c.valid_until,
            "status_changed_at": c.status_changed_at, "status_changed_by": c.status_changed_by,
        }))?;
    } else {
        outln!(
            "{}  {} {:?}  {}  (party {})",
            c.id,
            c.kind,
            c.status,
            c.title,
            c.party
        );
    }
    Ok(())
}

pub async fn note(
    svc: &crate::ingest::Ingest,
    actor: &str,
    json: bool,
    party: String,
    n: NoteInput,
) -> anyhow::Result<()> {
    let party = svc.svc.parties.resolve(&party).await?.revision.id;
    let a = svc.note(actor, &party, n).await?;
    if json {
        json_line(&a)?;
    } else {
        outln!("{}  note recorded for party {party}", a.id);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn link(
    svc: &Services,
    actor: &str,
    json: bool,
    record: String,
    parties: Vec<String>,
    role: String,
    cases: Vec<String>,
    remove: bool,
    reason: Option<String>,
) -> anyhow::Result<()> {
    let mut ch = LinkChange {
        reason,
        ..Default::default()
    };
    if remove {
        ch.remove_parties = parties.into_iter().map(|p| (p, role.clone())).collect();
        ch.remove_cases = cases;
    } else {
        for p in parties {
            let party = svc.parties.resolve(&p).await?.revision.id;
            ch.add_parties.push(PartyLink {
                party,
                role: role.clone(),
                reason: None,
            });
        }
        ch.add_cases = cases;
    }
    let r = svc.link(actor, &record, ch).await?;
    if json {
        json_line(&r)?;
    } else {
        outln!(
            "{} rev {}: links now {}",
            r.id,
            r.rev,
            r.parties
                .iter()
                .map(|l| format!("{} as {}", l.party, l.role))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

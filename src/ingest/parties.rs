//! Import of parties from ERP/CRM exports (CSV or JSON), as an upsert.
//!
//! Default CSV header (other layouts through a column mapping):
//! `kind,name,role,customer_number,supplier_number,vat_id,email,phone,domain,street,postcode,city,country`
//!
//! Each row is matched to an existing party by customer number, supplier number or VAT
//! ID (in that order of trust), else by exact name; a match gains the row's roles,
//! numbers and contacts it lacks; no match creates a party. Each row is its own commit:
//! it succeeds whole or is reported with its line number and reason. A row that adds
//! nothing writes nothing, so re-importing the same file leaves the journal unchanged.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::catalog::{Catalog, fold};
use crate::error::{Error, Result};
use crate::party::{Address, Parties, PartyData, PartyKind, RoleEntry, normalise_vat_id};

pub const COLUMNS: &[&str] = &[
    "kind",
    "name",
    "role",
    "customer_number",
    "supplier_number",
    "vat_id",
    "email",
    "phone",
    "domain",
    "street",
    "postcode",
    "city",
    "country",
];

#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub rows: usize,
    pub created: Vec<RowOutcome>,
    pub updated: Vec<RowOutcome>,
    pub unchanged: Vec<RowOutcome>,
    pub errors: Vec<RowError>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RowOutcome {
    pub line: usize,
    pub party: String,
    /// How the row found its party, or what it changed.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// Line in the file (1 = header for CSV; for JSON the element's index + 1).
    pub line: usize,
    pub reason: String,
}

type Row = BTreeMap<String, String>;

/// Parsed rows with their line numbers, and the errors found while parsing.
pub type Parsed = (Vec<(usize, Row)>, Vec<RowError>);

/// Parses CSV with a header row, as ERP systems export it: UTF-8 with or without a
/// byte-order mark, UTF-16 with one, or else Windows-1252; fields separated by `;`, `,`
/// or tabs (whichever the header line uses most, outside quotes); quoted fields may
/// hold separators and line breaks. `mapping` renames source columns to ours.
pub fn parse_csv(
    bytes: &[u8],
    mapping: &HashMap<String, String>,
) -> (Vec<(usize, Row)>, Vec<RowError>) {
    let text = decode_csv(bytes);
    let delimiter = sniff_delimiter(&text);
    let mut errors = Vec::new();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(false)
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match rdr.headers() {
        Ok(h) => h
            .iter()
            .map(|c| mapping.get(c).cloned().unwrap_or_else(|| c.to_string()))
            .collect(),
        Err(e) => {
            errors.push(RowError {
                line: 1,
                reason: format!("unreadable header: {e}"),
            });
            return (vec![], errors);
        }
    };
    for c in &header {
        if !COLUMNS.contains(&c.as_str()) {
            errors.push(RowError {
                line: 1,
                reason: format!(
                    "unknown column {c:?} is ignored (known: {})",
                    COLUMNS.join(",")
                ),
            });
        }
    }
    if !header.iter().any(|c| c == "name") {
        errors.push(RowError {
            line: 1,
            reason: "no `name` column".into(),
        });
        return (vec![], errors);
    }
    let mut rows = Vec::new();
    for rec in rdr.records() {
        match rec {
            Ok(r) => {
                let line = r.position().map_or(0, |p| p.line() as usize);
                let row: Row = header
                    .iter()
                    .zip(r.iter())
                    .filter(|(h, v)| COLUMNS.contains(&h.as_str()) && !v.is_empty())
                    .map(|(h, v)| (h.clone(), v.to_string()))
                    .collect();
                rows.push((line, row));
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                errors.push(RowError {
                    line,
                    reason: format!("malformed row: {e}"),
                });
            }
        }
    }
    (rows, errors)
}

/// A column mapping `source:target,…` (or `source=target`): the source system's header
/// names to ours (`Kundennummer:customer_number,Straße:street`).
pub fn parse_mapping(s: Option<&str>) -> Result<HashMap<String, String>> {
    static SHAPE: std::sync::LazyLock<Option<regex::Regex>> =
        std::sync::LazyLock::new(|| regex::Regex::new(&mapping_pattern()).ok());
    let mut m = HashMap::new();
    let Some(s) = s else {
        return Ok(m);
    };
    if !SHAPE.as_ref().is_some_and(|r| r.is_match(s)) {
        return Err(Error::invalid(
            "map",
            format!(
                "{s:?} is not a list of source:target (targets: {})",
                COLUMNS.join(",")
            ),
        ));
    }
    for pair in s.split(',') {
        if let Some((a, b)) = pair.split_once(':') {
            m.insert(a.to_string(), b.to_string());
        }
    }
    Ok(m)
}

/// The shape of a column mapping: `source:target` pairs separated by commas, each target
/// one of [`COLUMNS`] (the OpenAPI document states the same pattern).
pub fn mapping_pattern() -> String {
    let pair = format!(r"[^:,\x00-\x1F\x7F]+:(?:{})", COLUMNS.join("|"));
    format!("^{pair}(?:,{pair})*$")
}

/// The text of a CSV file: UTF-8 (a BOM dropped), UTF-16 by its BOM, else Windows-1252
/// — the encoding German ERP exports use when they are not UTF-8.
fn decode_csv(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (s, _) = enc.decode_without_bom_handling(&bytes[bom..]);
        return s;
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => {
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
        }
    }
}

/// The field separator the header line uses most (outside quotes): `;`, `,` or a tab;
/// `,` when it has none.
fn sniff_delimiter(text: &str) -> u8 {
    let mut counts = [(b';', 0usize), (b',', 0), (b'\t', 0)];
    let mut quoted = false;
    for c in text.bytes() {
        match c {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => break,
            _ if !quoted => {
                for (d, n) in &mut counts {
                    if c == *d {
                        *n += 1;
                    }
                }
            }
            _ => {}
        }
    }
    counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(_, n)| *n)
        .map_or(b',', |(d, _)| *d)
}

/// Parses a JSON array of flat objects with the CSV column names as keys.
pub fn parse_json(bytes: &[u8]) -> std::result::Result<Parsed, Error> {
    let v: Vec<serde_json::Value> = serde_json::from_slice(bytes)
        .map_err(|e| Error::invalid("body", format!("not a JSON array of objects: {e}")))?;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in v.into_iter().enumerate() {
        let Some(obj) = item.as_object() else {
            errors.push(RowError {
                line: i + 1,
                reason: "not an object".into(),
            });
            continue;
        };
        let mut row = Row::new();
        let mut bad = None;
        for (k, val) in obj {
            if !COLUMNS.contains(&k.as_str()) {
                bad = Some(format!("unknown field {k:?}"));
                break;
            }
            match val {
                serde_json::Value::String(s) if !s.trim().is_empty() => {
                    row.insert(k.clone(), s.trim().to_string());
                }
                serde_json::Value::Number(n) => {
                    row.insert(k.clone(), n.to_string());
                }
                serde_json::Value::Null | serde_json::Value::String(_) => {}
                _ => {
                    bad = Some(format!("field {k:?} must be a string"));
                    break;
                }
            }
        }
        match bad {
            Some(reason) => errors.push(RowError {
                line: i + 1,
                reason,
            }),
            None => rows.push((i + 1, row)),
        }
    }
    Ok((rows, errors))
}

/// The party data a row describes.
fn row_data(row: &Row) -> Result<PartyData> {
    let kind = match row.get("kind").map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("organisation") | Some("organization") | Some("org") => PartyKind::Organisation,
        Some("person") => PartyKind::Person,
        Some(k) => {
            return Err(Error::invalid(
                "kind",
                format!("{k:?} is neither organisation nor person"),
            ));
        }
    };
    let name = row
        .get("name")
        .cloned()
        .ok_or_else(|| Error::invalid("name", "missing"))?;
    let mut roles: Vec<RoleEntry> = Vec::new();
    let mut add_role = |role: &str, number: Option<&String>| {
        let role = role.trim().to_ascii_lowercase();
        match roles.iter_mut().find(|r| r.role == role) {
            Some(r) => {
                if r.number.is_none() {
                    r.number = number.cloned();
                }
            }
            None => roles.push(RoleEntry {
                role,
                number: number.cloned(),
                since: None,
                until: None,
                notes: None,
            }),
        }
    };
    if let Some(r) = row.get("role") {
        for part in r.split(['|', ';']) {
            if !part.trim().is_empty() {
                let number = match part.trim() {
                    "customer" => row.get("customer_number"),
                    "supplier" => row.get("supplier_number"),
                    _ => None,
                };
                add_role(part, number);
            }
        }
    }
    if let Some(n) = row.get("customer_number") {
        add_role("customer", Some(n));
    }
    if let Some(n) = row.get("supplier_number") {
        add_role("supplier", Some(n));
    }
    let vat_id = row.get("vat_id").map(|v| normalise_vat_id(v)).transpose()?;
    let address = Address {
        street: row.get("street").cloned(),
        postcode: row.get("postcode").cloned(),
        city: row.get("city").cloned(),
        country: row.get("country").map(|c| c.to_ascii_uppercase()),
    };
    let data = PartyData {
        kind,
        name,
        addresses: if address == Address::default() {
            vec![]
        } else {
            vec![address]
        },
        emails: row.get("email").into_iter().cloned().collect(),
        phones: row.get("phone").into_iter().cloned().collect(),
        domains: row.get("domain").into_iter().cloned().collect(),
        vat_id,
        register_number: None,
        identifiers: BTreeMap::new(),
        roles,
        relations: vec![],
        notes: None,
    };
    crate::party::validate(crate::party::normalise(data))
}

/// The identifiers a row can be matched by, most trusted first.
fn keys_of(d: &PartyData) -> Vec<String> {
    let mut k = Vec::new();
    for r in &d.roles {
        if let Some(n) = &r.number {
            k.push(format!("{}:{n}", r.role));
        }
    }
    if let Some(v) = &d.vat_id {
        k.push(format!("vat:{v}"));
    }
    k
}

/// `existing` plus what `row` adds; `Err` when they contradict each other.
fn merge_into(
    existing: &PartyData,
    row: &PartyData,
) -> std::result::Result<(PartyData, Vec<String>), String> {
    let mut d = existing.clone();
    let mut added = Vec::new();
    for r in &row.roles {
        match d.roles.iter_mut().find(|x| x.role == r.role) {
            None => {
                d.roles.push(r.clone());
                added.push(format!("role {}", r.role));
            }
            Some(x) => match (&x.number, &r.number) {
                (Some(a), Some(b)) if a != b => {
                    return Err(format!("{} number differs (stored {a}, file {b})", r.role));
                }
                (None, Some(b)) => {
                    x.number = Some(b.clone());
                    added.push(format!("{} number", r.role));
                }
                _ => {}
            },
        }
    }
    match (&d.vat_id, &row.vat_id) {
        (Some(a), Some(b)) if a != b => {
            return Err(format!("VAT ID differs (stored {a}, file {b})"));
        }
        (None, Some(b)) => {
            d.vat_id = Some(b.clone());
            added.push("VAT ID".into());
        }
        _ => {}
    }
    for (list, new, what) in [
        (&mut d.emails, &row.emails, "email"),
        (&mut d.phones, &row.phones, "phone"),
        (&mut d.domains, &row.domains, "domain"),
    ] {
        for x in new {
            if !list.contains(x) {
                list.push(x.clone());
                added.push(what.to_string());
            }
        }
    }
    for a in &row.addresses {
        if !d.addresses.contains(a) {
            d.addresses.push(a.clone());
            added.push("address".into());
        }
    }
    Ok((d, added))
}

/// Imports parsed rows. Parse errors given in `errors` are carried into the report.
pub async fn import_rows(
    parties: &Parties,
    catalog: &Catalog,
    actor: &str,
    rows: Vec<(usize, Row)>,
    errors: Vec<RowError>,
) -> ImportReport {
    let mut report = ImportReport {
        rows: rows.len() + errors.iter().filter(|e| e.line > 1).count(),
        errors,
        ..Default::default()
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (line, row) in rows {
        let data = match row_data(&row) {
            Ok(d) => d,
            Err(e) => {
                report.errors.push(RowError {
                    line,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let ks = keys_of(&data);
        if let Some((k, first)) = ks.iter().find_map(|k| seen.get(k).map(|l| (k, *l))) {
            report.errors.push(RowError {
                line,
                reason: format!("duplicate identifier {k} (already in line {first})"),
            });
            continue;
        }
        for k in &ks {
            seen.insert(k.clone(), line);
        }
        // Find the party this row describes.
        let mut found: Vec<(String, String)> = Vec::new();
        for k in &ks {
            for id in catalog.find(k).await {
                let id = catalog.resolve(&id).await;
                if !found.iter().any(|(x, _)| *x == id) {
                    found.push((id, format!("matched by {k}")));
                }
            }
        }
        if found.is_empty() && ks.is_empty() {
            let name = fold(&data.name);
            let same: Vec<_> = catalog
                .list(&crate::catalog::PartyFilter {
                    name_prefix: Some(data.name.clone()),
                    limit: 50,
                    ..Default::default()
                })
                .await
                .into_iter()
                .filter(|p| fold(&p.data.name) == name && p.data.kind == data.kind)
                .collect();
            for p in same {
                found.push((p.id.clone(), "matched by name".into()));
            }
        }
        let outcome = match found.as_slice() {
            [] => match parties.create(actor, data).await {
                Ok(p) => {
                    catalog.put_party(&p).await;
                    report.created.push(RowOutcome {
                        line,
                        party: p.revision.id.clone(),
                        detail: "created".into(),
                    });
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            },
            [(id, how)] => match parties.get(id).await {
                Err(e) => Err(e.to_string()),
                Ok(existing) => match merge_into(&existing.data, &data) {
                    Err(reason) => Err(format!("{how}: {reason}")),
                    Ok((_, added)) if added.is_empty() => {
                        report.unchanged.push(RowOutcome {
                            line,
                            party: id.clone(),
                            detail: how.clone(),
                        });
                        Ok(())
                    }
                    Ok((merged, added)) => match parties
                        .update(
                            actor,
                            id,
                            merged,
                            Some("import".into()),
                            Some(existing.revision.rev),
                        )
                        .await
                    {
                        Ok(p) => {
                            catalog.put_party(&p).await;
                            report.updated.push(RowOutcome {
                                line,
                                party: id.clone(),
                                detail: format!("{how}; added {}", added.join(", ")),
                            });
                            Ok(())
                        }
                        Err(e) => Err(e.to_string()),
                    },
                },
            },
            many => Err(format!(
                "ambiguous: identifiers point to {} different parties ({}); resolve by merging first",
                many.len(),
                many.iter()
                    .map(|(id, how)| format!("{id} {how}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        };
        if let Err(reason) = outcome {
            report.errors.push(RowError { line, reason });
        }
    }
    report.errors.sort_by_key(|e| e.line);
    report
}

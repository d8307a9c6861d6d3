//! Exports that an auditor can verify offline (DESIGN §8): a party's complete file for a
//! GDPR access request, and tax-audit data access (GDPdU description standard:
//! `index.xml` + CSV, plus the originals).
//!
//! Every export is a zip with the originals, the raw record revisions as stored, the
//! contiguous journal segment that commits them, a `manifest.json` naming every file's
//! SHA-256, and `VERIFY.txt`. `akte verify-export FILE.zip` checks it with nothing but
//! the zip: file hashes, the journal chain, each revision against the digest its journal
//! entry committed, each original against its revision.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, Write};

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::journal::JournalEntry;
use crate::error::{Error, Result};
use crate::record::RecordRevision;
use crate::service::Services;
use crate::store::codec;
use crate::store::keys::{self, ObjectKind};

pub const FORMAT: &str = "akte-export-1";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// `party` or `tax`.
    pub kind: String,
    pub generated_at: DateTime<Utc>,
    pub generated_by: String,
    pub description: String,
    /// Journal segment included: first and last sequence number.
    pub journal_from: u64,
    pub journal_to: u64,
    /// Set when the export holds only the journal entries about its subject (a person's
    /// access request must not disclose other people's entries): a CSV of `seq;prev_hash;hash`
    /// of every entry from `journal_from` to `journal_to`, which links the entries it holds
    /// into the chain without their content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_chain: Option<String>,
    /// The archive's signed checkpoint of the segment's last entry (with a signing key):
    /// whoever holds the public key (`akte docs procedure`) can check that the archive
    /// vouched for this journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<crate::audit::journal::Checkpoint>,
    /// Every file in the export but the manifest: path → sha256.
    pub files: BTreeMap<String, String>,
    pub records: Vec<ManifestRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestRecord {
    pub id: String,
    /// Paths of the raw revision files.
    pub revisions: Vec<String>,
    /// Path of each original content version in the export (absent if disposed).
    pub originals: Vec<String>,
}

struct Writer<W: Write + Seek> {
    zip: zip::ZipWriter<W>,
    files: BTreeMap<String, String>,
}

impl<W: Write + Seek> Writer<W> {
    fn add(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        self.zip
            .start_file(path, opts)
            .map_err(|e| Error::Internal(format!("zip: {e}")))?;
        self.zip.write_all(bytes).map_err(|e| Error::io(path, e))?;
        self.files
            .insert(path.to_string(), codec::sha256_hex(bytes));
        Ok(())
    }
}

fn safe_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let s = s.trim_matches(|c| c == '.' || c == ' ').to_string();
    if s.is_empty() {
        "content".into()
    } else {
        s.chars().take(120).collect()
    }
}

/// Writes the records (revisions, originals) and the journal segment that commits them.
/// With `own`, only the journal entries naming one of those ids are written in full, and
/// `journal/chain.csv` links them (see [`Manifest::journal_chain`]); otherwise the whole
/// segment. Each decrypted revision is also written as readable JSON beside its raw bytes.
async fn write_records<W: Write + Seek>(
    svc: &Services,
    w: &mut Writer<W>,
    ids: &[String],
    own: Option<&BTreeSet<String>>,
) -> Result<Segment> {
    let store = svc.archive.store();
    let mut manifest = Vec::new();
    let mut wanted: BTreeSet<(String, u32)> = BTreeSet::new();
    for id in ids {
        let metas =
            crate::audit::revision_keys(svc.archive.journal(), ObjectKind::Record, id).await?;
        let mut m = ManifestRecord {
            id: id.clone(),
            revisions: vec![],
            originals: vec![],
        };
        let mut seen_content = BTreeSet::new();
        let mut last: Option<RecordRevision> = None;
        for location in metas {
            let bytes = store.get(&location).await?;
            let r = svc
                .archive
                .open_meta(RecordRevision::decode(location.as_ref(), &bytes)?)
                .await?;
            let path = location.to_string();
            w.add(&path, &bytes)?;
            if own.is_some() {
                let readable = format!("{}.json", path.trim_end_matches(".mpk"));
                w.add(&readable, &pretty(&r)?)?;
            }
            m.revisions.push(path);
            wanted.insert((r.id.clone(), r.rev));
            if r.tombstone.is_none() && seen_content.insert(r.content.sha256.clone()) {
                let path = format!(
                    "originals/{}/v{}-{}",
                    r.id,
                    r.content.version,
                    original_name(&r)
                );
                let (_, stream) = store
                    .read_stream(&keys::blob(&r.content.sha256), None)
                    .await?;
                let chunks: Vec<bytes::Bytes> = stream.try_collect().await?;
                w.add(&path, &chunks.concat())?;
                m.originals.push(path);
            }
            last = Some(r);
        }
        if last.is_some_and(|r| r.tombstone.is_some()) {
            m.originals.clear();
        }
        manifest.push(m);
    }
    // The journal segment from the first to the last entry committing these revisions.
    let head = svc.archive.journal().head_seq().await?;
    let entries = svc
        .archive
        .journal()
        .entries(0, usize::try_from(head).unwrap_or(usize::MAX))
        .await?;
    // The entries that commit the revisions; for a subject's export also every other
    // entry about it: its party revisions, cases, holds, reads of its file and records.
    let included: BTreeSet<u64> = entries
        .iter()
        .filter(|e| {
            e.written()
                .iter()
                .any(|(s, r, _)| s.kind == "record" && wanted.contains(&(s.id.clone(), *r)))
                || own.is_some_and(|o| e.subjects.iter().any(|s| o.contains(&s.id)))
        })
        .map(|e| e.seq)
        .collect();
    let (from, to) = match (included.first(), included.last()) {
        (Some(a), Some(b)) => (*a, *b),
        _ => (0, 0),
    };
    let mut segment = Segment {
        records: manifest,
        from,
        to,
        chain: None,
        entries: Vec::new(),
    };
    if from == 0 {
        return Ok(segment);
    }
    let mut chain = String::from("seq;prev_hash;hash\n");
    for e in entries.iter().filter(|e| e.seq >= from && e.seq <= to) {
        if own.is_none() || included.contains(&e.seq) {
            let key = keys::journal(e.seq);
            let bytes = store.get(&key).await?;
            w.add(key.as_ref(), &bytes)?;
            segment.entries.push(e.clone());
        }
        chain.push_str(&format!("{};{};{}\n", e.seq, e.prev_hash, e.hash));
    }
    if own.is_some() {
        w.add(CHAIN_CSV, chain.as_bytes())?;
        segment.chain = Some(CHAIN_CSV.into());
    }
    Ok(segment)
}

/// Where a subject's export keeps the links between the journal entries it holds.
const CHAIN_CSV: &str = "journal/chain.csv";

/// What [`write_records`] wrote.
struct Segment {
    records: Vec<ManifestRecord>,
    from: u64,
    to: u64,
    chain: Option<String>,
    /// The journal entries written in full.
    entries: Vec<JournalEntry>,
}

/// The archive's signed checkpoint of the segment's last entry (none without a signing
/// key or a segment).
async fn attest(svc: &Services, seg: &Segment) -> Option<crate::audit::journal::Checkpoint> {
    let last = seg.entries.last().filter(|e| e.seq == seg.to)?;
    svc.archive.journal().attest(last).await
}

fn pretty<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(v).map_err(|e| Error::Internal(e.to_string()))
}

/// An original's file name: its own, else its title, with the extension of its media
/// type when the name has none (`Angebot.pdf`, `Re_ Lieferung.eml`).
fn original_name(r: &RecordRevision) -> String {
    let base = r
        .content
        .file_name
        .clone()
        .unwrap_or_else(|| r.title.clone());
    let mut name = safe_name(&base);
    let has_ext = std::path::Path::new(&name)
        .extension()
        .is_some_and(|e| (1..=5).contains(&e.len()));
    if !has_ext {
        let ext = match r.content.media_type.as_str() {
            "message/rfc822" => Some("eml"),
            "text/plain" => Some("txt"),
            m => mime_guess::get_mime_extensions_str(m).and_then(|e| e.first().copied()),
        };
        if let Some(ext) = ext {
            name = format!("{name}.{ext}");
        }
    }
    name
}

/// The statement the export's checkpoint signs and timestamps, and the TSA's token over
/// it (for `openssl ts -verify`).
const CHECKPOINT_STATEMENT: &str = "journal/checkpoint.txt";
const CHECKPOINT_TOKEN: &str = "journal/checkpoint.tst";

const VERIFY_TXT: &str = "How to verify this export
=========================

With akte:   akte verify-export THIS-FILE.zip

By hand:
1. manifest.json lists every file with its SHA-256: `sha256sum <file>` must match.
2. journal/<seq>.mpk are consecutive journal entries (MessagePack). Each entry's `hash`
   is sha256(bytes(prev_hash) || body), body = the entry's MessagePack map without the
   `hash` pair; each entry's prev_hash is the previous entry's hash. A person's export
   holds only the entries about them: then journal/chain.csv lists `seq;prev_hash;hash`
   of every entry from the first to the last, one unbroken chain, and each entry held
   must be the one the chain names at its seq.
3. records/<id>/<rev>.mpk are record revisions exactly as stored. The SHA-256 of each
   file equals the digest its journal entry committed: the entry's `payload_digest`
   when that record and revision is its only subject, or the subject's own `digest`
   when one entry committed several revisions (a group commit of an import).
4. originals/<id>/v<N>-<name>: the SHA-256 of each original equals `content.sha256` of
   the revisions that reference it.
5. When the archive signs its checkpoints, manifest.json's `checkpoint` is the signed
   head of the segment: journal/checkpoint.txt holds the statement signed (seq, hash
   of entry `journal_to`, time), `checkpoint.signature` the Ed25519 key and signature
   (compare the key with the procedure documentation's). With a time-stamping
   authority, journal/checkpoint.tst is its RFC 3161 token over that statement:
     openssl ts -verify -token_in -in journal/checkpoint.tst \
       -data journal/checkpoint.txt -CAfile TSA-CA.pem
   prints `Verification: OK` (TSA-CA.pem: the TSA's certificate chain).
";

fn finish<W: Write + Seek>(mut w: Writer<W>, mut manifest: Manifest) -> Result<()> {
    w.add("VERIFY.txt", VERIFY_TXT.as_bytes())?;
    if let Some(cp) = &manifest.checkpoint {
        w.add(CHECKPOINT_STATEMENT, &cp.message())?;
        if let Some(der) = cp.timestamp_der() {
            w.add(
                CHECKPOINT_TOKEN,
                &der.map_err(|e| Error::Internal(format!("checkpoint timestamp: {e}")))?,
            )?;
        }
    }
    manifest.files = w.files.clone();
    let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Internal(e.to_string()))?;
    let opts = zip::write::SimpleFileOptions::default();
    w.zip
        .start_file("manifest.json", opts)
        .map_err(|e| Error::Internal(format!("zip: {e}")))?;
    w.zip
        .write_all(&json)
        .map_err(|e| Error::io("manifest.json", e))?;
    w.zip
        .finish()
        .map_err(|e| Error::Internal(format!("zip: {e}")))?;
    Ok(())
}

/// A party's complete file (GDPR Art. 15 access request).
pub async fn party<W: Write + Seek>(
    svc: &Services,
    actor: &str,
    party: &str,
    out: W,
) -> Result<()> {
    let p = svc.parties.resolve(party).await?;
    let mut w = Writer {
        zip: zip::ZipWriter::new(out),
        files: BTreeMap::new(),
    };
    w.add("README.txt", PARTY_README.as_bytes())?;
    // Everything about the party: its own revisions (also those of parties merged into
    // it), its cases and its records.
    let mut own: BTreeSet<String> = BTreeSet::new();
    own.insert(p.revision.id.clone());
    for rev in svc.parties.history(&p.revision.id).await? {
        let view = crate::catalog::PartyBrief::from(&rev);
        w.add(
            &format!("party/{}/{:08}.json", rev.revision.id, rev.revision.rev),
            &pretty(&view)?,
        )?;
    }
    let today = svc.archive.clock().now().date_naive();
    if let Some(file) = svc.catalog.file(&p.revision.id, today, 1, 500).await {
        w.add("party/file.json", &pretty(&file)?)?;
    }
    for c in svc.catalog.cases_of(&p.revision.id, true).await {
        own.insert(c.id);
    }
    let ids = svc.catalog.records_of(&p.revision.id).await;
    own.extend(ids.iter().cloned());
    let seg = write_records(svc, &mut w, &ids, Some(&own)).await?;
    w.add("records.csv", &records_csv(svc, &seg.records).await?)?;
    w.add("journal.csv", &journal_csv(&seg.entries)?)?;
    let manifest = Manifest {
        format: FORMAT.into(),
        kind: "party".into(),
        generated_at: svc.archive.clock().now(),
        generated_by: actor.into(),
        description: format!("Complete file of party {} (GDPR Art. 15)", p.revision.id),
        journal_from: seg.from,
        journal_to: seg.to,
        checkpoint: attest(svc, &seg).await,
        journal_chain: seg.chain,
        files: BTreeMap::new(),
        records: seg.records,
    };
    finish(w, manifest)
}

const PARTY_README: &str = "Ihre Daten / Your data (DSGVO Art. 15 / GDPR Art. 15)
=====================================================

party/file.json       Stammdaten, Rollen, Vorgaenge, Dokumente / master data, roles, cases, documents
party/<id>/*.json     jede Fassung der Stammdaten / every revision of the master data
records.csv           ein Dokument je Zeile (Semikolon, UTF-8) / one document per line
originals/<id>/...    die Originale, byte-genau, mit ihrem Namen / the originals, byte-exact, by name
records/<id>/*.json   jede Fassung der Metadaten, lesbar / every metadata revision, readable
journal.csv           die Journaleintraege, die Sie betreffen / the journal entries about you

Pruefbar / Verifiable: records/<id>/*.mpk and journal/*.mpk are the stored bytes;
VERIFY.txt says how to check this export with nothing but its contents.
";

/// `records.csv`: one line per record, for a person to read (semicolons, a header).
async fn records_csv(svc: &Services, records: &[ManifestRecord]) -> Result<Vec<u8>> {
    let mut out = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::Internal(format!("csv: {e}"));
    out.write_record([
        "id",
        "class",
        "title",
        "date",
        "archived_at",
        "file_name",
        "media_type",
        "size",
        "sha256",
        "retain_until",
        "legal_basis",
        "original",
    ])
    .map_err(csv_err)?;
    for m in records {
        let r = svc.archive.latest(&m.id).await?;
        let date = r.document_date.map(|d| d.to_string()).unwrap_or_default();
        let size = r.content.size.to_string();
        out.write_record([
            r.id.as_str(),
            &r.class,
            &r.title,
            &date,
            &r.archived_at.to_rfc3339(),
            r.content.file_name.as_deref().unwrap_or(""),
            &r.content.media_type,
            &size,
            &r.content.sha256,
            &r.retention.retain_until.to_string(),
            &r.retention.policy,
            m.originals.last().map(String::as_str).unwrap_or(""),
        ])
        .map_err(csv_err)?;
    }
    out.into_inner()
        .map_err(|e| Error::Internal(format!("csv: {e}")))
}

/// `journal.csv`: the entries of the export, readable.
fn journal_csv(entries: &[JournalEntry]) -> Result<Vec<u8>> {
    let csv_err = |e: csv::Error| Error::Internal(format!("csv: {e}"));
    let mut out = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(Vec::new());
    out.write_record(["seq", "time", "actor", "action", "subjects", "detail"])
        .map_err(csv_err)?;
    for e in entries {
        let subjects = e
            .subjects
            .iter()
            .map(|s| match s.rev {
                Some(r) => format!("{} {} rev {r}", s.kind, s.id),
                None => format!("{} {}", s.kind, s.id),
            })
            .collect::<Vec<_>>()
            .join(", ");
        out.write_record([
            e.seq.to_string().as_str(),
            &e.time.to_rfc3339(),
            &e.actor,
            &e.action,
            &subjects,
            e.detail.as_deref().unwrap_or(""),
        ])
        .map_err(csv_err)?;
    }
    out.into_inner()
        .map_err(|e| Error::Internal(format!("csv: {e}")))
}

/// The columns of `belege.csv`, in order (its first line, and `index.xml`).
const BELEGE_COLUMNS: [&str; 14] = [
    "Beleg_ID",
    "Klasse",
    "Titel",
    "Belegdatum",
    "Archiviert_am",
    "Dateiname",
    "Medientyp",
    "Groesse_Bytes",
    "SHA256",
    "Aufbewahrung_bis",
    "Rechtsgrundlage",
    "Partner",
    "Partner_IDs",
    "Datei",
];

/// Tax-audit data access for documents dated `from..=to` (GDPdU: index.xml + CSV with a
/// header line that `index.xml` skips). Returns how many documents it holds.
pub async fn tax<W: Write + Seek>(
    svc: &Services,
    actor: &str,
    from: NaiveDate,
    to: NaiveDate,
    out: W,
) -> Result<usize> {
    if to < from {
        return Err(Error::invalid("to", "before from"));
    }
    let ids = svc
        .archive
        .journal()
        .committed_ids(ObjectKind::Record)
        .await?;
    let mut selected = Vec::new();
    for id in ids {
        let r = svc.archive.latest(&id).await?;
        let d = r.document_date.unwrap_or(r.archived_at.date_naive());
        if r.tombstone.is_none() && d >= from && d <= to {
            selected.push(r);
        }
    }
    let mut w = Writer {
        zip: zip::ZipWriter::new(out),
        files: BTreeMap::new(),
    };
    let ids: Vec<String> = selected.iter().map(|r| r.id.clone()).collect();
    let seg = write_records(svc, &mut w, &ids, None).await?;
    let checkpoint = attest(svc, &seg).await;
    let (records, jfrom, jto) = (seg.records, seg.from, seg.to);
    let mut csv = csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    csv.write_record(BELEGE_COLUMNS)
        .map_err(|e| Error::Internal(e.to_string()))?;
    for (r, m) in selected.iter().zip(&records) {
        let d = r.document_date.unwrap_or(r.archived_at.date_naive());
        let parties: Vec<&str> = r.parties.iter().map(|l| l.party.as_str()).collect();
        // Partners by name, role and their number in that role (customer K-1, …).
        let mut named = Vec::new();
        for l in &r.parties {
            let (name, number) = match svc.parties.get(&l.party).await {
                Ok(p) => {
                    let number = p
                        .data
                        .roles
                        .iter()
                        .find(|x| x.role == l.role)
                        .or_else(|| p.data.roles.first())
                        .and_then(|x| x.number.clone().map(|n| format!("{} {n}", x.role)));
                    (p.data.name.clone(), number)
                }
                Err(_) => (l.party.clone(), None),
            };
            named.push(match number {
                Some(n) => format!("{name} ({n})"),
                None => name,
            });
        }
        let row = [
            r.id.clone(),
            r.class.clone(),
            r.title.clone(),
            d.format("%d.%m.%Y").to_string(),
            r.archived_at.format("%d.%m.%Y").to_string(),
            r.content.file_name.clone().unwrap_or_default(),
            r.content.media_type.clone(),
            r.content.size.to_string(),
            r.content.sha256.clone(),
            r.retention.retain_until.format("%d.%m.%Y").to_string(),
            r.retention.legal_basis.clone(),
            named.join(", "),
            parties.join(","),
            m.originals.last().cloned().unwrap_or_default(),
        ];
        csv.write_record(&row)
            .map_err(|e| Error::Internal(e.to_string()))?;
    }
    let csv = csv
        .into_inner()
        .map_err(|e| Error::Internal(e.to_string()))?;
    w.add("belege.csv", &csv)?;
    w.add("index.xml", gdpdu_index(from, to).as_bytes())?;
    w.add("gdpdu-01-09-2004.dtd", GDPDU_DTD_NOTE.as_bytes())?;
    let count = selected.len();
    let manifest = Manifest {
        format: FORMAT.into(),
        kind: "tax".into(),
        generated_at: svc.archive.clock().now(),
        generated_by: actor.into(),
        description: format!("Tax-audit data access (GDPdU) for documents dated {from} to {to}"),
        journal_from: jfrom,
        journal_to: jto,
        journal_chain: None,
        checkpoint,
        files: BTreeMap::new(),
        records,
    };
    finish(w, manifest)?;
    Ok(count)
}

const GDPDU_DTD_NOTE: &str = "<!-- index.xml follows the GDPdU description standard, DTD version 01-09-2004,\n     published by the Bundesministerium der Finanzen / Bundeszentralamt für Steuern.\n     Obtain the official DTD from there; it is not redistributed here. -->\n";

fn gdpdu_index(from: NaiveDate, to: NaiveDate) -> String {
    let col = |name: &str, kind: &str| {
        format!("        <VariableColumn><Name>{name}</Name>{kind}</VariableColumn>\n")
    };
    let mut cols = String::new();
    cols.push_str(&col("Klasse", "<AlphaNumeric/>"));
    cols.push_str(&col("Titel", "<AlphaNumeric/>"));
    cols.push_str(&col(
        "Belegdatum",
        "<Date><Format>DD.MM.YYYY</Format></Date>",
    ));
    cols.push_str(&col(
        "Archiviert_am",
        "<Date><Format>DD.MM.YYYY</Format></Date>",
    ));
    cols.push_str(&col("Dateiname", "<AlphaNumeric/>"));
    cols.push_str(&col("Medientyp", "<AlphaNumeric/>"));
    cols.push_str(&col("Groesse_Bytes", "<Numeric/>"));
    cols.push_str(&col("SHA256", "<AlphaNumeric/>"));
    cols.push_str(&col(
        "Aufbewahrung_bis",
        "<Date><Format>DD.MM.YYYY</Format></Date>",
    ));
    cols.push_str(&col("Rechtsgrundlage", "<AlphaNumeric/>"));
    cols.push_str(&col("Partner", "<AlphaNumeric/>"));
    cols.push_str(&col("Partner_IDs", "<AlphaNumeric/>"));
    cols.push_str(&col("Datei", "<AlphaNumeric/>"));
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE DataSet SYSTEM \"gdpdu-01-09-2004.dtd\">\n<DataSet>\n  <Version>1.0</Version>\n  <DataSupplier>\n    <Name>akte</Name>\n    <Location>export</Location>\n    <Comment>Datenüberlassung nach § 147 (6) AO (GDPdU/GoBD)</Comment>\n  </DataSupplier>\n  <Media>\n    <Name>Belege {f} bis {t}</Name>\n    <Table>\n      <URL>belege.csv</URL>\n      <Name>Belege</Name>\n      <Description>Archivierte Belege und Dokumente mit Hashwert, Aufbewahrungsfrist und Datei im Export</Description>\n      <Validity><Range><From>{f}</From><To>{t}</To></Range></Validity>\n      <UTF8/>\n      <DecimalSymbol>,</DecimalSymbol>\n      <DigitGroupingSymbol>.</DigitGroupingSymbol>\n      <Range><From>2</From></Range>\n      <VariableLength>\n        <ColumnDelimiter>;</ColumnDelimiter>\n        <RecordDelimiter>&#13;&#10;</RecordDelimiter>\n        <TextEncapsulator>\"</TextEncapsulator>\n        <VariablePrimaryKey><Name>Beleg_ID</Name><AlphaNumeric/></VariablePrimaryKey>\n{cols}      </VariableLength>\n    </Table>\n  </Media>\n</DataSet>\n",
        f = from.format("%d.%m.%Y"),
        t = to.format("%d.%m.%Y"),
    )
}

/// The outcome of checking an export.
#[derive(Debug, Default, Serialize)]
pub struct ExportCheck {
    pub files: usize,
    pub journal_entries: usize,
    pub revisions: usize,
    pub originals: usize,
    /// The public key (hex) of the archive's signed checkpoint, if the export has one.
    pub signed_by: Option<String>,
    /// What the checkpoint's RFC 3161 timestamp says, if it has a valid one.
    pub timestamp: Option<crate::audit::timestamp::Stamp>,
    pub problems: Vec<String>,
}

/// Reads `journal/chain.csv` (`seq;prev_hash;hash` from `journal_from` to `journal_to`)
/// and checks that it is one unbroken chain. Returns seq → (prev_hash, hash).
fn read_chain(
    path: &str,
    bytes: Option<&[u8]>,
    manifest: &Manifest,
    problems: &mut Vec<String>,
) -> BTreeMap<u64, (String, String)> {
    let mut links = BTreeMap::new();
    let Some(bytes) = bytes else {
        problems.push(format!("{path}: missing"));
        return links;
    };
    let text = String::from_utf8_lossy(bytes);
    let mut expect = manifest.journal_from;
    let mut prev: Option<String> = None;
    for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
        let parts: Vec<&str> = line.split(';').collect();
        let (Some(seq), Some(p), Some(h), 3) = (
            parts.first().and_then(|s| s.parse::<u64>().ok()),
            parts.get(1),
            parts.get(2),
            parts.len(),
        ) else {
            problems.push(format!("{path}: unreadable line {line:?}"));
            return links;
        };
        if seq != expect {
            problems.push(format!("{path}: seq {seq} where {expect} belongs"));
            return links;
        }
        if prev.as_deref().is_some_and(|x| x != *p) {
            problems.push(format!("{path}: seq {seq} does not link to the one before"));
        }
        prev = Some(h.to_string());
        links.insert(seq, (p.to_string(), h.to_string()));
        expect += 1;
    }
    if manifest.journal_from > 0 && expect != manifest.journal_to + 1 {
        problems.push(format!(
            "{path}: ends before seq {} of the manifest",
            manifest.journal_to
        ));
    }
    links
}

/// Verifies an export using nothing but its own contents.
pub fn verify<R: Read + Seek>(input: R) -> Result<ExportCheck> {
    verify_with(input, &[])
}

/// [`verify`], with the TSA certificates (`--tsa-ca`) the checkpoint's timestamp must
/// chain to.
pub fn verify_with<R: Read + Seek>(
    input: R,
    tsa_trusted: &[rustls_pki_types::CertificateDer<'_>],
) -> Result<ExportCheck> {
    let mut zip = zip::ZipArchive::new(input)
        .map_err(|e| Error::invalid("export", format!("not a zip: {e}")))?;
    let mut read = |name: &str| -> Result<Vec<u8>> {
        let mut f = zip
            .by_name(name)
            .map_err(|e| Error::invalid("export", format!("{name}: {e}")))?;
        let mut v = Vec::new();
        f.read_to_end(&mut v).map_err(|e| Error::io(name, e))?;
        Ok(v)
    };
    let manifest: Manifest = serde_json::from_slice(&read("manifest.json")?)
        .map_err(|e| Error::invalid("manifest.json", e.to_string()))?;
    let mut check = ExportCheck::default();
    if manifest.format != FORMAT {
        check
            .problems
            .push(format!("unknown export format {}", manifest.format));
    }
    let mut contents: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (path, sha) in &manifest.files {
        match read(path) {
            Ok(bytes) => {
                let found = hex::encode(Sha256::digest(&bytes));
                if &found != sha {
                    check
                        .problems
                        .push(format!("{path}: sha256 {found}, manifest says {sha}"));
                }
                check.files += 1;
                contents.insert(path.clone(), bytes);
            }
            Err(e) => check.problems.push(format!("{path}: missing ({e})")),
        }
    }
    // The journal segment: consecutive, chained, each hash recomputed.
    let mut committed: BTreeMap<(String, u32), String> = BTreeMap::new();
    let mut prev: Option<String> = None;
    let mut last_hash: Option<String> = None;
    // A subject's export: the chain of hashes links the entries it holds.
    let chain = match &manifest.journal_chain {
        None => None,
        Some(path) => Some(read_chain(
            path,
            contents.get(path).map(Vec::as_slice),
            &manifest,
            &mut check.problems,
        )),
    };
    if manifest.journal_from > 0 {
        for seq in manifest.journal_from..=manifest.journal_to {
            let path = keys::journal(seq).to_string();
            let Some(bytes) = contents.get(&path) else {
                if chain.is_none() {
                    check
                        .problems
                        .push(format!("{path}: journal entry missing from the segment"));
                    prev = None;
                }
                continue;
            };
            match JournalEntry::decode(&path, bytes) {
                Err(e) => check.problems.push(e.to_string()),
                Ok(e) => {
                    check.journal_entries += 1;
                    if e.seq != seq {
                        check
                            .problems
                            .push(format!("{path}: carries seq {}", e.seq));
                    }
                    match e.compute_hash() {
                        Ok(h) if h == e.hash => {}
                        _ => check
                            .problems
                            .push(format!("{path}: hash does not match its content")),
                    }
                    match &chain {
                        Some(links) => match links.get(&seq) {
                            Some((p, h)) if *p == e.prev_hash && *h == e.hash => {}
                            _ => check
                                .problems
                                .push(format!("{path}: not the entry the chain names")),
                        },
                        None => {
                            if let Some(p) = &prev
                                && *p != e.prev_hash
                            {
                                check
                                    .problems
                                    .push(format!("{path}: does not link to the previous entry"));
                            }
                        }
                    }
                    for (s, rev, d) in e.written() {
                        if s.kind == "record" {
                            committed.insert((s.id.clone(), rev), d.to_string());
                        }
                    }
                    if seq == manifest.journal_to {
                        last_hash = Some(e.hash.clone());
                    }
                    prev = Some(e.hash);
                }
            }
        }
    }
    // The archive's signed checkpoint of the segment's last entry.
    if let Some(cp) = &manifest.checkpoint {
        check.signed_by = cp.signature.as_ref().map(|s| s.key.clone());
        if cp.signature_valid() != Some(true) {
            check
                .problems
                .push("manifest.json: the checkpoint's signature does not verify".into());
        }
        // Exports made before timestamps existed do not hold the statement file.
        match contents.get(CHECKPOINT_STATEMENT) {
            Some(b) if *b != cp.message() => check.problems.push(format!(
                "{CHECKPOINT_STATEMENT}: not the checkpoint's statement"
            )),
            None if cp.timestamp.is_some() => check.problems.push(format!(
                "{CHECKPOINT_STATEMENT}: missing beside a timestamped checkpoint"
            )),
            _ => {}
        }
        match cp
            .timestamp_der()
            .map(|d| d.and_then(|d| cp.check_token(&d, tsa_trusted).map(|s| (d, s))))
        {
            None => {}
            Some(Ok((der, stamp))) => {
                if contents.get(CHECKPOINT_TOKEN) != Some(&der) {
                    check.problems.push(format!(
                        "{CHECKPOINT_TOKEN}: missing or not the checkpoint's token"
                    ));
                }
                check.timestamp = Some(stamp);
            }
            Some(Err(why)) => check
                .problems
                .push(format!("manifest.json: the checkpoint's timestamp: {why}")),
        }
        if cp.seq != manifest.journal_to {
            check.problems.push(format!(
                "manifest.json: the checkpoint names entry {}, the segment ends at {}",
                cp.seq, manifest.journal_to
            ));
        } else if last_hash.as_deref() != Some(cp.hash.as_str()) {
            check.problems.push(format!(
                "manifest.json: the signed checkpoint's hash is not entry {}'s",
                cp.seq
            ));
        }
    }
    // Revisions against the journal; originals against their revisions.
    for m in &manifest.records {
        let mut shas = BTreeSet::new();
        for path in &m.revisions {
            let Some(bytes) = contents.get(path) else {
                continue;
            };
            check.revisions += 1;
            match RecordRevision::decode(path, bytes) {
                Err(e) => check.problems.push(e.to_string()),
                Ok(r) => {
                    let digest = codec::sha256_hex(bytes);
                    match committed.get(&(r.id.clone(), r.rev)) {
                        Some(d) if *d == digest => {}
                        Some(_) => check
                            .problems
                            .push(format!("{path}: differs from what the journal committed")),
                        None => check.problems.push(format!(
                            "{path}: no journal entry in the segment commits it"
                        )),
                    }
                    shas.insert(r.content.sha256);
                }
            }
        }
        for path in &m.originals {
            let Some(bytes) = contents.get(path) else {
                continue;
            };
            check.originals += 1;
            let sha = hex::encode(Sha256::digest(bytes));
            if !shas.contains(&sha) {
                check.problems.push(format!(
                    "{path}: no revision of record {} has this content",
                    m.id
                ));
            }
        }
    }
    Ok(check)
}

//! Verification of the whole store: every blob re-hashed against its key, every revision
//! chained to its predecessor and matched against the journal entry that committed it,
//! the journal chain recomputed end to end.
//!
//! Verification reads only the store; it trusts no index or cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use tokio::task::JoinSet;

use crate::audit::journal::{JournalEntry, SetAside};
use crate::error::{Error, Result};
use crate::record::RecordRevision;
use crate::store::Store;

use crate::store::codec::{self, ZERO_HASH};
use crate::store::keys::{self, KeyKind, ObjectKind};

/// One broken object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub key: String,
    pub what: String,
    pub expected: Option<String>,
    pub found: Option<String>,
}

/// On a versioned S3 bucket, an object that a plain DELETE removed is only hidden
/// behind a delete marker: says so, and which versions still hold it. Empty elsewhere.
async fn hidden_by_marker(store: &Store, key: &object_store::path::Path) -> Result<String> {
    let Some(api) = store.s3() else {
        return Ok(String::new());
    };
    let versions = match api.versions(key).await {
        Ok(v) => v,
        // A server without versioning answers the listing with an error.
        Err(_) => return Ok(String::new()),
    };
    let markers: Vec<&str> = versions
        .iter()
        .filter(|v| v.delete_marker)
        .map(|v| v.version_id.as_str())
        .collect();
    let kept: Vec<&str> = versions
        .iter()
        .filter(|v| !v.delete_marker)
        .map(|v| v.version_id.as_str())
        .collect();
    if markers.is_empty() || kept.is_empty() {
        return Ok(String::new());
    }
    Ok(format!(
        ": hidden by a delete marker (version {}) — the data is still stored as version {} \
         (a DELETE on a versioned bucket keeps it; removing the marker restores it)",
        markers.join(", "),
        kept.join(", ")
    ))
}

impl Problem {
    fn new(key: impl Into<String>, what: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            what: what.into(),
            expected: None,
            found: None,
        }
    }

    fn mismatch(
        key: impl Into<String>,
        what: impl Into<String>,
        expected: &str,
        found: &str,
    ) -> Problem {
        Problem {
            key: key.into(),
            what: what.into(),
            expected: Some(expected.to_string()),
            found: Some(found.to_string()),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.what)?;
        if let Some(e) = &self.expected {
            write!(f, " (expected {e}")?;
            if let Some(x) = &self.found {
                write!(f, ", found {x}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

/// A revision written but never journaled, and not yet recorded by recovery: the writer
/// crashed before its commit point (or is still writing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unjournaled {
    /// Journal subject kind (`record`, `token`).
    pub kind: String,
    pub id: String,
    pub rev: u32,
    pub key: String,
    pub digest: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub objects: u64,
    pub blobs: u64,
    pub revisions: u64,
    pub records: u64,
    pub journal_entries: u64,
    pub bytes_hashed: u64,
    pub seconds: f64,
    /// Tampering or corruption: verification fails.
    pub problems: Vec<Problem>,
    /// Crash leftovers not yet recorded by recovery: invisible to every reader, and
    /// recorded by the next start of a writer. Verification passes.
    pub warnings: Vec<Problem>,
    /// Checkpoints in the store that carry a signature (each checked).
    pub checkpoints_signed: u64,
    /// Checkpoints and anchors whose RFC 3161 timestamp was checked.
    pub checkpoints_stamped: u64,
    /// Checkpoints kept outside the store that were checked against the journal.
    pub anchors: u64,
    /// Leftovers not yet recorded (the revisions among `warnings`).
    pub unjournaled: Vec<Unjournaled>,
    /// Crash leftovers a recovery entry recorded (revisions and torn blobs): set aside,
    /// not part of the archive.
    pub leftovers_recovered: u64,
}

impl Report {
    /// Nothing was altered or lost. Leftovers of a crash (recorded or not) are not
    /// problems: no reader ever saw them.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn mb_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.bytes_hashed as f64 / 1e6 / self.seconds
        } else {
            0.0
        }
    }
}

/// Progress callbacks, so that the CLI can draw a bar and the server report a job.
pub trait Progress: Send + Sync {
    fn start(&self, _total_bytes: u64) {}
    fn advance(&self, _bytes: u64) {}
}

pub struct NoProgress;
impl Progress for NoProgress {}

#[derive(Debug, Clone)]
pub struct Options {
    /// Blobs hashed at once.
    pub parallelism: usize,
    /// Public keys (hex) trusted to sign checkpoints. Empty: a checkpoint's signature is
    /// only checked against the key it names.
    pub trusted_keys: Vec<String>,
    /// Signed checkpoints kept outside the store (`akte anchor`): the journal must still
    /// hold the entry each names, with the same hash.
    pub anchors: Vec<Anchor>,
    /// TSA certificates (`--tsa-ca`) a checkpoint's timestamp must chain to. Empty: a
    /// token is checked against the checkpoint and its own signer only.
    pub tsa_trusted: Vec<rustls_pki_types::CertificateDer<'static>>,
}

/// A checkpoint kept outside the store, and where it was read from.
#[derive(Debug, Clone)]
pub struct Anchor {
    pub source: String,
    pub checkpoint: crate::audit::journal::Checkpoint,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            parallelism: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
                .max(2),
            trusted_keys: Vec::new(),
            anchors: Vec::new(),
            tsa_trusted: Vec::new(),
        }
    }
}

/// A problem with a checkpoint's signature: bad, or by a key not trusted.
fn signature_problem(cp: &crate::audit::journal::Checkpoint, trusted: &[String]) -> Option<String> {
    let sig = cp.signature.as_ref()?;
    if cp.signature_valid() != Some(true) {
        return Some("signature does not verify (forged or altered)".into());
    }
    if !trusted.is_empty() && !trusted.contains(&sig.key) {
        return Some(format!(
            "signed by key {} (fingerprint {}), which is not a trusted checkpoint key",
            sig.key,
            crate::audit::signing::fingerprint(&sig.key)
        ));
    }
    None
}

/// Checks a checkpoint's timestamp token, if it has one: a problem when it does not
/// stamp this checkpoint, is not validly signed, or (with `--tsa-ca`) does not chain to
/// a trusted TSA.
fn check_stamp(
    checked: std::result::Result<crate::audit::timestamp::Stamp, String>,
    seq: u64,
    source: &str,
    report: &mut Report,
) -> Option<DateTime<Utc>> {
    match checked {
        Ok(s) => {
            report.checkpoints_stamped += 1;
            Some(s.time)
        }
        Err(why) => {
            report.problems.push(Problem::new(
                source.to_string(),
                format!("timestamp of checkpoint {seq}: {why}"),
            ));
            None
        }
    }
}

/// How far the clocks of the archive's nodes and of a TSA may disagree, and how long a
/// request authenticated before its token ended may take to be journaled.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// A checkpoint states its entry's time; a TSA that saw the checkpoint earlier than the
/// entry claims to have been written proves the entry's time false (post-dated, or the
/// journal rewritten after the stamp).
fn check_checkpoint_times(
    cp: &crate::audit::journal::Checkpoint,
    e: &JournalEntry,
    stamped: Option<DateTime<Utc>>,
    path: &str,
    report: &mut Report,
) {
    if cp.time != e.time {
        report.problems.push(Problem::mismatch(
            path,
            "checkpoint states another time than its entry",
            &e.time.to_rfc3339(),
            &cp.time.to_rfc3339(),
        ));
    }
    if let Some(t) = stamped
        && t + CLOCK_SKEW < e.time
    {
        report.problems.push(Problem::new(
            path,
            format!(
                "checkpoint {} was timestamped at {}, before its entry's time {}: the entry's time is false",
                cp.seq,
                t.to_rfc3339(),
                e.time.to_rfc3339()
            ),
        ));
    }
}

pub async fn verify(store: &Store, opts: &Options, progress: Arc<dyn Progress>) -> Result<Report> {
    let started = Instant::now();
    let mut report = Report::default();

    // 1. Inventory.
    let mut blobs: Vec<(String, u64)> = Vec::new();
    let mut revisions: BTreeMap<(ObjectKind, String), Vec<(u32, String)>> = BTreeMap::new();
    let mut journal: Vec<u64> = Vec::new();
    let mut prefixes = vec![keys::blobs_prefix(), keys::journal_prefix()];
    prefixes.extend(ObjectKind::ALL.map(keys::kind_prefix));
    for prefix in prefixes {
        let mut list = store.list(&prefix);
        while let Some(meta) = list.try_next().await? {
            report.objects += 1;
            let key = meta.location.to_string();
            match keys::classify(&meta.location) {
                KeyKind::Blob { sha256 } => blobs.push((sha256, meta.size)),
                KeyKind::Revision { kind, id, rev } => {
                    revisions.entry((kind, id)).or_default().push((rev, key))
                }
                KeyKind::Journal { seq } => journal.push(seq),
                KeyKind::Staging
                | KeyKind::PartyKey { .. }
                | KeyKind::Checkpoint { .. }
                | KeyKind::Stamp { .. }
                | KeyKind::Unknown => report
                    .problems
                    .push(Problem::new(key, "unexpected object in the archive")),
            }
        }
    }
    let blob_sizes: HashMap<String, u64> = blobs.iter().cloned().collect();
    let total: u64 = blobs.iter().map(|(_, s)| *s).sum();
    progress.start(total);

    // 2. Journal chain, and the checkpoints it must still reach.
    let Journaled {
        revisions: journaled,
        erased,
        recovered,
        recovered_blobs,
        recovered_keys,
        rotations,
        token_use,
    } = check_journal(store, &mut journal, &mut report).await?;
    // Keys linked to a trusted key by a journaled rotation (signed by both) are trusted.
    let trusted = crate::audit::signing::trusted_through(&opts.trusted_keys, &rotations);
    let mut cps = store.list(&keys::checkpoints_prefix());
    let mut stamps: BTreeMap<u64, String> = BTreeMap::new();
    let mut checkpointed: std::collections::BTreeSet<u64> = Default::default();
    while let Some(meta) = cps.try_next().await? {
        report.objects += 1;
        let path = meta.location.to_string();
        let seq = match keys::classify(&meta.location) {
            KeyKind::Checkpoint { seq } => seq,
            KeyKind::Stamp { seq } => {
                stamps.insert(seq, path);
                continue;
            }
            _ => {
                report
                    .problems
                    .push(Problem::new(path, "unexpected object in the archive"));
                continue;
            }
        };
        checkpointed.insert(seq);
        let cp: crate::audit::journal::Checkpoint = match store
            .get(&meta.location)
            .await
            .and_then(|b| codec::decode(&path, &b))
        {
            Ok(c) => c,
            Err(e) => {
                report.problems.push(Problem::new(path, e.to_string()));
                continue;
            }
        };
        if cp.seq != seq {
            report.problems.push(Problem::mismatch(
                &path,
                "checkpoint names another entry",
                &seq.to_string(),
                &cp.seq.to_string(),
            ));
            continue;
        }
        if let Some(what) = signature_problem(&cp, &trusted) {
            report
                .problems
                .push(Problem::new(path.clone(), format!("checkpoint {what}")));
        }
        if cp.signature.is_some() {
            report.checkpoints_signed += 1;
        }
        let stamp_key = keys::checkpoint_stamp(seq);
        let mut stamped = None;
        if let Some(token) = store.get_opt(&stamp_key).await? {
            let checked = cp.check_token(&token, &opts.tsa_trusted);
            stamped = check_stamp(checked, seq, stamp_key.as_ref(), &mut report);
        }
        let entry_key = keys::journal(seq);
        match store.get_opt(&entry_key).await? {
            None => report.problems.push(Problem::new(
                entry_key.to_string(),
                format!("journal entry missing: the journal was cut short before checkpoint {seq}"),
            )),
            Some(b) => match JournalEntry::decode(entry_key.as_ref(), &b) {
                Ok(e) if e.hash == cp.hash => {
                    check_checkpoint_times(&cp, &e, stamped, &path, &mut report)
                }
                Ok(e) => report.problems.push(Problem::mismatch(
                    entry_key.to_string(),
                    "journal entry differs from its checkpoint",
                    &cp.hash,
                    &e.hash,
                )),
                Err(_) => {} // already reported by the chain check
            },
        }
    }

    for (seq, path) in stamps {
        if !checkpointed.contains(&seq) {
            report.problems.push(Problem::new(
                path,
                format!("timestamp without its checkpoint: checkpoint {seq} was removed"),
            ));
        }
    }

    // Checkpoints kept outside the store: a journal cut back (and the records since
    // removed with it) passes every check above, but not this one.
    for a in &opts.anchors {
        let cp = &a.checkpoint;
        report.anchors += 1;
        if let Some(checked) = cp.stamp_check(&opts.tsa_trusted) {
            check_stamp(checked, cp.seq, &a.source, &mut report);
        }
        match signature_problem(cp, &trusted) {
            Some(what) => report
                .problems
                .push(Problem::new(a.source.clone(), format!("anchor {what}"))),
            None if cp.signature.is_none() => report.problems.push(Problem::new(
                a.source.clone(),
                "anchor is not signed: it proves nothing",
            )),
            None => {}
        }
        let entry_key = keys::journal(cp.seq);
        match store.get_opt(&entry_key).await? {
            None => report.problems.push(Problem::new(
                entry_key.to_string(),
                format!(
                    "journal entry missing: the journal was cut back before entry {} of {}, \
                     anchored in {}",
                    cp.seq, cp.time, a.source
                ),
            )),
            Some(b) => match JournalEntry::decode(entry_key.as_ref(), &b) {
                Ok(e) if e.hash == cp.hash => {}
                Ok(e) => report.problems.push(Problem::mismatch(
                    entry_key.to_string(),
                    format!(
                        "journal entry differs from the checkpoint anchored in {}",
                        a.source
                    ),
                    &cp.hash,
                    &e.hash,
                )),
                Err(_) => {} // already reported by the chain check
            },
        }
    }

    // 3. Revision chains, and each revision against its journal entry.
    let mut seen: std::collections::HashSet<RevKey> = std::collections::HashSet::new();
    let mut absent = Absent::default();
    absent.rules.token_use = token_use;
    let mut key_list = store.list(&keys::keys_prefix());
    while let Some(meta) = key_list.try_next().await? {
        report.objects += 1;
        let path = meta.location.to_string();
        match store.get(&meta.location).await {
            Ok(bytes) => {
                report.bytes_hashed += bytes.len() as u64;
                match crate::store::crypt::parse_key_file(&path, &bytes) {
                    Ok((id, k)) if keys::party_key(&id) == meta.location => {
                        absent.keys.insert(id, k);
                    }
                    Ok((id, _)) => report.problems.push(Problem::mismatch(
                        &path,
                        "key file names another owner",
                        &path,
                        &id,
                    )),
                    // Decided once the chains are read: a torn key of an object that
                    // was never committed is a crash leftover, else corruption.
                    Err(e) => {
                        if let KeyKind::PartyKey { party } = keys::classify(&meta.location) {
                            absent.torn_keys.push((party, path.clone(), e.to_string()));
                        } else {
                            report.problems.push(Problem::new(&path, e.to_string()));
                        }
                    }
                }
            }
            Err(e) => report
                .problems
                .push(Problem::new(&path, format!("cannot read: {e}"))),
        }
    }
    for ((kind, id), mut revs) in revisions {
        revs.sort();
        for (rev, _) in &revs {
            seen.insert((kind, id.clone(), *rev));
        }
        check_chain(
            store,
            kind,
            &id,
            &revs,
            &journaled,
            &recovered,
            &blob_sizes,
            &mut absent,
            &mut report,
        )
        .await?;
    }
    for (owner, path, e) in std::mem::take(&mut absent.torn_keys) {
        let (kind, id) = keys::key_owner(&owner);
        let committed = journaled.keys().any(|(k, i, _)| *k == kind && i == id);
        if committed {
            report.problems.push(Problem::new(&path, e));
        } else if recovered_keys.contains(&owner) {
            report.leftovers_recovered += 1;
        } else {
            report.warnings.push(Problem::new(
                &path,
                format!("{e}; its owner was never committed (a torn crash leftover)"),
            ));
        }
    }
    for (record, key) in std::mem::take(&mut absent.keyless) {
        if !absent.disposed_records.contains(&record) {
            report.problems.push(Problem::new(
                keys::party_key(&format!("record-{record}")).to_string(),
                format!("key sealing the metadata of {key} is missing (only disposal removes it)"),
            ));
        }
    }
    for (sha, key, record) in std::mem::take(&mut absent.missing) {
        if !(absent.disposed_records.contains(&record) && absent.deleted.contains(&sha)) {
            let blob = keys::blob(&sha);
            let hidden = hidden_by_marker(store, &blob).await?;
            report.problems.push(Problem::new(
                blob.to_string(),
                format!("content of {key} is missing{hidden}"),
            ));
        }
    }
    // Every party's data key must exist: personal data are sealed with it, and only a
    // journaled erasure may remove it.
    let mut with_key = std::collections::HashSet::new();
    let mut list = store.list(&keys::keys_prefix());
    while let Some(meta) = list.try_next().await? {
        if let KeyKind::PartyKey { party } = keys::classify(&meta.location) {
            with_key.insert(party);
        }
    }
    let mut parties: Vec<&String> = journaled
        .keys()
        .filter(|(k, _, _)| *k == ObjectKind::Party)
        .map(|(_, id, _)| id)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut still_keyed: Vec<&String> = erased.iter().filter(|p| with_key.contains(*p)).collect();
    still_keyed.sort();
    for p in still_keyed {
        report.problems.push(Problem::new(
            keys::party_key(p).to_string(),
            "party erased by a journaled erasure, but its data key is still in the store: its \
             personal data can be read (a crash between erasure and key destruction leaves \
             this until the next start of a writer, which destroys the key; otherwise the key \
             was restored)",
        ));
    }
    parties.retain(|p| !with_key.contains(*p) && !erased.contains(*p));
    for p in parties {
        report.problems.push(Problem::new(
            keys::party_key(p).to_string(),
            "data key of the party is missing (not removed by a journaled erasure)",
        ));
    }
    // The rules a forger with the store's keys and the code would still have to keep.
    std::mem::take(&mut absent.rules).check(&mut report);
    let mut lost: Vec<&RevKey> = journaled.keys().filter(|k| !seen.contains(*k)).collect();
    lost.sort();
    for (kind, id, rev) in lost {
        let key = keys::revision(*kind, id, *rev);
        let hidden = hidden_by_marker(store, &key).await?;
        report.problems.push(Problem::new(
            key.to_string(),
            format!("journaled revision is missing from the store{hidden}"),
        ));
    }

    // 4. Blobs, re-hashed in parallel.
    let mut tasks = JoinSet::new();
    let mut pending = blobs.into_iter();
    let mut in_flight = 0;
    loop {
        while in_flight < opts.parallelism.max(1) {
            let Some((sha, size)) = pending.next() else {
                break;
            };
            let store = store.clone();
            let progress = progress.clone();
            tasks.spawn(async move {
                let key = keys::blob(&sha);
                let r = store.sha256_of(&key).await;
                progress.advance(size);
                (key.to_string(), sha, size, r)
            });
            in_flight += 1;
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        in_flight -= 1;
        let (key, sha, size, r) = done.map_err(|e| Error::Internal(format!("verify task: {e}")))?;
        report.blobs += 1;
        match r {
            Ok((found, n)) => {
                report.bytes_hashed += n;
                if found != sha {
                    let p = Problem::mismatch(
                        key,
                        "blob content does not match its hash",
                        &sha,
                        &found,
                    );
                    if absent.referenced.contains(&sha) {
                        report.problems.push(p);
                    } else if recovered_blobs.contains(&sha) {
                        // A torn write of a batch that never committed, recorded as such.
                        report.leftovers_recovered += 1;
                    } else {
                        report.warnings.push(Problem {
                            what: "blob content does not match its hash; no committed record \
                                   uses it (a torn crash leftover)"
                                .into(),
                            ..p
                        });
                    }
                } else if n != size {
                    report.problems.push(Problem::mismatch(
                        key,
                        "blob size changed while reading",
                        &size.to_string(),
                        &n.to_string(),
                    ));
                }
            }
            Err(e) => report
                .problems
                .push(Problem::new(key, format!("cannot read blob: {e}"))),
        }
    }

    // Damaged blob bytes that a fresh upload replaced: the archive is whole again, but
    // the damage happened and an auditor should see it.
    let mut q = store.list(&keys::quarantine_prefix());
    while let Some(meta) = q.try_next().await? {
        report.warnings.push(Problem::new(
            meta.location.to_string(),
            "a blob was found damaged and replaced by a fresh upload of its bytes; the \
             damaged copy is kept here as evidence",
        ));
    }

    report.seconds = started.elapsed().as_secs_f64();
    report.problems.sort_by(|a, b| a.key.cmp(&b.key));
    report.warnings.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(report)
}

/// What the journal says, as verification needs it.
struct Journaled {
    /// Every committed revision with the digest its entry names.
    revisions: HashMap<RevKey, String>,
    /// Parties erased by a journaled erasure.
    erased: std::collections::HashSet<String>,
    /// Revisions recovery recorded as never-committed leftovers.
    recovered: std::collections::HashSet<RevKey>,
    /// Blobs recovery recorded as torn leftovers.
    recovered_blobs: std::collections::HashSet<String>,
    /// Key files (by key id) recovery recorded as torn leftovers.
    recovered_keys: std::collections::HashSet<String>,
    /// Valid signing key rotations, in journal order.
    rotations: Vec<crate::audit::signing::Rotation>,
    /// How each token acted.
    token_use: HashMap<String, TokenUse>,
}

/// The person and token id of an actor that acted with a token (`alice via
/// token:name:id`).
fn token_actor(actor: &str) -> Option<(&str, &str)> {
    let (person, rest) = actor.split_once(crate::access::PERSON_SEP)?;
    let (_, id) = rest.rsplit_once(':')?;
    Some((person, id))
}

/// A revision as journal subjects name it: kind, id, revision number.
type RevKey = (ObjectKind, String, u32);

/// Checks the journal and returns, for every journaled revision, the digest it committed.
async fn check_journal(store: &Store, seqs: &mut [u64], report: &mut Report) -> Result<Journaled> {
    seqs.sort_unstable();
    let mut out = Journaled {
        revisions: HashMap::new(),
        erased: Default::default(),
        recovered: Default::default(),
        recovered_blobs: Default::default(),
        recovered_keys: Default::default(),
        rotations: Vec::new(),
        token_use: HashMap::new(),
    };
    let Some(&max) = seqs.last() else {
        return Ok(out);
    };
    let present: std::collections::HashSet<u64> = seqs.iter().copied().collect();
    // Tokens a `token.create` entry created so far.
    let mut tokens_created: std::collections::HashSet<String> = Default::default();
    let reads = futures::stream::iter(1..=max)
        .map(|seq| {
            let store = store.clone();
            let here = present.contains(&seq);
            async move {
                if !here {
                    return (seq, None);
                }
                let key = keys::journal(seq);
                (seq, Some(store.get(&key).await))
            }
        })
        .buffered(32);
    futures::pin_mut!(reads);
    // Hash of the previous entry as stored, when it could be read.
    let mut prev: Option<String> = Some(ZERO_HASH.to_string());
    while let Some((seq, got)) = reads.next().await {
        let key = keys::journal(seq).to_string();
        let bytes = match got {
            None => {
                report.problems.push(Problem::new(
                    key,
                    "journal entry missing (gap in the sequence)",
                ));
                prev = None;
                continue;
            }
            Some(Err(e)) => {
                report
                    .problems
                    .push(Problem::new(key, format!("cannot read: {e}")));
                prev = None;
                continue;
            }
            Some(Ok(b)) => b,
        };
        report.journal_entries += 1;
        report.bytes_hashed += bytes.len() as u64;
        let entry = match JournalEntry::decode(&key, &bytes) {
            Ok(e) => e,
            Err(e) => {
                report.problems.push(Problem::new(key, e.to_string()));
                prev = None;
                continue;
            }
        };
        if entry.seq != seq {
            report.problems.push(Problem::mismatch(
                &key,
                "entry carries another sequence number (moved or reordered)",
                &seq.to_string(),
                &entry.seq.to_string(),
            ));
        }
        if let Some(p) = &prev
            && *p != entry.prev_hash
        {
            report.problems.push(Problem::mismatch(
                &key,
                "prev_hash does not link to the previous entry",
                p,
                &entry.prev_hash,
            ));
        }
        match entry.compute_hash() {
            Ok(h) if h == entry.hash => {}
            Ok(h) => report.problems.push(Problem::mismatch(
                &key,
                "entry hash does not match its content",
                &h,
                &entry.hash,
            )),
            Err(e) => report.problems.push(Problem::new(&key, e.to_string())),
        }
        if entry.action == crate::audit::signing::ROTATE_ACTION {
            match entry
                .detail
                .as_deref()
                .and_then(|d| serde_json::from_str::<crate::audit::signing::Rotation>(d).ok())
            {
                Some(r) if r.valid() => out.rotations.push(r),
                _ => report.problems.push(Problem::new(
                    &key,
                    format!(
                        "entry {}: a signing key rotation not signed by both keys it names",
                        entry.seq
                    ),
                )),
            }
        }
        if entry.action == "token.create" {
            for sub in entry.subjects.iter().filter(|s| s.kind == "token") {
                tokens_created.insert(sub.id.clone());
            }
        }
        if let Some((person, token)) = token_actor(&entry.actor) {
            if !tokens_created.contains(token) {
                report.problems.push(Problem::new(
                    &key,
                    format!(
                        "entry {} is by token {token}, which no earlier entry created: an actor that did not exist",
                        entry.seq
                    ),
                ));
            }
            let u = out.token_use.entry(token.to_string()).or_default();
            u.persons.insert(person.to_string());
            u.last = Some((entry.seq, entry.time));
        }
        if entry.action.ends_with(".refused") && !entry.written().is_empty() {
            report.problems.push(Problem::new(
                &key,
                format!(
                    "entry {} is journaled as refused ({}), but commits revisions",
                    entry.seq, entry.action
                ),
            ));
        }
        if entry.action == "party.erase" {
            out.erased
                .extend(entry.subjects.iter().map(|s| s.id.clone()));
        }
        for a in entry.set_aside() {
            match a {
                SetAside::Revision(kind, id, rev) => {
                    out.recovered.insert((kind, id.to_string(), rev));
                }
                SetAside::Blob(sha) => {
                    out.recovered_blobs.insert(sha.to_string());
                }
                SetAside::Key(k) => {
                    out.recovered_keys.insert(k.to_string());
                }
            }
        }
        // An entry that wrote revisions names them with the digests of their bytes (one in
        // `payload_digest`, or several in a group commit); reads and other acts name none.
        for (s, rev, d) in entry.written() {
            if let Some(kind) = ObjectKind::from_subject(&s.kind) {
                out.revisions
                    .insert((kind, s.id.clone(), rev), d.to_string());
            }
        }
        prev = Some(entry.hash);
    }
    Ok(out)
}

/// The fields every revisioned object shares (the chain).
struct RevHeader {
    id: String,
    rev: u32,
    prev_hash: Option<String>,
}

/// What verification needs from a decoded revision.
struct Decoded {
    header: RevHeader,
    /// Records: the content reference and the tombstone, if any.
    content: Option<(crate::record::ContentRef, Option<crate::record::Tombstone>)>,
    /// A sealed block and the id of the key that should open it.
    sealed: Option<(String, crate::store::crypt::Sealed)>,
    /// What the rule checks read (records, disposals, holds).
    facts: Option<Facts>,
}

/// A revision as the rule checks see it.
enum Facts {
    Record(Box<RecordRevision>),
    Disposal(Box<crate::disposal::DisposalRevision>),
    Hold(Box<crate::disposal::hold::HoldRevision>),
    Token(Box<crate::access::TokenRevision>),
}

impl Decoded {
    fn chain(id: String, rev: u32, prev_hash: Option<String>) -> Decoded {
        Decoded {
            header: RevHeader { id, rev, prev_hash },
            content: None,
            sealed: None,
            facts: None,
        }
    }
}

/// What the rules of the archive need across objects, gathered while the chains are read:
/// bounded by the number of disposals, holds and disposed records, not by the archive.
#[derive(Default)]
struct Rules {
    /// The latest revision of every disposal request and every hold.
    disposals: HashMap<String, crate::disposal::DisposalRevision>,
    holds: HashMap<String, crate::disposal::hold::HoldRevision>,
    /// Every tombstone: its revision key, and the record's last live revision.
    tombstones: Vec<(String, crate::record::Tombstone, Option<RecordRevision>)>,
    /// The latest revision of every token.
    tokens: HashMap<String, crate::access::TokenRevision>,
    /// How each token was used in the journal.
    token_use: HashMap<String, TokenUse>,
}

/// A token's use as journal actors show it: the persons it acted for and its last entry.
#[derive(Debug, Default)]
struct TokenUse {
    persons: std::collections::BTreeSet<String>,
    last: Option<(u64, DateTime<Utc>)>,
}

impl Rules {
    /// The rules a tombstone must satisfy (DESIGN §2.5): an approved disposal request
    /// that lists the record, requested and approved by two different persons, approved
    /// after the record's retention ended, with no hold covering it at that moment.
    fn check(self, report: &mut Report) {
        // Every token that acted existed then: created before (checked while the journal
        // was read), for its own person, and not used after it was revoked or expired.
        let mut used: Vec<(&String, &TokenUse)> = self.token_use.iter().collect();
        used.sort_by_key(|(id, _)| *id);
        for (id, u) in used {
            let Some(t) = self.tokens.get(id) else {
                continue; // named when the journal was read
            };
            let own = t.person();
            for p in u.persons.iter().filter(|p| **p != own) {
                report.problems.push(Problem::new(
                    keys::revision(ObjectKind::Token, id, t.rev).to_string(),
                    format!("token {id} of {own} appears in the journal acting for {p}"),
                ));
            }
            let Some((seq, at)) = u.last else { continue };
            let ended = [t.revoked_at, t.expires_at].into_iter().flatten().min();
            if let Some(end) = ended
                && at > end + CLOCK_SKEW
            {
                report.problems.push(Problem::new(
                    keys::journal(seq).to_string(),
                    format!(
                        "entry {seq} at {} is by token {id}, which ended at {} (revoked or expired): an actor that no longer existed",
                        at.to_rfc3339(),
                        end.to_rfc3339()
                    ),
                ));
            }
        }

        for (key, t, live) in &self.tombstones {
            let mut bad = |what: String| report.problems.push(Problem::new(key, what));
            let Some(d) = self.disposals.get(&t.disposal) else {
                bad(format!(
                    "tombstone names disposal {}, which the archive does not hold (a fabricated tombstone?)",
                    t.disposal
                ));
                continue;
            };
            let Some(live) = live else {
                bad("tombstone without a live revision before it".into());
                continue;
            };
            if !d.records.contains(&live.id) {
                bad(format!("disposal {} does not list this record", d.id));
            }
            let (Some(approver), Some(at)) = (&d.approved_by, d.approved_at) else {
                bad(format!("disposal {} was never approved", d.id));
                continue;
            };
            let (p1, p2) = (
                crate::access::person_of(&d.requested_by),
                crate::access::person_of(approver),
            );
            if p1 == p2 {
                bad(format!(
                    "disposal {} was requested and approved by the same person ({p1}): four eyes are two persons",
                    d.id
                ));
            }
            if at.date_naive() <= live.retention.retain_until {
                bad(format!(
                    "disposed on {} before its retention ended ({})",
                    at.date_naive(),
                    live.retention.retain_until
                ));
            }
            for h in self.holds.values() {
                let in_force =
                    h.placed_at <= at && h.released_at.is_none_or(|released| released > at);
                let mut as_placed = h.clone();
                as_placed.active = true;
                if in_force && as_placed.covers(live, &|p: &str| p.to_string()) {
                    bad(format!(
                        "disposed on {} while hold {} ({}) covered it",
                        at.date_naive(),
                        h.id,
                        h.name
                    ));
                }
            }
        }
    }
}

/// Full, canonical decode of a revision of `kind`.
fn decode_full(kind: ObjectKind, key: &str, bytes: &[u8]) -> Result<Decoded> {
    Ok(match kind {
        ObjectKind::Record => {
            let mut r = RecordRevision::decode(key, bytes)?;
            Decoded {
                sealed: r.sealed.take().map(|s| (format!("record-{}", r.id), s)),
                content: Some((r.content.clone(), r.tombstone.clone())),
                header: RevHeader {
                    id: r.id.clone(),
                    rev: r.rev,
                    prev_hash: r.prev_hash.clone(),
                },
                facts: Some(Facts::Record(Box::new(r))),
            }
        }
        ObjectKind::Party => {
            let p = crate::party::PartyRevision::decode(key, bytes)?;
            Decoded {
                facts: None,
                sealed: p.personal.map(|s| (p.id.clone(), s)),
                content: None,
                header: RevHeader {
                    id: p.id,
                    rev: p.rev,
                    prev_hash: p.prev_hash,
                },
            }
        }
        ObjectKind::Token => {
            let t = crate::access::TokenRevision::decode(key, bytes)?;
            let mut d = Decoded::chain(t.id.clone(), t.rev, t.prev_hash.clone());
            d.facts = Some(Facts::Token(Box::new(t)));
            d
        }
        ObjectKind::Case => {
            let c = crate::case::CaseRevision::decode(key, bytes)?;
            Decoded::chain(c.id, c.rev, c.prev_hash)
        }
        ObjectKind::Hold => {
            let h = crate::disposal::hold::HoldRevision::decode(key, bytes)?;
            let mut d = Decoded::chain(h.id.clone(), h.rev, h.prev_hash.clone());
            d.facts = Some(Facts::Hold(Box::new(h)));
            d
        }
        ObjectKind::Disposal => {
            let r = crate::disposal::DisposalRevision::decode(key, bytes)?;
            let mut d = Decoded::chain(r.id.clone(), r.rev, r.prev_hash.clone());
            d.facts = Some(Facts::Disposal(Box::new(r)));
            d
        }
    })
}

/// Blob references that found no blob, settled once every record has been read: a blob
/// is legitimately absent when a disposal deleted it and only disposed records use it.
#[derive(Default)]
struct Absent {
    /// Data keys by id (`<party-id>`, `record-<record-id>`).
    keys: HashMap<String, [u8; 32]>,
    /// Record revisions sealed with a key that is absent: (record, revision key).
    keyless: Vec<(String, String)>,
    missing: Vec<(String, String, String)>,
    disposed_records: std::collections::HashSet<String>,
    deleted: std::collections::HashSet<String>,
    /// Blobs some committed record revision names.
    referenced: std::collections::HashSet<String>,
    /// Key files that do not parse: (key id, path, error).
    torn_keys: Vec<(String, String, String)>,
    /// What the rule checks need across objects.
    rules: Rules,
}

#[allow(clippy::too_many_arguments)]
async fn check_chain(
    store: &Store,
    kind: ObjectKind,
    id: &str,
    revs: &[(u32, String)],
    journaled: &HashMap<RevKey, String>,
    recovered: &std::collections::HashSet<RevKey>,
    blob_sizes: &HashMap<String, u64>,
    absent: &mut Absent,
    report: &mut Report,
) -> Result<()> {
    // The chain runs through the committed revisions only; leftovers of a crash sit
    // beside it (their numbers are taken, their bytes are no part of the archive).
    let mut prev_digest: Option<String> = None;
    let mut first = true;
    let mut uncommitted: std::collections::HashSet<String> = Default::default();
    // The record's latest committed revision that is not a tombstone.
    let mut last_live: Option<RecordRevision> = None;
    for (rev, key) in revs {
        report.revisions += 1;
        let bytes = match store.get(&keys::revision(kind, id, *rev)).await {
            Ok(b) => b,
            Err(e) => {
                report
                    .problems
                    .push(Problem::new(key, format!("cannot read: {e}")));
                prev_digest = None;
                first = false;
                continue;
            }
        };
        report.bytes_hashed += bytes.len() as u64;
        let digest = codec::sha256_hex(&bytes);
        let rk = (kind, id.to_string(), *rev);
        match journaled.get(&rk) {
            Some(d) if *d == digest => {}
            Some(d) => report.problems.push(Problem::mismatch(
                key,
                "revision differs from the digest its journal entry committed",
                d,
                &digest,
            )),
            None => {
                // No crash leaves two uncommitted revisions in a row: a writer builds only
                // on a committed one. A leftover on a leftover means entries were removed.
                if let Ok(d) = decode_full(kind, key, &bytes)
                    && let Some(h) = &d.header.prev_hash
                    && uncommitted.contains(h)
                {
                    report.problems.push(Problem::new(
                        key,
                        "revision without a journal entry builds on another one without: \
                         no crash leaves that behind (journal entries removed?)",
                    ));
                }
                if recovered.contains(&rk) {
                    report.leftovers_recovered += 1;
                } else {
                    report.unjournaled.push(Unjournaled {
                        kind: kind.subject().to_string(),
                        id: id.to_string(),
                        rev: *rev,
                        key: key.clone(),
                        digest: digest.clone(),
                    });
                    report.warnings.push(Problem::new(
                        key,
                        "revision has no journal entry: a crash leftover, invisible to every \
                         reader (the next start of the server or of any writing command \
                         records it)",
                    ));
                }
                uncommitted.insert(digest);
                continue;
            }
        }
        match decode_full(kind, key, &bytes) {
            Err(e) => report.problems.push(Problem::new(key, e.to_string())),
            Ok(Decoded {
                header,
                content,
                sealed,
                facts,
            }) => {
                match facts {
                    Some(Facts::Record(r)) => {
                        if let Some(t) = &r.tombstone {
                            absent.rules.tombstones.push((
                                key.clone(),
                                t.clone(),
                                last_live.take(),
                            ));
                        } else {
                            // Retention only ever grows (DESIGN §2.4).
                            if let Some(before) = &last_live
                                && r.retention.retain_until < before.retention.retain_until
                            {
                                report.problems.push(Problem::mismatch(
                                    key,
                                    "retention shortened (a record's retention only ever grows)",
                                    &before.retention.retain_until.to_string(),
                                    &r.retention.retain_until.to_string(),
                                ));
                            }
                            last_live = Some(*r);
                        }
                    }
                    Some(Facts::Disposal(d)) => {
                        absent.rules.disposals.insert(d.id.clone(), *d);
                    }
                    Some(Facts::Hold(h)) => {
                        absent.rules.holds.insert(h.id.clone(), *h);
                    }
                    Some(Facts::Token(t)) => {
                        absent.rules.tokens.insert(t.id.clone(), *t);
                    }
                    None => {}
                }
                if let Some((kid, block)) = &sealed {
                    match absent.keys.get(kid) {
                        Some(k) if crate::store::crypt::open(k, kid, block).is_err() => {
                            report.problems.push(Problem::new(
                                keys::party_key(kid).to_string(),
                                format!("data key does not open the sealed data of {key}"),
                            ));
                        }
                        Some(_) => {}
                        None if kind == ObjectKind::Record => {
                            absent.keyless.push((id.to_string(), key.clone()))
                        }
                        None => {}
                    }
                }
                if header.id != id || header.rev != *rev {
                    report.problems.push(Problem::mismatch(
                        key,
                        "revision names another object or number",
                        &format!("{id}/{rev}"),
                        &format!("{}/{}", header.id, header.rev),
                    ));
                }
                if header.prev_hash.as_deref() != prev_digest.as_deref()
                    && (first || prev_digest.is_some())
                {
                    let what = match &header.prev_hash {
                        Some(h) if uncommitted.contains(h) => {
                            "prev_hash names a revision that has no journal entry (was its \
                             entry removed?)"
                        }
                        _ => "prev_hash does not match the predecessor revision",
                    };
                    report.problems.push(Problem::mismatch(
                        key,
                        what,
                        prev_digest.as_deref().unwrap_or("none"),
                        header.prev_hash.as_deref().unwrap_or("none"),
                    ));
                }
                if let Some((c, tomb)) = content {
                    if let Some(t) = tomb {
                        absent.disposed_records.insert(id.to_string());
                        absent.deleted.extend(t.blobs_deleted.iter().cloned());
                    }
                    absent.referenced.insert(c.sha256.clone());
                    match blob_sizes.get(&c.sha256) {
                        None => {
                            absent
                                .missing
                                .push((c.sha256.clone(), key.clone(), id.to_string()))
                        }
                        Some(size) if *size != c.size => report.problems.push(Problem::mismatch(
                            keys::blob(&c.sha256).to_string(),
                            format!("content size differs from {key}"),
                            &c.size.to_string(),
                            &size.to_string(),
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
        first = false;
        prev_digest = Some(digest);
    }
    if kind == ObjectKind::Record
        && revs
            .iter()
            .any(|(r, _)| journaled.contains_key(&(kind, id.to_string(), *r)))
    {
        report.records += 1;
    }
    Ok(())
}

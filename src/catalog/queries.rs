//! The catalog's queries: lookups, party lists, contact and identifier matching, the
//! party file, record scopes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{Datelike, NaiveDate};

use crate::case::{CaseRevision, CaseStatus};

use super::Catalog;
use super::disk::By;
use super::state::*;
use super::views::*;

/// Other documents listed in a party file (the rest are counted).
const OTHER_DOCUMENTS: usize = 50;

impl Catalog {
    pub async fn party(&self, id: &str) -> Option<PartyBrief> {
        self.state.read().await.parties.get(id).cloned()
    }

    pub async fn case(&self, id: &str) -> Option<CaseBrief> {
        let st = self.state.read().await;
        st.cases.get(id).map(|c| self.case_brief(&st, c))
    }

    fn case_brief(&self, st: &State, c: &CaseRevision) -> CaseBrief {
        st.case_brief(c, self.read(|d| d.ids(By::Case, &c.id)).len())
    }

    /// Record ids linked to any of `parties`, ascending.
    fn ids_of(&self, parties: &[String]) -> BTreeSet<String> {
        parties
            .iter()
            .flat_map(|p| self.read(|d| d.ids(By::Party, p)))
            .collect()
    }

    /// The summaries of the records linked to any of `parties`, each once, in id order.
    fn party_briefs(&self, parties: &[String]) -> Vec<RecordBrief> {
        let mut out: Vec<RecordBrief> = parties
            .iter()
            .flat_map(|p| self.read(|d| d.party_records(p)))
            .collect();
        if parties.len() > 1 {
            out.sort_by(|a, b| a.id.cmp(&b.id));
            out.dedup_by(|a, b| a.id == b.id);
        }
        out
    }

    /// The summaries of `ids` the catalog holds.
    fn briefs<'a>(&self, ids: impl IntoIterator<Item = &'a String>) -> Vec<RecordBrief> {
        let ids: Vec<&str> = ids.into_iter().map(String::as_str).collect();
        self.read(|d| d.records(&ids))
    }

    /// The surviving party for `id` (itself unless merged).
    pub async fn resolve(&self, id: &str) -> String {
        self.state.read().await.resolve(id)
    }

    pub async fn counts(&self) -> (usize, usize, usize) {
        let st = self.state.read().await;
        let records = self.read(|d| d.len()) as usize;
        (st.parties.len(), records, st.cases.len())
    }

    /// Parties whose indexed identifier equals `term` (`vat:DE…`, `customer:4711`, …).
    pub async fn find(&self, term: &str) -> Vec<String> {
        let st = self.state.read().await;
        let mut v: Vec<String> = st
            .index
            .get(term)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    pub async fn list(&self, f: &PartyFilter) -> Vec<PartyBrief> {
        let st = self.state.read().await;
        let limit = if f.limit == 0 { 100 } else { f.limit };
        let wanted = |p: &PartyBrief| {
            (f.include_merged || p.merged_into.is_none())
                && f.role
                    .as_ref()
                    .is_none_or(|r| p.data.roles.iter().any(|x| &x.role == r))
        };
        let mut out = Vec::new();
        if let Some(ident) = &f.identifier {
            let mut ids: BTreeSet<&String> = BTreeSet::new();
            if let Some(s) = st.index.get(ident) {
                ids.extend(s.iter());
            }
            for (term, s) in st.index.iter() {
                if term.split_once(':').is_some_and(|(_, v)| v == ident) {
                    ids.extend(s.iter());
                }
            }
            for id in ids {
                if let Some(p) = st.parties.get(id)
                    && wanted(p)
                    && f.name_prefix
                        .as_ref()
                        .is_none_or(|n| fold(&p.data.name).starts_with(&fold(n)))
                {
                    out.push(p.clone());
                }
            }
            out.truncate(limit);
            return out;
        }
        let prefix = f.name_prefix.as_deref().map(fold).unwrap_or_default();
        // A name has up to two keys (umlauts spelled out, umlauts plain): one hit each.
        let mut seen: HashSet<&String> = HashSet::new();
        for (name, id) in st.names.range((prefix.clone(), String::new())..) {
            if !name.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            if let Some(p) = st.parties.get(id)
                && wanted(p)
                && seen.insert(id)
            {
                out.push(p.clone());
            }
        }
        // Listed by name, as before.
        out.sort_by(|a, b| {
            fold(&a.data.name)
                .cmp(&fold(&b.data.name))
                .then(a.id.cmp(&b.id))
        });
        out
    }

    /// Matches email addresses against party contacts: an exact address first, else the
    /// address's domain. Each piece of evidence yields the parties it points to; more
    /// than one is ambiguous and left to a human.
    pub async fn match_emails(&self, addresses: &[String]) -> Vec<Match> {
        let st = self.state.read().await;
        let mut out = Vec::new();
        for a in addresses {
            let a = a.trim().to_ascii_lowercase();
            let live = |s: Option<&HashSet<String>>| -> Vec<String> {
                let mut v: Vec<String> = s
                    .map(|s| {
                        s.iter()
                            .map(|id| st.resolve(id))
                            .collect::<BTreeSet<_>>()
                            .into_iter()
                            .collect()
                    })
                    .unwrap_or_default();
                v.sort();
                v
            };
            let exact = live(st.index.get(&format!("email:{a}")));
            if !exact.is_empty() {
                out.push(Match {
                    reason: format!("email address {a} is a contact of the party"),
                    evidence: a.clone(),
                    parties: exact,
                });
                continue;
            }
            if let Some((_, dom)) = a.split_once('@') {
                let by_domain = live(st.index.get(&format!("domain:{dom}")));
                if !by_domain.is_empty() {
                    out.push(Match {
                        reason: format!("domain {dom} of {a} is a domain of the party"),
                        evidence: a.clone(),
                        parties: by_domain,
                    });
                }
            }
        }
        out
    }

    /// Finds party identifiers (VAT IDs, customer/supplier numbers and other indexed
    /// numbers) among the words of `text`. In a title or file name any known number
    /// counts; in running text (`labelled`) only a VAT ID, or a number right after a
    /// label that says what it is ("Kundennummer 10042", "Lieferanten-Nr.: 7001") —
    /// a bare number there is as likely an amount or a date.
    pub async fn match_identifiers(&self, text: &str, labelled: bool) -> Vec<Match> {
        let st = self.state.read().await;
        let mut out: Vec<Match> = Vec::new();
        for (w, label) in numbered_words(text) {
            if w.len() < 3 {
                continue;
            }
            let vat = w.to_ascii_uppercase();
            let mut hits: BTreeMap<String, String> = BTreeMap::new();
            if let Some(ids) = st.index.get(&format!("vat:{vat}")) {
                for id in ids {
                    hits.insert(st.resolve(id), format!("VAT ID {vat}"));
                }
            }
            if !labelled || label {
                for role in ["customer", "supplier"] {
                    if let Some(ids) = st.index.get(&format!("{role}:{w}")) {
                        for id in ids {
                            hits.insert(st.resolve(id), format!("{role} number {w}"));
                        }
                    }
                }
            }
            if hits.is_empty() || out.iter().any(|m| m.evidence == w) {
                continue;
            }
            let reason = if hits.len() == 1 {
                format!(
                    "{} found in the record's {}",
                    hits.values().next().map(String::as_str).unwrap_or_default(),
                    if labelled { "text" } else { "metadata" }
                )
            } else {
                format!("{w} names {} parties", hits.len())
            };
            out.push(Match {
                evidence: w.to_string(),
                parties: hits.into_keys().collect(),
                reason,
            });
        }
        out
    }

    /// The party file. `page` counts from 1, as everywhere (0 is read as 1).
    pub async fn file(
        &self,
        id: &str,
        today: NaiveDate,
        page: usize,
        per_page: usize,
    ) -> Option<PartyFile> {
        let st = self.state.read().await;
        let sid = st.resolve(id);
        let party = st.parties.get(&sid)?.clone();
        let family = st.family(&sid);
        let owned = self.party_briefs(&family);
        let mut records: Vec<&RecordBrief> = owned.iter().collect();
        records.sort_by(|a, b| b.date.cmp(&a.date).then(b.archived_at.cmp(&a.archived_at)));

        let mut counts_by_class: BTreeMap<String, usize> = BTreeMap::new();
        for r in &records {
            *counts_by_class.entry(r.class.clone()).or_default() += 1;
        }
        let is_communication = |r: &RecordBrief| {
            COMMUNICATION.contains(&r.class.as_str()) || r.media_type == "message/rfc822"
        };
        let communication: Vec<&&RecordBrief> =
            records.iter().filter(|r| is_communication(r)).collect();
        // A conversation's messages stay together: each at the place of its newest.
        let mut sizes: HashMap<u64, usize> = HashMap::new();
        for r in &communication {
            if let Some(k) = r.thread_key {
                *sizes.entry(k).or_default() += 1;
            }
        }
        let communication: Vec<&&RecordBrief> = {
            let mut groups: Vec<Vec<&&RecordBrief>> = Vec::new();
            let mut at: HashMap<u64, usize> = HashMap::new();
            for r in communication {
                match r
                    .thread_key
                    .filter(|k| sizes.get(k).is_some_and(|n| *n > 1))
                {
                    Some(k) => match at.get(&k) {
                        Some(&i) => groups[i].push(r),
                        None => {
                            at.insert(k, groups.len());
                            groups.push(vec![r]);
                        }
                    },
                    None => groups.push(vec![r]),
                }
            }
            groups.into_iter().flatten().collect()
        };
        let others: Vec<&&RecordBrief> = records
            .iter()
            .filter(|r| !is_communication(r) && !TRANSACTIONS.contains(&r.class.as_str()))
            .collect();
        let other_documents = Timeline {
            total: others.len(),
            items: others
                .iter()
                .take(OTHER_DOCUMENTS)
                .map(|r| (**r).clone())
                .collect(),
            page: 1,
            per_page: OTHER_DOCUMENTS,
        };
        let per_page = per_page.clamp(1, 500);
        // The same message received twice with other bytes is two records; the later
        // names the first, so that the file does not show two identical lines unexplained.
        let variant = |r: &RecordBrief| {
            let mut b = r.clone();
            b.variant_of = r
                .message_id
                .as_ref()
                .and_then(|m| self.read(|d| d.ids(By::MessageId, m)).into_iter().next())
                .filter(|first| *first != r.id);
            let role_here = |role: &str| {
                r.parties
                    .iter()
                    .any(|l| l.role == role && family.contains(&l.party))
            };
            b.thread = r
                .thread_key
                .filter(|k| sizes.get(k).is_some_and(|n| *n > 1))
                .map(|k| format!("{k:016x}"));
            b.direction = if role_here("sender") {
                Some("in".into())
            } else if role_here("recipient") {
                Some("out".into())
            } else {
                None
            };
            b
        };
        let timeline = Timeline {
            total: communication.len(),
            items: communication
                .iter()
                .skip(page.max(1).saturating_sub(1).saturating_mul(per_page))
                .take(per_page)
                .map(|r| variant(r))
                .collect(),
            page: page.max(1),
            per_page,
        };
        let mut transactions_by_year: BTreeMap<i32, Vec<RecordBrief>> = BTreeMap::new();
        for r in records
            .iter()
            .filter(|r| TRANSACTIONS.contains(&r.class.as_str()) && !is_communication(r))
        {
            transactions_by_year
                .entry(r.date.year())
                .or_default()
                .push((*r).clone());
        }

        let mut cases: Vec<&CaseRevision> = family
            .iter()
            .filter_map(|p| st.cases_by_party.get(p))
            .flat_map(|s| s.iter())
            .filter_map(|c| st.cases.get(c))
            .collect();
        cases.sort_by(|a, b| b.revised_at.cmp(&a.revised_at).then(a.id.cmp(&b.id)));
        // A case's key documents as far as they are in this file: a document of the case
        // linked only to other parties is not shown here (nor to a token restricted to
        // this party).
        let in_file: HashSet<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let agreements_in_force = cases
            .iter()
            .filter(|c| c.in_force(today))
            .map(|c| {
                let ids = self.read(|d| d.ids(By::Case, &c.id));
                let n = ids.len();
                let mut docs = self.briefs(ids.iter().filter(|r| in_file.contains(r.as_str())));
                docs.sort_by_key(|d| std::cmp::Reverse(d.date));
                AgreementInForce {
                    case: st.case_brief(c, n),
                    key_documents: docs.into_iter().take(5).collect(),
                }
            })
            .collect();
        let open_cases = cases
            .iter()
            .filter(|c| c.status == CaseStatus::Open && !c.is_agreement())
            .map(|c| self.case_brief(&st, c))
            .collect();

        let mut related = Vec::new();
        for rel in &party.data.relations {
            let rid = st.resolve(&rel.party);
            if let Some(p) = st.parties.get(&rid) {
                related.push(RelatedParty {
                    id: rid,
                    name: p.data.name.clone(),
                    kind: p.data.kind,
                    relation: rel.kind.clone(),
                });
            }
        }
        let mut inverse: Vec<&(String, String)> = family
            .iter()
            .filter_map(|f| st.related_to.get(f))
            .flat_map(|s| s.iter())
            .collect();
        inverse.sort();
        for (other, kind) in inverse {
            let Some(p) = st.parties.get(other) else {
                continue;
            };
            if p.merged_into.is_some() || p.id == sid {
                continue;
            }
            let relation = match kind.as_str() {
                "works-for" => "has-contact".to_string(),
                "subsidiary-of" => "parent-of".to_string(),
                k => format!("inverse-of-{k}"),
            };
            related.push(RelatedParty {
                id: p.id.clone(),
                name: p.data.name.clone(),
                kind: p.data.kind,
                relation,
            });
        }
        Some(PartyFile {
            merged_from: family.into_iter().skip(1).collect(),
            party,
            today,
            agreements_in_force,
            open_cases,
            communication: timeline,
            other_documents,
            holds: Vec::new(),
            transactions_per_year: transactions_by_year
                .iter()
                .map(|(y, v)| (*y, v.len()))
                .collect(),
            transactions_by_year,
            counts_by_class,
            records_total: records.len(),
            related,
        })
    }

    /// Open cases of a party family, or all cases when `all`.
    pub async fn cases_of(&self, party: &str, all: bool) -> Vec<CaseBrief> {
        let st = self.state.read().await;
        let sid = st.resolve(party);
        let mut v: Vec<CaseBrief> = st
            .family(&sid)
            .iter()
            .filter_map(|p| st.cases_by_party.get(p))
            .flat_map(|s| s.iter())
            .filter_map(|c| st.cases.get(c))
            .filter(|c| all || c.status == CaseStatus::Open)
            .map(|c| self.case_brief(&st, c))
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Records linked to a party or to any party merged into it.
    pub async fn records_of(&self, party: &str) -> Vec<String> {
        let st = self.state.read().await;
        let family = st.family(&st.resolve(party));
        drop(st);
        self.ids_of(&family).into_iter().collect()
    }

    /// A party and every party merged into it (transitively), from its surviving id.
    pub async fn merged_family(&self, id: &str) -> Vec<String> {
        let st = self.state.read().await;
        st.family(&st.resolve(id))
    }

    /// Folds every record summary into `acc`, in id order, in one consistent read on a
    /// blocking thread: memory is the page cache, whatever the number of records.
    pub async fn fold_summaries<T, F>(&self, acc: T, f: F) -> crate::error::Result<T>
    where
        T: Send + 'static,
        F: Fn(&mut T, RecordBrief) + Send + 'static,
    {
        let disk = self.disk()?;
        tokio::task::spawn_blocking(move || {
            let mut acc = acc;
            disk.each(|r| f(&mut acc, r))?;
            Ok(acc)
        })
        .await
        .map_err(|e| crate::error::Error::Catalog(e.to_string()))?
    }

    /// Live records whose content has this SHA-256.
    pub async fn records_with_sha(&self, sha256: &str) -> Vec<RecordBrief> {
        self.briefs(&self.read(|d| d.ids(By::Sha, sha256)))
    }

    /// Archived emails with this Message-ID.
    pub async fn records_with_message_id(&self, message_id: &str) -> Vec<String> {
        self.read(|d| d.ids(By::MessageId, message_id))
    }

    /// The records carried in `id` (an email's attachments), oldest first.
    pub async fn children(&self, id: &str) -> Vec<RecordBrief> {
        let mut v = self.briefs(&self.read(|d| d.ids(By::Parent, id)));
        v.sort_by(|a, b| (a.archived_at, &a.id).cmp(&(b.archived_at, &b.id)));
        v
    }

    /// The summary of one record.
    pub async fn record(&self, id: &str) -> Option<RecordBrief> {
        self.read(|d| d.record(id))
    }

    /// The party ids whose records make up `party`'s file: the party and everything
    /// merged into it, and with `related` also the parties it relates to (and that relate
    /// to it) with their merged ones. `None` for an unknown party.
    pub async fn scope(&self, party: &str, related: bool) -> Option<Vec<String>> {
        let st = self.state.read().await;
        let sid = st.resolve(party);
        let p = st.parties.get(&sid)?;
        let mut heads = vec![sid.clone()];
        if related {
            for rel in &p.data.relations {
                heads.push(st.resolve(&rel.party));
            }
            for f in st.family(&sid) {
                for (other, _) in st.related_to.get(&f).into_iter().flatten() {
                    heads.push(st.resolve(other));
                }
            }
        }
        let mut out: BTreeSet<String> = BTreeSet::new();
        for h in heads {
            out.extend(st.family(&h));
        }
        Some(out.into_iter().collect())
    }

    /// Records grouped in a case.
    pub async fn records_in_case(&self, case: &str) -> Vec<String> {
        self.read(|d| d.ids(By::Case, case))
    }

    /// The records of `class`: one pass over every summary, in memory bounded by the
    /// page cache (and the result).
    pub async fn records_of_class(&self, class: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.read(|d| {
            d.each(|r| {
                if r.class == class {
                    out.push(r.id);
                }
            })
        });
        out
    }

    /// At most `limit` record ids after `after`, ascending: walks every record in
    /// bounded memory.
    pub async fn record_ids_after(&self, after: Option<&str>, limit: usize) -> Vec<String> {
        self.read(|d| d.ids_after(after, limit))
    }

    /// Records linked to `party`, counted by scanning every record summary: the naive
    /// way, kept as the benchmark's baseline.
    pub async fn scan_count_for_party(&self, party: &str) -> usize {
        let mut n = 0;
        self.read(|d| {
            d.each(|r| {
                if r.parties.iter().any(|l| l.party == party) {
                    n += 1;
                }
            })
        });
        n
    }

    /// The journal entry the catalog has applied up to.
    pub async fn journal_seq(&self) -> u64 {
        self.state.read().await.seq
    }
}

/// A character of a word: identifiers are letters and digits joined by `-`, `/`, `.`.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '/' || c == '.'
}

/// The word around byte `at` of `text` (a word character): its raw bounds.
fn word_around(text: &str, at: usize) -> (usize, usize) {
    let start = text[..at]
        .char_indices()
        .rev()
        .take_while(|(_, c)| is_word_char(*c))
        .last()
        .map_or(at, |(i, _)| i);
    let end = text[at..]
        .char_indices()
        .find(|(_, c)| !is_word_char(*c))
        .map_or(text.len(), |(i, _)| at + i);
    (start, end)
}

fn trim_word(w: &str) -> &str {
    w.trim_matches(|c| c == '-' || c == '/' || c == '.')
}

/// The words of `text` that contain a digit (the only ones that can be identifiers),
/// each with whether one of the three words before it is a label
/// ([`is_number_label`]). Words are runs of [`is_word_char`], trimmed of `-`, `/`, `.`
/// at both ends; a run that is nothing but those is no word.
///
/// Ingest runs this over the text of everything it archives, so it looks only at the
/// digits and the few words before each, not at every word.
fn numbered_words(text: &str) -> Vec<(&str, bool)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(d) = next_digit(bytes, pos) {
        let (start, end) = word_around(text, d);
        let word = trim_word(&text[start..end]);
        // The three words before it, nearest first.
        let mut label = false;
        let mut seen = 0;
        let mut cursor = start;
        while seen < 3 {
            let Some((i, c)) = text[..cursor]
                .char_indices()
                .rev()
                .find(|(_, c)| is_word_char(*c))
            else {
                break;
            };
            let (s, _) = word_around(text, i);
            let before = trim_word(&text[s..i + c.len_utf8()]);
            cursor = s;
            if before.is_empty() {
                continue;
            }
            seen += 1;
            if is_number_label(before) {
                label = true;
                break;
            }
        }
        out.push((word, label));
        pos = end;
    }
    out
}

/// Where the first ASCII digit at or after `from` is. Eight bytes at a time: ingest
/// scans the whole text of everything it archives, and most of it has no digit.
fn next_digit(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let rest = bytes.get(from..)?;
    let mut chunks = rest.chunks_exact(8);
    let mut at = from;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // XOR with '0' maps exactly the digits to 0..=9; a byte below 10 then sets its
        // top bit in `(x - 10) & !x & 0x80` (the lowest such byte is exact: a borrow
        // only reaches the bytes above a true one).
        let x = u64::from_le_bytes(word) ^ (ONES * u64::from(b'0'));
        let found = x.wrapping_sub(ONES * 10) & !x & (ONES * 0x80);
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(u8::is_ascii_digit)
        .map(|i| at + i)
}

/// Whether a word says that the number after it is a customer or supplier number
/// (German and English, with the usual abbreviations).
fn is_number_label(word: &str) -> bool {
    const LABELS: [&str; 19] = [
        "kundennummer",
        "kundennr",
        "kunden-nr",
        "kd-nr",
        "kd.-nr",
        "kdnr",
        "kunden",
        "kd",
        "lieferantennummer",
        "lieferantennr",
        "lieferanten-nr",
        "debitor",
        "debitorennummer",
        "kreditor",
        "kreditorennummer",
        "customer",
        "supplier",
        "vendor",
        "account",
    ];
    let w = word.trim_end_matches([':', '.']);
    LABELS.iter().any(|l| l.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the scan must equal: every word in order, each with its three predecessors.
    fn by_every_word(text: &str) -> Vec<(&str, bool)> {
        let words: Vec<&str> = text
            .split(|c: char| !is_word_char(c))
            .map(trim_word)
            .filter(|w| !w.is_empty())
            .collect();
        (0..words.len())
            .filter(|&i| words[i].bytes().any(|b| b.is_ascii_digit()))
            .map(|i| {
                let label = words[i.saturating_sub(3)..i]
                    .iter()
                    .any(|w| is_number_label(w));
                (words[i], label)
            })
            .collect()
    }

    #[test]
    fn numbered_words_are_those_of_a_scan_of_every_word() {
        for text in [
            "",
            "7",
            "Kundennummer: K-1001, Artikel 4711",
            "KUNDEN-NR. bitte angeben: K-1001",
            "Kd.-Nr bitte immer angeben K-1001 und 12,50 EUR",
            "--- 12 ... /34/ Lieferanten-Nr.: 7001 oder K-1001",
            "Straße 5 · Größe 10 — Kunden Nr 99 ünd 100ä, ÄÖÜ-7 x",
            "a-1 b.2 c/3 -- . / 4",
            "Kreditor . - / 55",
            "x 1 2 3 4 5 Debitor 6 7 8 9",
        ] {
            assert_eq!(numbered_words(text), by_every_word(text), "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn next_digit_finds_the_first_digit(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            from in 0usize..45,
        ) {
            let expected = bytes
                .get(from..)
                .and_then(|rest| rest.iter().position(u8::is_ascii_digit))
                .map(|i| from + i);
            proptest::prop_assert_eq!(next_digit(&bytes, from), expected);
        }

        #[test]
        fn numbered_words_match_the_word_scan_on_any_text(
            text in r"[a-zA-Z0-9äÖß .,:;/\-]{0,60}|((Kunden|account|Kd\.-Nr|x|ü|1|23|K-1|4711|\.|-|/|:|,)( |\. |: |-)){0,30}"
        ) {
            proptest::prop_assert_eq!(numbered_words(&text), by_every_word(&text));
        }
    }
}

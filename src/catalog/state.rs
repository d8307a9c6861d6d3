//! The catalog's state: the maps behind every query, and how a revision enters them.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::case::CaseRevision;
use crate::party::Party;

use super::views::*;

#[derive(Debug, Default)]
pub(super) struct State {
    /// Journal entries 1..=seq are applied to the parties and cases.
    pub(super) seq: u64,
    pub(super) parties: HashMap<String, PartyBrief>,
    pub(super) absorbed: HashMap<String, BTreeSet<String>>,
    pub(super) names: BTreeSet<(String, String)>,
    pub(super) index: HashMap<String, HashSet<String>>,
    pub(super) cases: HashMap<String, CaseRevision>,
    pub(super) cases_by_party: HashMap<String, HashSet<String>>,
    /// Reverse relations: party → (other party, relation kind as the other states it).
    pub(super) related_to: HashMap<String, HashSet<(String, String)>>,
}

/// Folds a name for prefix search: lower case, umlauts and ß spelled out.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.trim().chars().flat_map(char::to_lowercase) {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            c => out.push(c),
        }
    }
    out
}

/// The keys a name is found by: folded with umlauts spelled out (`mueller`), and, when
/// it differs, with umlauts as their base letter (`muller`), so that `mull` and `muel`
/// both find Müller.
pub(super) fn name_keys(name: &str) -> Vec<String> {
    let spelled = fold(name);
    let plain: String = name
        .trim()
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'ä' => "a".to_string(),
            'ö' => "o".to_string(),
            'ü' => "u".to_string(),
            'ß' => "ss".to_string(),
            c => c.to_string(),
        })
        .collect();
    if plain == spelled {
        vec![spelled]
    } else {
        vec![spelled, plain]
    }
}

pub(super) fn index_terms(p: &PartyBrief) -> Vec<String> {
    let d = &p.data;
    let mut t = Vec::new();
    if let Some(v) = &d.vat_id {
        t.push(format!("vat:{v}"));
    }
    if let Some(r) = &d.register_number {
        t.push(format!("register:{}", r.to_lowercase()));
    }
    for r in &d.roles {
        if let Some(n) = &r.number {
            t.push(format!("{}:{}", r.role, n));
        }
    }
    for (k, v) in &d.identifiers {
        t.push(format!("{k}:{v}"));
    }
    for e in &d.emails {
        t.push(format!("email:{e}"));
    }
    for dom in &d.domains {
        t.push(format!("domain:{dom}"));
    }
    t
}

impl State {
    pub(super) fn put_party(&mut self, p: PartyBrief) {
        if let Some(old) = self.parties.get(&p.id) {
            if old.rev > p.rev {
                return;
            }
            let old = old.clone();
            for n in name_keys(&old.data.name) {
                self.names.remove(&(n, old.id.clone()));
            }
            for t in index_terms(&old) {
                if let Some(s) = self.index.get_mut(&t) {
                    s.remove(&old.id);
                }
            }
            if let Some(m) = &old.merged_into
                && let Some(s) = self.absorbed.get_mut(m)
            {
                s.remove(&old.id);
            }
            for rel in &old.data.relations {
                if let Some(s) = self.related_to.get_mut(&rel.party) {
                    s.remove(&(old.id.clone(), rel.kind.clone()));
                }
            }
        }
        for rel in &p.data.relations {
            self.related_to
                .entry(rel.party.clone())
                .or_default()
                .insert((p.id.clone(), rel.kind.clone()));
        }
        for n in name_keys(&p.data.name) {
            self.names.insert((n, p.id.clone()));
        }
        for t in index_terms(&p) {
            self.index.entry(t).or_default().insert(p.id.clone());
        }
        if let Some(m) = &p.merged_into {
            self.absorbed
                .entry(m.clone())
                .or_default()
                .insert(p.id.clone());
        }
        self.parties.insert(p.id.clone(), p);
    }

    pub(super) fn put_case(&mut self, c: CaseRevision) {
        if let Some(old) = self.cases.get(&c.id) {
            if old.rev > c.rev {
                return;
            }
            let party = old.party.clone();
            if let Some(s) = self.cases_by_party.get_mut(&party) {
                s.remove(&c.id);
            }
        }
        self.cases_by_party
            .entry(c.party.clone())
            .or_default()
            .insert(c.id.clone());
        self.cases.insert(c.id.clone(), c);
    }

    pub(super) fn resolve(&self, id: &str) -> String {
        let mut cur = id.to_string();
        for _ in 0..32 {
            match self.parties.get(&cur).and_then(|p| p.merged_into.clone()) {
                Some(next) => cur = next,
                None => break,
            }
        }
        cur
    }

    /// The party and everything merged into it, transitively.
    pub(super) fn family(&self, id: &str) -> Vec<String> {
        let mut out = vec![id.to_string()];
        let mut i = 0;
        while i < out.len() {
            if let Some(a) = self.absorbed.get(&out[i]) {
                for x in a {
                    if !out.contains(x) {
                        out.push(x.clone());
                    }
                }
            }
            i += 1;
        }
        out
    }

    /// `records`: the number of records grouped in the case.
    pub(super) fn case_brief(&self, c: &CaseRevision, records: usize) -> CaseBrief {
        CaseBrief {
            id: c.id.clone(),
            rev: c.rev,
            kind: c.kind.clone(),
            title: c.title.clone(),
            party: self.resolve(&c.party),
            status: c.status,
            status_changed_at: c.status_changed_at,
            status_changed_by: c.status_changed_by.clone(),
            valid_from: c.valid_from,
            valid_until: c.valid_until,
            reference: c.reference.clone(),
            records,
        }
    }
}

pub(super) enum Loaded {
    Record(Box<RecordBrief>),
    Party(Box<Party>),
    Case(Box<CaseRevision>),
    Nothing,
}

/// Applies a party or a case (records go to the disk).
pub(super) fn apply(state: &mut State, l: Loaded) {
    match l {
        Loaded::Party(p) => state.put_party(PartyBrief::from(&*p)),
        Loaded::Case(c) => state.put_case(*c),
        Loaded::Record(_) | Loaded::Nothing => {}
    }
}

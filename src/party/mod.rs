//! Parties: the business partner at the centre of the Kundenakte (DESIGN §3).
//!
//! One party per real-world organisation or person; customer, supplier, prospect,
//! partner … are *roles* of that one party, each with its own number and validity.
//! A party is a chain of revisions `parties/<id>/<rev>.mpk` like a record. Personal
//! fields (a person's name and address, every email address and phone number, free
//! notes) are stored sealed with the party's own key ([`crate::store::crypt`]); the rest stays in clear
//! and verifiable. Two parties found to be one are merged by a revision of the absorbed
//! party that points to the survivor; nothing is deleted.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::audit::{self, journal::Journal};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::crypt::{self, KeyStore, Sealed};
use crate::store::keys::ObjectKind;
use crate::store::{Store, codec};

/// Current format version of [`PartyRevision`].
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PartyKind {
    Organisation,
    Person,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(default)]
    pub street: Option<String>,
    #[serde(default)]
    pub postcode: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    /// ISO 3166 alpha-2
    #[serde(default)]
    pub country: Option<String>,
}

impl Address {
    /// The address on one line: `street, postcode city, country` (parts left out when
    /// absent).
    pub fn one_line(&self) -> String {
        let place = [self.postcode.as_deref(), self.city.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        [
            self.street.as_deref(),
            (!place.is_empty()).then_some(place.as_str()),
            self.country.as_deref(),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// A role of the party: customer, supplier, prospect, partner, or company-defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleEntry {
    pub role: String,
    /// The number the party has in this role (customer number, supplier number …).
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub since: Option<NaiveDate>,
    #[serde(default)]
    pub until: Option<NaiveDate>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// A relation to another party: `works-for`, `subsidiary-of`, `contact-of`, …
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Relation {
    pub kind: String,
    pub party: String,
}

/// Everything known about a party, in clear: what the API and CLI show and accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartyData {
    pub kind: PartyKind,
    pub name: String,
    #[serde(default)]
    pub addresses: Vec<Address>,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub phones: Vec<String>,
    /// Email and web domains of an organisation (`mueller-gmbh.de`).
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub vat_id: Option<String>,
    /// Commercial register number (`HRB 12345 Amtsgericht München`).
    #[serde(default)]
    pub register_number: Option<String>,
    /// Other ERP keys.
    #[serde(default)]
    pub identifiers: BTreeMap<String, String>,
    #[serde(default)]
    pub roles: Vec<RoleEntry>,
    #[serde(default)]
    pub relations: Vec<Relation>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// The personal part of a party, stored sealed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Personal {
    name: Option<String>,
    addresses: Vec<Address>,
    emails: Vec<String>,
    phones: Vec<String>,
    notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyRevision {
    pub format: u32,
    pub id: String,
    pub rev: u32,
    pub prev_hash: Option<String>,
    pub revised_at: DateTime<Utc>,
    pub actor: String,
    pub change: String,
    pub reason: Option<String>,
    pub kind: PartyKind,
    /// Name in clear for organisations; `None` for persons (sealed).
    pub name: Option<String>,
    /// Addresses in clear for organisations; empty for persons (sealed).
    pub addresses: Vec<Address>,
    pub domains: Vec<String>,
    pub vat_id: Option<String>,
    pub register_number: Option<String>,
    pub identifiers: BTreeMap<String, String>,
    pub roles: Vec<RoleEntry>,
    pub relations: Vec<Relation>,
    /// Set when this party was merged into another; the survivor's id.
    pub merged_into: Option<String>,
    /// Personal fields, sealed with the party's key.
    pub personal: Option<Sealed>,
    /// Set by an erasure (GDPR Art. 17 once no retention duty remains): the key that
    /// sealed every earlier revision's personal fields was destroyed at this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<DateTime<Utc>>,
}

impl PartyRevision {
    pub fn decode(key: &str, bytes: &[u8]) -> Result<PartyRevision> {
        let p: PartyRevision = codec::decode(key, bytes)?;
        if p.format != FORMAT {
            return Err(Error::CorruptObject {
                key: key.to_string(),
                reason: format!("unsupported party format {}", p.format),
            });
        }
        Ok(p)
    }
}

/// A party as read: its latest revision and its data in clear (personal fields empty
/// and `erased` set when the key no longer exists).
#[derive(Debug, Clone)]
pub struct Party {
    pub revision: PartyRevision,
    pub data: PartyData,
    pub erased: bool,
}

/// Tidies party data from lenient sources (ERP exports, the command line): trims,
/// lower-cases roles and relation kinds, writes VAT IDs without spaces in upper case. The
/// API takes data as its OpenAPI document describes it and is not tidied: what the
/// document's patterns refuse, [`validate`] refuses too.
pub fn normalise(mut d: PartyData) -> PartyData {
    d.name = d.name.trim().to_string();
    for e in d.emails.iter_mut() {
        *e = e.trim().to_string();
    }
    for dom in d.domains.iter_mut() {
        *dom = dom.trim().to_string();
    }
    for p in d.phones.iter_mut() {
        *p = p.trim().to_string();
    }
    if let Some(v) = &d.vat_id {
        d.vat_id = Some(normalise_vat_id(v).unwrap_or_else(|_| v.trim().to_string()));
    }
    for r in d.roles.iter_mut() {
        r.role = canonical_role(&r.role);
    }
    for rel in d.relations.iter_mut() {
        rel.kind = rel.kind.trim().to_ascii_lowercase();
    }
    d
}

/// A role as akte names it: lower case, and the German names of the usual roles
/// (`Kunde`, `Lieferant`, …) as their English ids, so that they do not become roles of
/// their own.
pub fn canonical_role(role: &str) -> String {
    let r = role.trim().to_lowercase();
    match r.as_str() {
        "kunde" | "kundin" => "customer",
        "lieferant" | "lieferantin" => "supplier",
        "interessent" | "interessentin" => "prospect",
        "ansprechpartner" | "ansprechpartnerin" | "kontakt" => "contact",
        "dienstleister" => "service-provider",
        _ => return r,
    }
    .to_string()
}

/// Longest party name, in characters.
pub const MAX_NAME: usize = 300;

/// Validates party data against the shapes in [`crate::ids::shape`]; returns it cleaned
/// (name trimmed, emails and domains lower-case, `www.` dropped, duplicates removed).
pub fn validate(mut d: PartyData) -> Result<PartyData> {
    use crate::ids::shape;
    if !shape::matches(shape::NAME, &d.name) || d.name.chars().count() > MAX_NAME {
        return Err(Error::invalid(
            "name",
            format!("required, one line, at most {MAX_NAME} characters"),
        ));
    }
    d.name = d.name.trim().to_string();
    for e in d.emails.iter_mut() {
        if !shape::matches(shape::EMAIL, e) {
            return Err(Error::invalid(
                "emails",
                format!("{e:?} is not an email address"),
            ));
        }
        *e = e.to_lowercase();
    }
    for dom in d.domains.iter_mut() {
        if !shape::matches(shape::DOMAIN, dom) {
            return Err(Error::invalid(
                "domains",
                format!("{dom:?} is not a domain"),
            ));
        }
        *dom = dom.to_ascii_lowercase();
        if let Some(rest) = dom.strip_prefix("www.")
            && rest.contains('.')
        {
            *dom = rest.to_string();
        }
    }
    for p in d.phones.iter_mut() {
        if !shape::matches(shape::PHONE, p) {
            return Err(Error::invalid(
                "phones",
                format!("{p:?} is not a phone number"),
            ));
        }
        *p = p.trim().to_string();
    }
    if let Some(v) = &d.vat_id
        && !shape::matches(shape::VAT_ID, v)
    {
        return Err(Error::invalid(
            "vat_id",
            format!("{v:?} is not a VAT ID (e.g. DE123456789)"),
        ));
    }
    for r in &d.roles {
        if !shape::matches(shape::SLUG, &r.role) {
            return Err(Error::invalid(
                "roles",
                format!("{:?} is not a role name (lower-case, '-')", r.role),
            ));
        }
        if let (Some(s), Some(u)) = (r.since, r.until)
            && u < s
        {
            return Err(Error::unprocessable(
                "roles",
                format!("role {} ends before it starts", r.role),
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    for r in &d.roles {
        if !seen.insert(r.role.clone()) {
            return Err(Error::unprocessable(
                "roles",
                format!("role {} given twice", r.role),
            ));
        }
    }
    for rel in &d.relations {
        if !shape::matches(shape::SLUG, &rel.kind) {
            return Err(Error::invalid(
                "relations",
                format!("{:?} is not a relation kind", rel.kind),
            ));
        }
        crate::ids::validate_id(&rel.party).map_err(|_| {
            Error::invalid("relations", format!("{:?} is not a party id", rel.party))
        })?;
    }
    d.emails.sort();
    d.emails.dedup();
    d.domains.sort();
    d.domains.dedup();
    Ok(d)
}

/// Checks a VAT identification number's shape (EU: two letters and 2–12 characters; for
/// Germany exactly nine digits) and returns it without spaces, upper-case.
pub fn normalise_vat_id(v: &str) -> Result<String> {
    let s: String = v
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '.' && *c != '-')
        .collect::<String>()
        .to_ascii_uppercase();
    let bad = || {
        Error::invalid(
            "vat_id",
            format!("{v:?} is not a VAT ID (e.g. DE123456789)"),
        )
    };
    if s.len() < 4 || !s.is_char_boundary(2) {
        return Err(bad());
    }
    let (cc, rest) = s.split_at(2);
    if !cc.bytes().all(|b| b.is_ascii_uppercase())
        || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
        || rest.len() > 12
    {
        return Err(bad());
    }
    if cc == "DE" && (rest.len() != 9 || !rest.bytes().all(|b| b.is_ascii_digit())) {
        return Err(bad());
    }
    Ok(s)
}

/// Party operations over the store.
#[derive(Debug, Clone)]
pub struct Parties {
    store: Store,
    journal: Arc<Journal>,
    clock: Arc<dyn Clock>,
    keys: Arc<KeyStore>,
}

impl Parties {
    pub fn new(store: Store, journal: Arc<Journal>, clock: Arc<dyn Clock>) -> Parties {
        Parties {
            keys: Arc::new(KeyStore::new(store.clone(), journal.clone())),
            store,
            journal,
            clock,
        }
    }

    fn split(&self, d: &PartyData) -> (Option<String>, Vec<Address>, Personal) {
        let person = d.kind == PartyKind::Person;
        let personal = Personal {
            name: person.then(|| d.name.clone()),
            addresses: if person { d.addresses.clone() } else { vec![] },
            emails: d.emails.clone(),
            phones: d.phones.clone(),
            notes: d.notes.clone(),
        };
        let name = (!person).then(|| d.name.clone());
        let addresses = if person { vec![] } else { d.addresses.clone() };
        (name, addresses, personal)
    }

    #[allow(clippy::too_many_arguments)]
    async fn build(
        &self,
        id: &str,
        rev: u32,
        prev_hash: Option<String>,
        d: &PartyData,
        actor: &str,
        change: &str,
        reason: Option<String>,
        merged_into: Option<String>,
    ) -> Result<PartyRevision> {
        let (name, addresses, personal) = self.split(d);
        let key = self.keys.get_or_create(id).await?;
        let sealed = crypt::seal(&key, id, &codec::encode(&personal)?)?;
        Ok(PartyRevision {
            format: FORMAT,
            id: id.to_string(),
            rev,
            prev_hash,
            revised_at: self.clock.now(),
            actor: actor.to_string(),
            change: change.to_string(),
            reason,
            kind: d.kind,
            name,
            addresses,
            domains: d.domains.clone(),
            vat_id: d.vat_id.clone(),
            register_number: d.register_number.clone(),
            identifiers: d.identifiers.clone(),
            roles: d.roles.clone(),
            relations: d.relations.clone(),
            merged_into,
            personal: Some(sealed),
            erased_at: None,
        })
    }

    async fn commit(&self, p: &PartyRevision, action: &str, detail: Option<String>) -> Result<()> {
        audit::commit_revision(
            &self.store,
            &self.journal,
            ObjectKind::Party,
            &p.id,
            p.rev,
            codec::encode(p)?,
            &p.actor,
            action,
            detail,
        )
        .await?;
        Ok(())
    }

    pub async fn create(&self, actor: &str, data: PartyData) -> Result<Party> {
        let data = validate(data)?;
        let id = self.clock.new_id().to_string();
        let rev = self
            .build(&id, 1, None, &data, actor, "created", None, None)
            .await?;
        // The journal is never erased: its detail names no personal data.
        let detail = match data.kind {
            PartyKind::Organisation => "organisation",
            PartyKind::Person => "person",
        };
        self.commit(&rev, "party.create", Some(detail.to_string()))
            .await?;
        Ok(Party {
            revision: rev,
            data,
            erased: false,
        })
    }

    /// Replaces the party's data with `data` as a new revision.
    pub async fn update(
        &self,
        actor: &str,
        id: &str,
        data: PartyData,
        reason: Option<String>,
        base_rev: Option<u32>,
    ) -> Result<Party> {
        let data = validate(data)?;
        let (prev, prev_hash) = self.latest_raw(id).await?;
        if let Some(b) = base_rev
            && b != prev.rev
        {
            return Err(Error::RevisionConflict {
                id: id.to_string(),
                rev: prev.rev,
            });
        }
        if prev.merged_into.is_some() {
            return Err(Error::state(
                "id",
                format!("party {id} was merged; change the surviving party"),
            ));
        }
        if prev.erased_at.is_some() {
            return Err(Error::Erased { id: id.to_string() });
        }
        let old = self.open(&prev).await?;
        if old.data == data {
            return Err(Error::unchanged("party"));
        }
        let change = describe_change(&old.data, &data);
        let rev = self
            .build(
                id,
                audit::next_rev(&self.store, &self.journal, ObjectKind::Party, id, prev.rev)
                    .await?,
                Some(prev_hash),
                &data,
                actor,
                &change,
                reason,
                None,
            )
            .await?;
        self.commit(&rev, "party.amend", Some(change)).await?;
        Ok(Party {
            revision: rev,
            data,
            erased: false,
        })
    }

    /// Merges `absorbed` into `survivor`: the survivor gains the absorbed party's roles,
    /// contacts and identifiers it lacks; the absorbed party gets a revision redirecting
    /// to the survivor. Both stay readable; links to the absorbed id resolve to the survivor.
    pub async fn merge(
        &self,
        actor: &str,
        absorbed: &str,
        survivor: &str,
        reason: Option<String>,
    ) -> Result<Party> {
        if absorbed == survivor {
            return Err(Error::unprocessable(
                "survivor",
                "a party cannot be merged into itself",
            ));
        }
        let (a_rev, a_hash) = self.latest_raw(absorbed).await?;
        let (s_rev, s_hash) = self.latest_raw(survivor).await?;
        if a_rev.merged_into.is_some() {
            return Err(Error::state(
                "absorbed",
                format!("party {absorbed} is already merged"),
            ));
        }
        if s_rev.merged_into.is_some() {
            return Err(Error::state(
                "survivor",
                format!("party {survivor} was itself merged"),
            ));
        }
        let a = self.open(&a_rev).await?;
        let s = self.open(&s_rev).await?;
        let mut merged = s.data.clone();
        for r in &a.data.roles {
            match merged.roles.iter_mut().find(|x| x.role == r.role) {
                None => merged.roles.push(r.clone()),
                // The same role on both: the duplicate's number is not lost — taken over
                // when the survivor has none, else kept as an identifier.
                Some(x) => match (&x.number, &r.number) {
                    (None, Some(n)) => x.number = Some(n.clone()),
                    (Some(m), Some(n)) if m != n => {
                        let short: String = a_rev.id.chars().take(8).collect();
                        merged
                            .identifiers
                            .insert(format!("{}-number-{short}", r.role), n.clone());
                    }
                    _ => {}
                },
            }
        }
        merged.emails.extend(a.data.emails.iter().cloned());
        merged.domains.extend(a.data.domains.iter().cloned());
        for p in &a.data.phones {
            if !merged.phones.contains(p) {
                merged.phones.push(p.clone());
            }
        }
        if merged.vat_id.is_none() {
            merged.vat_id = a.data.vat_id.clone();
        }
        if merged.register_number.is_none() {
            merged.register_number = a.data.register_number.clone();
        }
        for (k, v) in &a.data.identifiers {
            merged
                .identifiers
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        for rel in &a.data.relations {
            if rel.party != survivor && !merged.relations.contains(rel) {
                merged.relations.push(rel.clone());
            }
        }
        let merged = validate(merged)?;
        let detail = format!("{absorbed} merged into {survivor}");
        let redirect = self
            .build(
                absorbed,
                audit::next_rev(
                    &self.store,
                    &self.journal,
                    ObjectKind::Party,
                    absorbed,
                    a_rev.rev,
                )
                .await?,
                Some(a_hash),
                &a.data,
                actor,
                "merged",
                reason.clone(),
                Some(survivor.to_string()),
            )
            .await?;
        let s_next = self
            .build(
                survivor,
                audit::next_rev(
                    &self.store,
                    &self.journal,
                    ObjectKind::Party,
                    survivor,
                    s_rev.rev,
                )
                .await?,
                Some(s_hash),
                &merged,
                actor,
                &format!("absorbed {absorbed}"),
                reason,
                None,
            )
            .await?;
        self.commit(&s_next, "party.merge", Some(detail.clone()))
            .await?;
        self.commit(&redirect, "party.merge", Some(detail)).await?;
        Ok(Party {
            revision: s_next,
            data: merged,
            erased: false,
        })
    }

    async fn latest_raw(&self, id: &str) -> Result<(PartyRevision, String)> {
        audit::latest_revision(
            &self.store,
            &self.journal,
            ObjectKind::Party,
            id,
            PartyRevision::decode,
        )
        .await
    }

    /// Erases a party's personal data: a last revision keeps only non-personal facts
    /// (kind, an organisation's name and address, roles, identifiers), then the party's
    /// key is destroyed, which makes the personal fields of every earlier revision
    /// unreadable. The caller checks that no retention duty or hold still needs them.
    pub async fn erase(&self, actor: &str, id: &str, reason: &str) -> Result<Party> {
        if !crate::ids::shape::matches(crate::ids::shape::TEXT, reason) {
            return Err(Error::invalid("reason", "an erasure needs a reason"));
        }
        let (prev, prev_hash) = self.latest_raw(id).await?;
        if prev.erased_at.is_some() {
            return Err(Error::Erased { id: id.to_string() });
        }
        let mut next = prev.clone();
        next.rev =
            audit::next_rev(&self.store, &self.journal, ObjectKind::Party, id, prev.rev).await?;
        next.prev_hash = Some(prev_hash);
        next.revised_at = self.clock.now();
        next.actor = actor.to_string();
        next.change = "erased".into();
        next.reason = Some(reason.trim().to_string());
        next.personal = None;
        next.erased_at = Some(next.revised_at);
        if next.kind == PartyKind::Person {
            next.name = None;
            next.addresses = vec![];
        }
        self.commit(
            &next,
            "party.erase",
            Some("personal data erased; key destroyed".into()),
        )
        .await?;
        self.keys.destroy(id).await?;
        self.open(&next).await
    }

    /// Decrypts a revision's personal part.
    pub async fn open(&self, r: &PartyRevision) -> Result<Party> {
        let key = self.keys.get(&r.id).await?;
        let (personal, erased) = match (&r.personal, key) {
            (Some(s), Some(k)) => (
                codec::decode::<Personal>("personal", &crypt::open(&k, &r.id, s)?)?,
                false,
            ),
            (Some(_), None) => (Personal::default(), true),
            (None, _) => (Personal::default(), r.erased_at.is_some()),
        };
        let name = match r.kind {
            PartyKind::Organisation => r.name.clone().unwrap_or_default(),
            PartyKind::Person => personal.name.clone().unwrap_or_else(|| {
                if erased {
                    "(erased)".into()
                } else {
                    String::new()
                }
            }),
        };
        let addresses = match r.kind {
            PartyKind::Organisation => r.addresses.clone(),
            PartyKind::Person => personal.addresses.clone(),
        };
        Ok(Party {
            data: PartyData {
                kind: r.kind,
                name,
                addresses,
                emails: personal.emails,
                phones: personal.phones,
                domains: r.domains.clone(),
                vat_id: r.vat_id.clone(),
                register_number: r.register_number.clone(),
                identifiers: r.identifiers.clone(),
                roles: r.roles.clone(),
                relations: r.relations.clone(),
                notes: personal.notes,
            },
            revision: r.clone(),
            erased,
        })
    }

    /// The latest revision of a party, in clear.
    pub async fn get(&self, id: &str) -> Result<Party> {
        let (r, _) = self.latest_raw(id).await?;
        self.open(&r).await
    }

    /// Follows merge redirects to the surviving party.
    pub async fn resolve(&self, id: &str) -> Result<Party> {
        let mut p = self.get(id).await?;
        for _ in 0..32 {
            match p.revision.merged_into.clone() {
                Some(next) => p = self.get(&next).await?,
                None => return Ok(p),
            }
        }
        Err(Error::Internal(format!("merge chain of {id} too long")))
    }

    pub async fn history(&self, id: &str) -> Result<Vec<Party>> {
        crate::ids::validate_id(id)?;
        let mut out = Vec::new();
        for key in audit::revision_keys(&self.journal, ObjectKind::Party, id).await? {
            let bytes = self.store.get(&key).await?;
            out.push(
                self.open(&PartyRevision::decode(key.as_ref(), &bytes)?)
                    .await?,
            );
        }
        Ok(out)
    }

    /// Every party id in the store.
    pub async fn ids(&self) -> Result<Vec<String>> {
        self.journal.committed_ids(ObjectKind::Party).await
    }
}

fn describe_change(a: &PartyData, b: &PartyData) -> String {
    let mut c = Vec::new();
    if a.name != b.name {
        c.push("name");
    }
    if a.kind != b.kind {
        c.push("kind");
    }
    if a.addresses != b.addresses {
        c.push("addresses");
    }
    if a.emails != b.emails || a.phones != b.phones || a.domains != b.domains {
        c.push("contacts");
    }
    if a.vat_id != b.vat_id
        || a.register_number != b.register_number
        || a.identifiers != b.identifiers
    {
        c.push("identifiers");
    }
    if a.roles != b.roles {
        c.push("roles");
    }
    if a.relations != b.relations {
        c.push("relations");
    }
    if a.notes != b.notes {
        c.push("notes");
    }
    c.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vat_ids_are_checked() {
        assert_eq!(normalise_vat_id("de 123 456 789").unwrap(), "DE123456789");
        assert!(normalise_vat_id("DE12345678").is_err());
        assert!(normalise_vat_id("123456789").is_err());
        assert_eq!(normalise_vat_id("ATU12345678").unwrap(), "ATU12345678");
    }
}

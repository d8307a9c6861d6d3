//! Who may do what: API tokens and roles (DESIGN §9).
//!
//! A token is 32 random bytes shown once; the store keeps only its SHA-256, in a
//! revisioned, journaled object `tokens/<id>/<rev>.mpk` (revision 1 creates, a later one
//! revokes). The in-memory table is derived state: rebuilt from the store at start and
//! whenever the journal moves (another process may have created or revoked a token).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::RwLock;

use crate::audit::{self, journal::Journal};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::store::keys::ObjectKind;
use crate::store::{Store, codec};

/// Current format version of [`TokenRevision`].
pub const FORMAT: u32 = 1;
const TOKEN_PREFIX: &str = "akte_";

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Tokens and configuration; may do everything.
    Admin,
    /// Ingest, amend, holds; reads.
    Archivist,
    /// Reads; adds notes and links.
    #[default]
    Clerk,
    /// Reads everything including the journal and reports; changes nothing.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Archivist, Role::Clerk, Role::Auditor];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Archivist => "archivist",
            Role::Clerk => "clerk",
            Role::Auditor => "auditor",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    "role",
                    format!("{s:?} is not one of admin, archivist, clerk, auditor"),
                )
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRevision {
    pub format: u32,
    pub id: String,
    pub rev: u32,
    pub prev_hash: Option<String>,
    pub name: String,
    pub role: Role,
    /// SHA-256 (hex) of the whole token string; the token itself is never stored.
    pub secret_sha256: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub revoked_by: Option<String>,
    /// When set, the token sees only these parties' files and records (and searches only
    /// them). Omitted when empty (unrestricted), so older revisions stay canonical.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parties: Vec<String>,
    /// The person the token belongs to: four-eyes rules compare persons, not tokens.
    /// Omitted in tokens made before persons existed (each such token is its own person).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// When set, the token reads only records dated in these fiscal years (first, last;
    /// calendar years) — a tax auditor's Z1 access — and searches only them. Omitted when
    /// unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub years: Option<FiscalYears>,
    /// When set, the token reads and searches only records of these retention classes
    /// (an auditor's access limited to, say, invoices). Omitted when unlimited.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
}

/// Fiscal years a token is limited to, first to last (calendar years).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FiscalYears {
    #[schema(minimum = 1900, maximum = 2200)]
    #[serde(deserialize_with = "whole_year")]
    pub from: i32,
    #[schema(minimum = 1900, maximum = 2200)]
    #[serde(deserialize_with = "whole_year")]
    pub to: i32,
}

/// A year that JSON may write as `2024` or `2024.0` (JSON Schema's `integer` admits both).
fn whole_year<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<i32, D::Error> {
    use serde::de::Error as _;
    let n = serde_json::Number::deserialize(d)?;
    n.as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= f64::from(i32::MAX))
                .map(|f| f as i64)
        })
        .and_then(|v| i32::try_from(v).ok())
        .ok_or_else(|| D::Error::custom(format!("{n} is not a year")))
}

impl FiscalYears {
    /// The first and last day they cover.
    pub fn days(&self) -> (chrono::NaiveDate, chrono::NaiveDate) {
        (
            chrono::NaiveDate::from_ymd_opt(self.from, 1, 1).unwrap_or(chrono::NaiveDate::MIN),
            chrono::NaiveDate::from_ymd_opt(self.to, 12, 31).unwrap_or(chrono::NaiveDate::MAX),
        )
    }

    pub fn contains(&self, d: chrono::NaiveDate) -> bool {
        let (a, b) = self.days();
        a <= d && d <= b
    }
}

impl std::fmt::Display for FiscalYears {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}–{}", self.from, self.to)
        }
    }
}

impl TokenRevision {
    /// The person acting with this token.
    pub fn person(&self) -> String {
        self.person
            .clone()
            .unwrap_or_else(|| format!("token-{}", self.id))
    }

    pub fn decode(key: &str, bytes: &[u8]) -> Result<TokenRevision> {
        let t: TokenRevision = codec::decode(key, bytes)?;
        if t.format != FORMAT {
            return Err(Error::CorruptObject {
                key: key.to_string(),
                reason: format!("unsupported token format {}", t.format),
            });
        }
        Ok(t)
    }
}

/// An authenticated caller.
/// Between the person and the token in an actor name: `alice via token:name:id`.
pub const PERSON_SEP: &str = " via token:";

/// The person behind an actor name (a token's person, or the CLI's `--actor`).
pub fn person_of(actor: &str) -> &str {
    actor.split(PERSON_SEP).next().unwrap_or(actor)
}

/// Person names: what a directory would call a login.
fn validate_person(p: &str) -> Result<()> {
    let ok = !p.is_empty()
        && p.len() <= 64
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "person",
            "1-64 characters of letters, digits and - _ . @",
        ))
    }
}

/// Refuses (422) a class limit that names a class the retention catalogue does not know:
/// a misspelt class would make a token that silently reads nothing.
pub fn check_classes(
    classes: &[String],
    catalogue: &crate::retention::catalogue::Catalogue,
) -> Result<()> {
    for c in classes {
        if !catalogue.classes.contains_key(c) {
            return Err(Error::unprocessable(
                "classes",
                format!("{c:?} is not a class of the retention catalogue"),
            ));
        }
    }
    Ok(())
}

/// A token to create.
#[derive(Debug, Clone, Default)]
pub struct NewToken {
    pub role: Role,
    pub name: String,
    /// The person it belongs to.
    pub person: String,
    pub expires_at: Option<DateTime<Utc>>,
    /// The token itself, when the operator supplies it (`AKTE_ADMIN_TOKEN`).
    pub secret: Option<String>,
    pub parties: Vec<String>,
    pub years: Option<FiscalYears>,
    pub classes: Vec<String>,
}

impl NewToken {
    pub fn new(role: Role, name: &str, person: &str) -> NewToken {
        NewToken {
            role,
            name: name.into(),
            person: person.into(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub token_id: String,
    /// The person the token belongs to.
    pub person: String,
    pub name: String,
    pub role: Role,
    /// Parties this caller is restricted to; empty: no restriction.
    pub parties: Vec<String>,
    /// Fiscal years this caller reads records of; `None`: no limit.
    pub years: Option<FiscalYears>,
    /// Retention classes this caller reads records of; empty: no limit.
    pub classes: Vec<String>,
}

impl Principal {
    /// How the caller appears in the journal.
    pub fn actor(&self) -> String {
        format!("{}{PERSON_SEP}{}:{}", self.person, self.name, self.token_id)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Invalid,
    Expired,
    Revoked,
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthFailure::Missing => "no bearer token given",
            AuthFailure::Invalid => "the token is not valid",
            AuthFailure::Expired => "the token has expired",
            AuthFailure::Revoked => "the token was revoked",
        })
    }
}

#[derive(Debug, Default)]
struct Table {
    by_hash: HashMap<String, TokenRevision>,
    by_id: HashMap<String, TokenRevision>,
    journal_seq: u64,
    /// The ledger's count of token revisions the table was loaded at.
    token_revisions: u64,
}

#[derive(Debug)]
pub struct Tokens {
    store: Store,
    journal: Arc<Journal>,
    clock: Arc<dyn Clock>,
    table: RwLock<Table>,
}

fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_secret() -> Result<String> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).map_err(|e| Error::Internal(format!("no random source: {e}")))?;
    Ok(format!("{TOKEN_PREFIX}{}", hex::encode(buf)))
}

impl Tokens {
    pub fn new(store: Store, journal: Arc<Journal>, clock: Arc<dyn Clock>) -> Tokens {
        Tokens {
            store,
            journal,
            clock,
            table: RwLock::new(Table::default()),
        }
    }

    /// Rebuilds the table from the store.
    pub async fn load(&self) -> Result<()> {
        // Only tokens a journal entry committed exist (DESIGN §2.6).
        // Counted before the sync: a change in between only causes one more reload.
        let token_revisions = self.journal.ledger().revisions_of_kind(ObjectKind::Token);
        let seq = self.journal.sync_ledger().await?;
        let mut table = Table {
            journal_seq: seq,
            token_revisions,
            ..Default::default()
        };
        for key in audit::latest_keys(&self.journal, ObjectKind::Token).await? {
            let bytes = self.store.get(&key).await?;
            match TokenRevision::decode(key.as_ref(), &bytes) {
                Ok(t) => {
                    table.by_hash.insert(t.secret_sha256.clone(), t.clone());
                    table.by_id.insert(t.id.clone(), t);
                }
                // A committed token that no longer decodes is corruption for `verify` to
                // report; it must not lock everyone else out.
                Err(e) => tracing::error!("token {key} skipped: {e}"),
            }
        }
        *self.table.write().await = table;
        Ok(())
    }

    /// Reloads when the journal has moved since the last load.
    pub async fn refresh(&self) -> Result<()> {
        let seq = self.journal.sync_ledger().await?;
        if seq != self.table.read().await.journal_seq {
            self.load().await?;
        }
        Ok(())
    }

    /// Reloads when a token changed since the last load, in this process or another
    /// (a token created or revoked on another node of the same store). Cheap when none
    /// did: one look at the ledger, which the caller keeps following the journal.
    pub async fn follow(&self) -> Result<bool> {
        let now = self.journal.ledger().revisions_of_kind(ObjectKind::Token);
        if now == self.table.read().await.token_revisions {
            return Ok(false);
        }
        self.load().await?;
        Ok(true)
    }

    pub async fn is_empty(&self) -> bool {
        self.table.read().await.by_id.is_empty()
    }

    /// Creates a token; returns its record and the token string (shown once).
    /// `secret` lets an operator supply the token (e.g. `AKTE_ADMIN_TOKEN`).
    pub async fn create(&self, actor: &str, new: NewToken) -> Result<(TokenRevision, String)> {
        let NewToken {
            role,
            name,
            person,
            expires_at,
            secret,
            parties,
            years,
            mut classes,
        } = new;
        let name = name.as_str();
        validate_person(&person)?;
        for c in &classes {
            crate::ids::validate_class(c)
                .map_err(|e| Error::unprocessable("classes", e.to_string()))?;
        }
        classes.sort();
        classes.dedup();
        if let Some(y) = years
            && !(1900 <= y.from && y.from <= y.to && y.to <= 2200)
        {
            return Err(Error::unprocessable(
                "years",
                "first and last fiscal year, 1900 to 2200, the first not after the last",
            ));
        }
        for p in &parties {
            crate::ids::validate_id(p)
                .map_err(|_| Error::invalid("parties", format!("{p:?} is not a party id")))?;
        }
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.@".contains(&b))
        {
            return Err(Error::invalid(
                "name",
                "1-64 characters of letters, digits and - _ . @",
            ));
        }
        let now = self.clock.now();
        if let Some(e) = expires_at
            && e <= now
        {
            return Err(Error::unprocessable("expires", "lies in the past"));
        }
        let secret = match secret {
            Some(s) if s.len() < 32 => {
                return Err(Error::invalid(
                    "token",
                    "a supplied token must have at least 32 characters",
                ));
            }
            Some(s) => s,
            None => new_secret()?,
        };
        let t = TokenRevision {
            format: FORMAT,
            id: self.clock.new_id().to_string(),
            rev: 1,
            prev_hash: None,
            name: name.to_string(),
            role,
            secret_sha256: hash_token(&secret),
            created_at: now,
            created_by: actor.to_string(),
            expires_at,
            revoked_at: None,
            revoked_by: None,
            parties,
            person: Some(person),
            years,
            classes,
        };
        audit::commit_revision(
            &self.store,
            &self.journal,
            ObjectKind::Token,
            &t.id,
            1,
            codec::encode(&t)?,
            actor,
            "token.create",
            Some(format!("{} ({}) for {}", t.name, t.role, t.person())),
        )
        .await?;
        let mut table = self.table.write().await;
        table.by_hash.insert(t.secret_sha256.clone(), t.clone());
        table.by_id.insert(t.id.clone(), t.clone());
        Ok((t, secret))
    }

    pub async fn revoke(&self, actor: &str, id: &str) -> Result<TokenRevision> {
        let (prev, prev_hash) = audit::latest_revision(
            &self.store,
            &self.journal,
            ObjectKind::Token,
            id,
            TokenRevision::decode,
        )
        .await?;
        if prev.revoked_at.is_some() {
            return Ok(prev);
        }
        // Nobody may lock everyone out: the last admin token that works stays.
        if prev.role == Role::Admin {
            let now = self.clock.now();
            let others = self
                .table
                .read()
                .await
                .by_id
                .values()
                .filter(|t| {
                    t.id != prev.id
                        && t.role == Role::Admin
                        && t.revoked_at.is_none()
                        && t.expires_at.is_none_or(|e| e > now)
                })
                .count();
            if others == 0 {
                return Err(Error::LastAdmin { id: id.to_string() });
            }
        }
        let mut t = prev.clone();
        t.rev =
            audit::next_rev(&self.store, &self.journal, ObjectKind::Token, id, prev.rev).await?;
        t.prev_hash = Some(prev_hash);
        t.revoked_at = Some(self.clock.now());
        t.revoked_by = Some(actor.to_string());
        audit::commit_revision(
            &self.store,
            &self.journal,
            ObjectKind::Token,
            &t.id,
            t.rev,
            codec::encode(&t)?,
            actor,
            "token.revoke",
            Some(t.name.clone()),
        )
        .await?;
        let mut table = self.table.write().await;
        table.by_hash.insert(t.secret_sha256.clone(), t.clone());
        table.by_id.insert(t.id.clone(), t.clone());
        Ok(t)
    }

    pub async fn list(&self) -> Vec<TokenRevision> {
        let mut v: Vec<TokenRevision> = self.table.read().await.by_id.values().cloned().collect();
        v.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        v
    }

    /// Checks a presented token.
    pub async fn authenticate(
        &self,
        presented: &str,
    ) -> std::result::Result<Principal, AuthFailure> {
        if presented.is_empty() {
            return Err(AuthFailure::Missing);
        }
        let h = hash_token(presented);
        let table = self.table.read().await;
        let t = table.by_hash.get(&h).ok_or(AuthFailure::Invalid)?;
        // The map lookup found it by hash; compare in constant time all the same.
        if !bool::from(t.secret_sha256.as_bytes().ct_eq(h.as_bytes())) {
            return Err(AuthFailure::Invalid);
        }
        if t.revoked_at.is_some() {
            return Err(AuthFailure::Revoked);
        }
        if let Some(e) = t.expires_at
            && e <= self.clock.now()
        {
            return Err(AuthFailure::Expired);
        }
        Ok(Principal {
            token_id: t.id.clone(),
            person: t.person(),
            name: t.name.clone(),
            role: t.role,
            parties: t.parties.clone(),
            years: t.years,
            classes: t.classes.clone(),
        })
    }

    /// On a store without tokens, creates the first admin token (from `supplied`, or a
    /// new random one) and returns it; otherwise `None`.
    pub async fn bootstrap(&self, supplied: Option<String>) -> Result<Option<String>> {
        self.load().await?;
        if !self.is_empty().await {
            return Ok(None);
        }
        let (_, secret) = self
            .create(
                "system:bootstrap",
                NewToken {
                    role: Role::Admin,
                    name: "admin".into(),
                    person: std::env::var("AKTE_ADMIN_PERSON").unwrap_or_else(|_| "admin".into()),
                    secret: supplied,
                    ..Default::default()
                },
            )
            .await?;
        Ok(Some(secret))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    fn setup() -> (Tokens, Arc<FixedClock>) {
        let store = Store::open("memory://").unwrap();
        let clock = Arc::new(FixedClock::new(
            chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 1, 0, 0, 0).unwrap(),
        ));
        let journal = Arc::new(Journal::new(store.clone(), clock.clone()));
        (Tokens::new(store, journal, clock.clone()), clock)
    }

    #[tokio::test]
    async fn created_token_authenticates_until_revoked() {
        let (tokens, _) = setup();
        let (t, secret) = tokens
            .create("t", NewToken::new(Role::Clerk, "anna", "anna"))
            .await
            .unwrap();
        assert!(secret.starts_with("akte_"));
        assert_ne!(t.secret_sha256, secret);
        let p = tokens.authenticate(&secret).await.unwrap();
        assert_eq!(p.role, Role::Clerk);
        assert_eq!(
            tokens.authenticate("akte_wrong").await,
            Err(AuthFailure::Invalid)
        );
        tokens.revoke("t", &t.id).await.unwrap();
        assert_eq!(
            tokens.authenticate(&secret).await,
            Err(AuthFailure::Revoked)
        );
    }

    #[tokio::test]
    async fn expired_tokens_are_refused() {
        let (tokens, clock) = setup();
        let soon = clock.now() + chrono::Duration::hours(1);
        let (_, secret) = tokens
            .create(
                "t",
                NewToken {
                    expires_at: Some(soon),
                    ..NewToken::new(Role::Auditor, "pruefer", "pruefer")
                },
            )
            .await
            .unwrap();
        assert!(tokens.authenticate(&secret).await.is_ok());
        clock.set(soon + chrono::Duration::seconds(1));
        assert_eq!(
            tokens.authenticate(&secret).await,
            Err(AuthFailure::Expired)
        );
    }

    #[tokio::test]
    async fn bootstrap_creates_one_admin_token_only_once() {
        let (tokens, _) = setup();
        let first = tokens.bootstrap(None).await.unwrap().unwrap();
        assert_eq!(tokens.authenticate(&first).await.unwrap().role, Role::Admin);
        assert!(tokens.bootstrap(None).await.unwrap().is_none());
    }
}

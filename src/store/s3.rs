//! The S3 calls `object_store` does not make: Object Lock (the bucket's configuration,
//! per-object retention and legal holds) and object versions (listing, versioned
//! DELETE). Requests are signed by `object_store`'s own SigV4 signer
//! (`Signer::signed_url_opts`, which also binds the headers we send) and sent with the
//! same HTTP client stack; nothing here signs by hand.
//!
//! Why these calls matter: on a bucket with Object Lock, S3 itself refuses to delete or
//! overwrite a locked object version — write-once stops being a promise of akte's code.
//! A plain DELETE on a versioned bucket only adds a delete marker (the data stays), so
//! disposal and key destruction delete *versions*.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::signer::{SignedUrlOptions, Signer};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// How long a signed request stays valid; it is sent at once.
const SIGNED_FOR: Duration = Duration::from_secs(300);
/// Requests of one listing page.
const MAX_KEYS: &str = "1000";

/// The retention mode of a locked object version (S3 Object Lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockMode {
    /// Nobody, not even the bucket's root account, can shorten or remove the retention.
    Compliance,
    /// Users with `s3:BypassGovernanceRetention` may; akte never sends the bypass.
    Governance,
}

impl LockMode {
    pub fn parse(s: &str) -> Option<LockMode> {
        match s.to_ascii_lowercase().as_str() {
            "compliance" => Some(LockMode::Compliance),
            "governance" => Some(LockMode::Governance),
            _ => None,
        }
    }

    fn wire(self) -> &'static str {
        match self {
            LockMode::Compliance => "COMPLIANCE",
            LockMode::Governance => "GOVERNANCE",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LockMode::Compliance => "compliance",
            LockMode::Governance => "governance",
        }
    }
}

/// What the bucket says about Object Lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketLock {
    pub enabled: bool,
    /// The default retention new object versions get: mode and days.
    pub default: Option<(LockMode, u32)>,
}

/// The lock of one object version, as `HEAD` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectLockState {
    pub mode: Option<LockMode>,
    pub retain_until: Option<DateTime<Utc>>,
    pub legal_hold: bool,
}

/// One version of an object (or a delete marker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The key, relative to the store's prefix.
    pub key: String,
    pub version_id: String,
    pub delete_marker: bool,
    pub latest: bool,
}

/// The instant an object whose last day of retention is `day` may go: the end of that
/// day (UTC). S3 shows it as `<day>T23:59:59Z`, the same date as the record's
/// `retain_until`.
pub fn end_of_day(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(23, 59, 59)
        .map(|t| t.and_utc())
        .unwrap_or_else(|| DateTime::<Utc>::MAX_UTC)
}

/// A bucket's extra API, for one store (bucket and key prefix).
#[derive(Clone)]
pub struct S3Api {
    s3: Arc<AmazonS3>,
    prefix: String,
    http: reqwest::Client,
    desc: String,
}

impl std::fmt::Debug for S3Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "S3Api({})", self.desc)
    }
}

/// A reply.
struct Reply {
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
}

impl S3Api {
    pub(crate) fn new(s3: Arc<AmazonS3>, prefix: &str, desc: &str) -> Result<S3Api> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Internal(format!("HTTP client: {e}")))?;
        Ok(S3Api {
            s3,
            prefix: prefix.trim_matches('/').to_string(),
            http,
            desc: desc.to_string(),
        })
    }

    fn full(&self, key: &Path) -> Path {
        if self.prefix.is_empty() {
            key.clone()
        } else {
            Path::from(format!("{}/{}", self.prefix, key.as_ref()))
        }
    }

    fn unavailable(&self, what: &str, e: impl std::fmt::Display) -> Error {
        Error::Unavailable(format!("{} ({what}): {e}", self.desc))
    }

    /// Signs and sends one request. `path` is the full object path (empty: the bucket).
    async fn send(
        &self,
        method: http::Method,
        path: &Path,
        query: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Result<Reply> {
        let mut opts = SignedUrlOptions::new().with_query(
            query
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
        );
        if let Some(b) = &body {
            // Object Lock calls need a checksum of the body (S3 accepts one in place of
            // Content-MD5); binding it to the signature also protects it.
            let sum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b));
            let value = http::HeaderValue::from_str(&sum)
                .map_err(|e| Error::Internal(format!("checksum header: {e}")))?;
            opts = opts
                .with_signed_header(
                    http::HeaderName::from_static("x-amz-checksum-sha256"),
                    value,
                )
                .with_signed_header(
                    http::HeaderName::from_static("x-amz-sdk-checksum-algorithm"),
                    http::HeaderValue::from_static("SHA256"),
                );
        }
        let url = self
            .s3
            .signed_url_opts(method.clone(), path, SIGNED_FOR, &opts)
            .await
            .map_err(|e| self.unavailable("signing", e))?;
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            let sum = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(&b));
            req = req
                .header("x-amz-checksum-sha256", sum)
                .header("x-amz-sdk-checksum-algorithm", "SHA256")
                .body(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.unavailable("request", e))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| self.unavailable("response", e))?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// The S3 error code and message of a failed reply.
    fn refusal(&self, what: &str, key: &str, r: &Reply) -> Error {
        let text = String::from_utf8_lossy(&r.body);
        let code = xml_text(&text, "Code").unwrap_or_default();
        let message = xml_text(&text, "Message").unwrap_or_default();
        let reason = format!(
            "{what} of {key} on {}: HTTP {} {code} {message}",
            self.desc,
            r.status.as_u16()
        );
        match r.status.as_u16() {
            403 if what.starts_with("delete") => Error::ObjectLocked(reason),
            404 => Error::ObjectNotFound {
                key: key.to_string(),
            },
            500..=599 => Error::Unavailable(reason),
            _ => Error::Internal(reason),
        }
    }

    /// The bucket's Object Lock configuration (`GetObjectLockConfiguration`).
    pub async fn bucket_lock(&self) -> Result<BucketLock> {
        let r = self
            .send(
                http::Method::GET,
                &Path::from(""),
                &[("object-lock", "")],
                None,
            )
            .await?;
        // 404: no configuration; 501: a server without Object Lock (s3s-fs).
        if matches!(r.status.as_u16(), 404 | 501) {
            return Ok(BucketLock {
                enabled: false,
                default: None,
            });
        }
        if !r.status.is_success() {
            return Err(self.refusal("reading the Object Lock configuration", "bucket", &r));
        }
        let text = String::from_utf8_lossy(&r.body);
        let enabled = xml_text(&text, "ObjectLockEnabled").as_deref() == Some("Enabled");
        let mode = xml_text(&text, "Mode").and_then(|m| LockMode::parse(&m));
        let days = xml_text(&text, "Days")
            .and_then(|d| d.parse::<u32>().ok())
            .or_else(|| {
                xml_text(&text, "Years")
                    .and_then(|y| y.parse::<u32>().ok())
                    .map(|y| y.saturating_mul(365))
            });
        Ok(BucketLock {
            enabled,
            default: mode.zip(days),
        })
    }

    /// Sets the bucket's default retention (`PutObjectLockConfiguration`): every new
    /// object version is locked from its first byte, before akte sets its own date.
    pub async fn set_default_retention(&self, mode: LockMode, days: u32) -> Result<()> {
        let body = format!(
            "<ObjectLockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention>\
             <Mode>{}</Mode><Days>{days}</Days></DefaultRetention></Rule>\
             </ObjectLockConfiguration>",
            mode.wire()
        );
        let r = self
            .send(
                http::Method::PUT,
                &Path::from(""),
                &[("object-lock", "")],
                Some(Bytes::from(body)),
            )
            .await?;
        if !r.status.is_success() {
            return Err(self.refusal("setting the default retention", "bucket", &r));
        }
        Ok(())
    }

    /// Whether the bucket keeps versions (`GetBucketVersioning`).
    pub async fn versioned(&self) -> Result<bool> {
        let r = self
            .send(
                http::Method::GET,
                &Path::from(""),
                &[("versioning", "")],
                None,
            )
            .await?;
        if !r.status.is_success() {
            // A server without versioning (s3s-fs) has nothing but current objects.
            return Ok(false);
        }
        let text = String::from_utf8_lossy(&r.body);
        Ok(matches!(
            xml_text(&text, "Status").as_deref(),
            Some("Enabled" | "Suspended")
        ))
    }

    /// The lock of the current version of `key` (from `HEAD`), or `None` if absent.
    pub async fn lock_state(&self, key: &Path) -> Result<Option<ObjectLockState>> {
        let r = self
            .send(http::Method::HEAD, &self.full(key), &[], None)
            .await?;
        if r.status.as_u16() == 404 {
            return Ok(None);
        }
        if !r.status.is_success() {
            return Err(self.refusal("reading the lock", key.as_ref(), &r));
        }
        let h = |name: &str| {
            r.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Ok(Some(ObjectLockState {
            mode: h("x-amz-object-lock-mode").and_then(|m| LockMode::parse(&m)),
            retain_until: h("x-amz-object-lock-retain-until-date")
                .and_then(|d| DateTime::parse_from_rfc3339(&d).ok())
                .map(|d| d.with_timezone(&Utc)),
            legal_hold: h("x-amz-object-lock-legal-hold").as_deref() == Some("ON"),
        }))
    }

    /// Extends the retention of the current version of `key` to `until` in `mode`;
    /// never shortens it (S3 refuses that in compliance mode, and akte does not ask in
    /// either). Returns whether it changed anything; `Ok(false)` also for a key that
    /// does not exist.
    pub async fn extend_retention(
        &self,
        key: &Path,
        mode: LockMode,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let Some(state) = self.lock_state(key).await? else {
            return Ok(false);
        };
        self.extend_from(&state, key, mode, until).await
    }

    /// Extends `key`'s retention to `until` unless `state` (its lock as read) already
    /// reaches it; a version locked in compliance mode stays in compliance mode.
    async fn extend_from(
        &self,
        state: &ObjectLockState,
        key: &Path,
        mode: LockMode,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        if state.retain_until.is_some_and(|u| u >= until) {
            return Ok(false);
        }
        let mode = match state.mode {
            Some(LockMode::Compliance) => LockMode::Compliance,
            _ => mode,
        };
        self.put_retention(key, mode, until).await?;
        Ok(true)
    }

    /// Brings the lock of the current version of `key` to at least `until` (if given)
    /// and its legal hold to `hold`, with one `HEAD` and only the writes needed.
    /// Returns (retention extended, legal hold changed); nothing for a missing key.
    pub async fn apply_lock(
        &self,
        key: &Path,
        mode: LockMode,
        until: Option<DateTime<Utc>>,
        hold: bool,
    ) -> Result<(bool, bool)> {
        let Some(state) = self.lock_state(key).await? else {
            return Ok((false, false));
        };
        let extended = match until {
            Some(u) => self.extend_from(&state, key, mode, u).await?,
            None => false,
        };
        let mut held = false;
        if state.legal_hold != hold {
            self.put_legal_hold(key, hold).await?;
            held = true;
        }
        Ok((extended, held))
    }

    async fn put_retention(&self, key: &Path, mode: LockMode, until: DateTime<Utc>) -> Result<()> {
        let body = format!(
            "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>{}</Mode>\
             <RetainUntilDate>{}</RetainUntilDate></Retention>",
            mode.wire(),
            until.format("%Y-%m-%dT%H:%M:%SZ")
        );
        let r = self
            .send(
                http::Method::PUT,
                &self.full(key),
                &[("retention", "")],
                Some(Bytes::from(body)),
            )
            .await?;
        if !r.status.is_success() {
            return Err(self.refusal("setting the retention", key.as_ref(), &r));
        }
        Ok(())
    }

    async fn put_legal_hold(&self, key: &Path, on: bool) -> Result<()> {
        let body = format!(
            "<LegalHold xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>{}</Status>\
             </LegalHold>",
            if on { "ON" } else { "OFF" }
        );
        let r = self
            .send(
                http::Method::PUT,
                &self.full(key),
                &[("legal-hold", "")],
                Some(Bytes::from(body)),
            )
            .await?;
        if !r.status.is_success() {
            return Err(self.refusal("setting the legal hold", key.as_ref(), &r));
        }
        Ok(())
    }

    /// Every version and delete marker of exactly `key`.
    pub async fn versions(&self, key: &Path) -> Result<Vec<Version>> {
        let full = self.full(key);
        let mut out = Vec::new();
        let mut marker: Option<(String, String)> = None;
        loop {
            let mut query: Vec<(&str, &str)> = vec![
                ("versions", ""),
                ("prefix", full.as_ref()),
                ("max-keys", MAX_KEYS),
            ];
            if let Some((k, v)) = &marker {
                query.push(("key-marker", k));
                query.push(("version-id-marker", v));
            }
            let r = self
                .send(http::Method::GET, &Path::from(""), &query, None)
                .await?;
            if !r.status.is_success() {
                return Err(self.refusal("listing the versions", key.as_ref(), &r));
            }
            let text = String::from_utf8_lossy(&r.body).into_owned();
            for (tag, block) in xml_blocks(&text, &["Version", "DeleteMarker"]) {
                let Some(k) = xml_text(&block, "Key") else {
                    continue;
                };
                if k != full.as_ref() {
                    continue;
                }
                out.push(Version {
                    key: key.to_string(),
                    version_id: xml_text(&block, "VersionId").unwrap_or_else(|| "null".into()),
                    delete_marker: tag == "DeleteMarker",
                    latest: xml_text(&block, "IsLatest").as_deref() == Some("true"),
                });
            }
            if xml_text(&text, "IsTruncated").as_deref() != Some("true") {
                return Ok(out);
            }
            match (
                xml_text(&text, "NextKeyMarker"),
                xml_text(&text, "NextVersionIdMarker"),
            ) {
                (Some(k), Some(v)) => marker = Some((k, v)),
                _ => return Ok(out),
            }
        }
    }

    /// Deletes one version of `key` for good. S3 refuses while it is locked or on
    /// legal hold: that refusal is [`Error::ObjectLocked`] with S3's own words.
    pub async fn delete_version(&self, key: &Path, version_id: &str) -> Result<()> {
        let r = self
            .send(
                http::Method::DELETE,
                &self.full(key),
                &[("versionId", version_id)],
                None,
            )
            .await?;
        if r.status.is_success() || r.status.as_u16() == 404 {
            return Ok(());
        }
        Err(self.refusal("deleting a version", key.as_ref(), &r))
    }

    /// Deletes every version and delete marker of `key`: what is gone is gone, also on
    /// a versioned bucket.
    pub async fn delete_all_versions(&self, key: &Path) -> Result<()> {
        for v in self.versions(key).await? {
            self.delete_version(key, &v.version_id).await?;
        }
        Ok(())
    }
}

/// The text of the first `<tag>…</tag>` in `xml` (S3's replies are flat and small).
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&close)? + start;
    Some(unescape(&xml[start..end]))
}

/// The inner text of every `<tag>…</tag>` for any of `tags`, in document order.
fn xml_blocks(xml: &str, tags: &[&str]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let next = tags
            .iter()
            .filter_map(|t| xml[pos..].find(&format!("<{t}>")).map(|i| (pos + i, *t)))
            .min_by_key(|(i, _)| *i);
        let Some((i, tag)) = next else {
            return out;
        };
        let start = i + tag.len() + 2;
        let close = format!("</{tag}>");
        let Some(end) = xml[start..].find(&close).map(|e| e + start) else {
            return out;
        };
        out.push((tag.to_string(), xml[start..end].to_string()));
        pos = end + close.len();
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_listing_is_read_in_order() {
        let xml = "<ListVersionsResult><IsTruncated>false</IsTruncated>\
            <DeleteMarker><Key>p/a</Key><VersionId>3</VersionId><IsLatest>true</IsLatest></DeleteMarker>\
            <Version><Key>p/a</Key><VersionId>2</VersionId><IsLatest>false</IsLatest></Version>\
            <Version><Key>p/ab</Key><VersionId>1</VersionId><IsLatest>true</IsLatest></Version>\
            </ListVersionsResult>";
        let b = xml_blocks(xml, &["Version", "DeleteMarker"]);
        assert_eq!(b.len(), 3);
        assert_eq!(b[0].0, "DeleteMarker");
        assert_eq!(xml_text(&b[1].1, "VersionId").as_deref(), Some("2"));
        assert_eq!(xml_text(xml, "IsTruncated").as_deref(), Some("false"));
    }

    #[test]
    fn end_of_day_keeps_the_date() {
        let d = NaiveDate::from_ymd_opt(2036, 12, 31).unwrap();
        assert_eq!(
            end_of_day(d).format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            "2036-12-31T23:59:59Z"
        );
    }
}

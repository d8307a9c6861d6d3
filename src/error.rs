//! One error type for the library, and the small [`ErrorKind`] the edges translate.
//!
//! Variants are named for what happened and carry the object involved, so that a
//! message on stderr or in a problem+json body names the key an operator must look at.

use std::fmt;

/// What a caller should do about an error: the edges (CLI exit codes, HTTP statuses)
/// map this and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request was malformed; fix the input.
    Invalid,
    /// The thing asked for does not exist.
    NotFound,
    /// Someone else changed the object first; re-read and retry.
    Conflict,
    /// Retention, a hold or write-once forbids the change.
    Locked,
    /// The store could not be reached or refused the operation; retry later.
    Unavailable,
    /// Stored data failed a hash or format check.
    Corrupt,
    /// The input exceeds a configured limit.
    TooLarge,
    /// A bug or an unexpected state.
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::Invalid => "invalid",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Locked => "locked",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::TooLarge => "too-large",
            ErrorKind::Internal => "internal",
        };
        f.write_str(s)
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Each field has its documented shape, but together they break a rule (a role that
    /// ends before it starts). HTTP 422.
    #[error("{field}: {reason}")]
    Unprocessable { field: String, reason: String },
    /// The request does not fit the object's current state (nothing would change, the
    /// hold is already released). HTTP 409.
    #[error("{what}: {reason}")]
    State { what: String, reason: String },
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("unknown record {id}")]
    RecordNotFound { id: String },
    #[error("record {id} has no revision {rev}")]
    RevisionNotFound { id: String, rev: u32 },
    #[error("object {key} not found")]
    ObjectNotFound { key: String },
    #[error("record {id}: revision {rev} was written by someone else first (re-read and retry)")]
    RevisionConflict { id: String, rev: u32 },
    #[error(
        "record {id}: retention may only be extended (current {current}, requested {requested})"
    )]
    RetentionShortening {
        id: String,
        current: String,
        requested: String,
    },
    #[error("record {id} is retained until {retain_until} and cannot be deleted")]
    Retained { id: String, retain_until: String },
    #[error("{key}: stored object is corrupt: {reason}")]
    CorruptObject { key: String, reason: String },
    #[error("{key}: hash mismatch (expected {expected}, found {found})")]
    HashMismatch {
        key: String,
        expected: String,
        found: String,
    },
    #[error("store {store}: {source}")]
    Store {
        store: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot open store {spec}: {reason}")]
    StoreConfig { spec: String, reason: String },
    /// The object store itself refuses (S3 Object Lock: a locked version, a legal hold).
    #[error("the object store refuses: {0}")]
    ObjectLocked(String),
    /// The object store could not be reached or answered with a server error.
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("record {id} was disposed; only its tombstone remains")]
    Disposed { id: String },
    #[error("party {id} was erased: its personal data is gone and it cannot change")]
    Erased { id: String },
    #[error(
        "four-eyes rule: disposal request {id} must be approved by someone other than its requester"
    )]
    FourEyes { id: String },
    #[error("not eligible for disposal: {reason}")]
    NotEligible { reason: String },
    #[error(
        "the clock ({now}) is behind the last journal entry ({last}); refusing retention decisions"
    )]
    ClockBehind { now: String, last: String },
    #[error("content exceeds the upload limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("search index: {0}")]
    Index(String),
    #[error("catalog: {0}")]
    Catalog(String),
    #[error("the search index in {dir} is in use by another process (a running server?)")]
    IndexInUse { dir: String },
    #[error("token {id} is the last active admin token; create another admin token first")]
    LastAdmin { id: String },
    #[error("internal error: {0}")]
    Internal(String),
}

/// What an object store's error means for the caller: a missing object is not found, a
/// lost conditional write a conflict, a refusal by permissions or an unsupported call an
/// operator's problem (internal), everything else (network, throttling, timeouts)
/// unavailable — retry later.
fn store_kind(e: &object_store::Error) -> ErrorKind {
    use object_store::Error as S;
    match e {
        S::NotFound { .. } => ErrorKind::NotFound,
        S::AlreadyExists { .. } | S::Precondition { .. } | S::NotModified { .. } => {
            ErrorKind::Conflict
        }
        S::InvalidPath { .. } => ErrorKind::Invalid,
        S::PermissionDenied { .. }
        | S::Unauthenticated { .. }
        | S::NotSupported { .. }
        | S::NotImplemented { .. }
        | S::UnknownConfigurationKey { .. } => ErrorKind::Internal,
        _ => ErrorKind::Unavailable,
    }
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid { .. } | Error::Unprocessable { .. } => ErrorKind::Invalid,
            Error::State { .. } => ErrorKind::Conflict,
            Error::RecordNotFound { .. }
            | Error::RevisionNotFound { .. }
            | Error::ObjectNotFound { .. } => ErrorKind::NotFound,
            Error::RevisionConflict { .. } | Error::LastAdmin { .. } => ErrorKind::Conflict,
            Error::RetentionShortening { .. }
            | Error::Retained { .. }
            | Error::Disposed { .. }
            | Error::Erased { .. }
            | Error::FourEyes { .. }
            | Error::NotEligible { .. }
            | Error::ClockBehind { .. } => ErrorKind::Locked,
            Error::CorruptObject { .. } | Error::HashMismatch { .. } => ErrorKind::Corrupt,
            Error::Store { source, .. } => store_kind(source),
            Error::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound => ErrorKind::NotFound,
                std::io::ErrorKind::PermissionDenied => ErrorKind::Internal,
                _ => ErrorKind::Unavailable,
            },
            Error::StoreConfig { .. } | Error::Unavailable(_) => ErrorKind::Unavailable,
            Error::ObjectLocked(_) => ErrorKind::Locked,
            Error::TooLarge { .. } => ErrorKind::TooLarge,
            Error::Index(_) | Error::IndexInUse { .. } => ErrorKind::Unavailable,
            Error::Catalog(_) => ErrorKind::Internal,
            Error::Internal(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unprocessable(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Unprocessable {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// An object the request names (in its body or query, not its path) that does not
    /// exist: the request cannot be carried out (422), while the path's own object was
    /// found. Other errors pass unchanged.
    pub fn referenced(self, field: &str) -> Self {
        if self.kind() == ErrorKind::NotFound {
            Error::unprocessable(field, self.to_string())
        } else {
            self
        }
    }

    /// A change that would change nothing (409: it conflicts with the current state).
    pub(crate) fn unchanged(what: impl Into<String>) -> Self {
        Error::state(what, "nothing would change")
    }

    pub(crate) fn state(what: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::State {
            what: what.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(path: impl fmt::Display, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_string(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn store(source: object_store::Error) -> Error {
        Error::Store {
            store: "s3://b".into(),
            source,
        }
    }

    #[test]
    fn object_store_errors_map_by_kind() {
        let path = || "p".to_string();
        let boxed = || -> Box<dyn std::error::Error + Send + Sync> { "x".into() };
        assert_eq!(
            store(object_store::Error::NotFound {
                path: path(),
                source: boxed()
            })
            .kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            store(object_store::Error::Precondition {
                path: path(),
                source: boxed()
            })
            .kind(),
            ErrorKind::Conflict
        );
        assert_eq!(
            store(object_store::Error::PermissionDenied {
                path: path(),
                source: boxed()
            })
            .kind(),
            ErrorKind::Internal
        );
        assert_eq!(
            store(object_store::Error::Generic {
                store: "S3",
                source: boxed()
            })
            .kind(),
            ErrorKind::Unavailable
        );
        let io = Error::io("f", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(io.kind(), ErrorKind::NotFound);
    }
}

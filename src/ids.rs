//! Object ids: time-ordered UUIDs (made by `clock`), and their validation, the one check
//! every module runs before an id becomes part of a key; and the shapes of the other
//! names and values callers give ([`shape`]).

use crate::error::{Error, Result};

/// Checks that `id` is an object id before it names anything: a UUID in its hyphenated
/// form (`format: uuid` in the OpenAPI document), nothing else `uuid` would also parse.
pub fn validate_id(id: &str) -> Result<()> {
    if id.len() == 36 && uuid::Uuid::try_parse(id).is_ok() {
        Ok(())
    } else {
        Err(Error::invalid(
            "id",
            format!("{id:?} is not an object id (a UUID)"),
        ))
    }
}

/// The shapes of the names and values callers give, as regular expressions. Validation
/// matches against these, and the OpenAPI document states the same text as `pattern`
/// (a test in `api::openapi` checks that every pattern there is one of these).
pub mod shape {
    use std::sync::LazyLock;

    use regex::Regex;

    /// Classes, roles, case kinds, relation kinds: lower-case words joined by `-`.
    pub const SLUG: &str = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$";
    /// Free text that must say something: at least one character that is not an ASCII
    /// space or control character. (Character classes are spelled out rather than `\s`:
    /// regex engines disagree on what `\s` covers.)
    pub const TEXT: &str = r"[^\x00-\x20\x7F]";
    /// A title on one line: no control characters.
    pub const LINE: &str = r"^[^\x00-\x1F\x7F-\x9F]*$";
    /// A name: one line that says something.
    pub const NAME: &str = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\x9F][^\x00-\x1F\x7F-\x9F]*$";
    /// An email address: something, `@`, a domain with a dot; no spaces.
    pub const EMAIL: &str =
        r"^[^@\x00-\x20\x7F]+@[^@.\x00-\x20\x7F][^@\x00-\x20\x7F]*\.[^@\x00-\x20\x7F]+$";
    /// Email addresses separated by commas (query parameters naming several).
    pub const EMAILS: &str = r"^[^@,\x00-\x20\x7F]+@[^@.,\x00-\x20\x7F][^@,\x00-\x20\x7F]*\.[^@,\x00-\x20\x7F]+(?:,[^@,\x00-\x20\x7F]+@[^@.,\x00-\x20\x7F][^@,\x00-\x20\x7F]*\.[^@,\x00-\x20\x7F]+)*$";
    /// A domain name (`mueller-gmbh.de`).
    pub const DOMAIN: &str = r"^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$";
    /// A phone number: digits with `+ - / ( )` and spaces.
    pub const PHONE: &str = r"^[0-9 +/()-]*[0-9][0-9 +/()-]*$";
    /// A VAT identification number: two letters and 2–12 letters or digits; for Germany
    /// (DE) exactly nine digits. Upper case, no spaces.
    pub const VAT_ID: &str = r"^(?:DE[0-9]{9}|(?:[A-CE-Z][A-Z]|D[A-DF-Z])[A-Z0-9]{2,12})$";
    /// A party's role in a record; `*` (every role) where links are removed.
    pub const LINK_ROLE: &str = r"^(?:\*|[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)$";
    /// A media type (`application/pdf`, `text/plain; charset=utf-8`).
    pub const MEDIA_TYPE: &str = r"^[!-.0-~]+/[ -~]+$";
    /// Object ids separated by commas (query parameters naming several).
    pub const UUIDS: &str = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?:,[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})*$";
    /// Login-like names of persons and tokens.
    pub const LOGIN: &str = r"^[A-Za-z0-9_.@-]{1,64}$";

    /// Every shape, for the OpenAPI test.
    pub const ALL: [&str; 13] = [
        SLUG, TEXT, LINE, NAME, EMAIL, EMAILS, DOMAIN, PHONE, VAT_ID, LINK_ROLE, MEDIA_TYPE, UUIDS,
        LOGIN,
    ];

    /// Whether `value` has the shape `pattern` (one of the constants above).
    pub fn matches(pattern: &'static str, value: &str) -> bool {
        static COMPILED: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
            ALL.iter()
                .filter_map(|p| Regex::new(p).ok().map(|r| (*p, r)))
                .collect()
        });
        COMPILED
            .iter()
            .find(|(p, _)| std::ptr::eq(*p, pattern) || *p == pattern)
            .is_some_and(|(_, r)| r.is_match(value))
    }
}

/// Validates a class name: lower-case words joined by `-`, as in the retention catalogue.
pub fn validate_class(class: &str) -> Result<()> {
    if shape::matches(shape::SLUG, class) {
        Ok(())
    } else {
        Err(Error::invalid(
            "class",
            format!(
                "{class:?} must be lower-case letters, digits and '-' (e.g. invoice, business-letter)"
            ),
        ))
    }
}

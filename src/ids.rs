//! Object ids: time-ordered UUIDs (made by `clock`), and their validation, the one check
//! every module runs before an id becomes part of a key.

use crate::error::{Error, Result};

/// Checks that `id` is an object id (a UUID) before it names anything.
pub fn validate_id(id: &str) -> Result<()> {
    uuid::Uuid::parse_str(id)
        .map(|_| ())
        .map_err(|_| Error::invalid("id", format!("{id:?} is not a record id (UUID)")))
}

/// Validates a class name: lower-case words joined by `-`, as in the retention catalogue.
pub fn validate_class(class: &str) -> Result<()> {
    let ok = !class.is_empty()
        && class.len() <= 64
        && class
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !class.starts_with('-')
        && !class.ends_with('-');
    if ok {
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

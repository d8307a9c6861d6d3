//! akte: a revision-safe archive for the Kundenakte.
//!
//! The object store is the source of truth ([`store`]); every state change is a
//! revision plus a hash-chained journal entry ([`audit`]); [`archive`] ties them into
//! records. See `ARCHITECTURE.md` for the codemap and the invariants.

#![deny(clippy::unwrap_used)]

pub mod access;
pub mod api;
pub mod archive;
pub mod audit;
pub mod case;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod disposal;
pub mod error;
pub mod export;
pub mod extract;
#[doc(hidden)]
pub mod fuzzing;
pub mod ids;
pub mod ingest;
pub mod party;
pub mod record;
pub mod retention;
pub mod search;
pub mod service;
pub mod smtp;
pub mod store;
pub mod verify;
pub mod web;
pub mod worm;

pub use error::{Error, ErrorKind, Result};

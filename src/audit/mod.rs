//! The audit trail: the hash-chained journal and verification of the whole store.

pub mod journal;
pub mod verify;

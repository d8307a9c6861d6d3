//! Ingest (DESIGN §5): emails and mailboxes. The raw bytes are archived first, as the
//! original; what parsing yields (headers, thread, text, attachments) is additional.

pub mod batch;
pub mod content;
pub mod import;
pub mod mail;
pub mod mbox;
pub mod rules;

//! Entry points for coverage-guided fuzzing: one function per parser that takes bytes
//! from outside. The afl.rs targets in `fuzz/` call them, and `tests/fuzz_corpora.rs`
//! replays the committed corpora and every crash found through them. Each must return
//! for any input: errors are fine, panics, hangs and unbounded allocations are not.

use std::collections::HashMap;
use std::sync::LazyLock;

/// An email as it arrives (parsed under `catch_unwind`, as ingest does).
pub fn email(data: &[u8]) {
    let _ = crate::extract::mail::parse(data);
}

/// An mbox split into messages (with a small size bound, so that the bound is hit).
pub fn mbox(data: &[u8]) {
    for m in crate::ingest::mbox::Messages::with_limit(data, 64 * 1024) {
        let _ = m;
    }
}

/// A document through the extractors; the first byte picks the format.
pub fn document(data: &[u8]) {
    use crate::extract::document::{Kind, extract};
    use office_oxide::DocumentFormat as F;
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let kind = match pick % 9 {
        0 => Kind::Pdf,
        1 => Kind::Office(F::Docx),
        2 => Kind::Office(F::Xlsx),
        3 => Kind::Office(F::Pptx),
        4 => Kind::OpenDocument,
        5 => Kind::Rtf,
        6 => Kind::Html,
        7 => Kind::Xml,
        _ => Kind::Text,
    };
    let _ = extract(bytes, kind);
}

/// A party import file, as CSV and as JSON.
pub fn party_import(data: &[u8]) {
    let _ = crate::ingest::parties::parse_csv(data, &HashMap::new());
    let _ = crate::ingest::parties::parse_json(data);
}

/// A `Range` header against a 10,000-byte content.
pub fn range(data: &[u8]) {
    if let Ok(h) = std::str::from_utf8(data)
        && let Some(Ok(r)) = crate::api::records::parse_range(h, 10_000)
    {
        assert!(
            r.start <= r.end && r.end <= 10_000,
            "range out of bounds: {r:?}"
        );
    }
}

/// A retention catalogue and a rule file (both TOML a company edits).
pub fn catalogue(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::retention::catalogue::Catalogue::parse(text);
        let _ = crate::ingest::rules::Rules::parse(text, "fuzz", &|_| true);
    }
}

static QUERY_INDEX: LazyLock<Option<(tempfile::TempDir, crate::search::SearchIndex)>> =
    LazyLock::new(|| {
        let dir = tempfile::tempdir().ok()?;
        let index = crate::search::SearchIndex::open(dir.path(), false).ok()?;
        Some((dir, index))
    });

/// A search query (any text, any paging) against an empty index.
pub fn query(data: &[u8]) {
    let Some((_, index)) = QUERY_INDEX.as_ref() else {
        return;
    };
    let Ok(q) = std::str::from_utf8(data) else {
        return;
    };
    let r = crate::search::SearchRequest {
        q: q.to_string(),
        limit: 10,
        offset: data.len() * 997,
        fuzzy: data.first().is_some_and(|b| b % 2 == 0),
        facets: true,
        ..Default::default()
    };
    let _ = index.search(&r, chrono::NaiveDate::MIN);
}

/// A zip upload for `/v1/imports`, unpacked with its size and entry bounds.
pub fn zip(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else {
        return;
    };
    let upload = dir.path().join("upload.zip");
    if std::fs::write(&upload, data).is_err() {
        return;
    }
    let cap = (data.len() as u64).saturating_mul(20);
    let _ = crate::ingest::zip::unzip(&upload, &dir.path().join("files"), cap);
}

/// A request body as the API reads it. The first byte picks: 0 a `multipart/form-data`
/// upload (boundary `akte`), read part by part with the metadata part bounded and parsed
/// as the upload handler does; otherwise a JSON body of one of the request types,
/// through the strict reader every JSON body goes through.
pub fn request(data: &[u8]) {
    use crate::api::params::json;
    static RT: LazyLock<Option<tokio::runtime::Runtime>> =
        LazyLock::new(|| tokio::runtime::Builder::new_current_thread().build().ok());
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    match pick % 8 {
        0 => {
            let Some(rt) = RT.as_ref() else {
                return;
            };
            rt.block_on(multipart(bytes::Bytes::copy_from_slice(body)));
        }
        1 => drop(json::<crate::party::PartyData>(body)),
        2 => drop(json::<crate::api::record_views::RecordMeta>(body)),
        3 => drop(json::<crate::api::record_views::AmendRequest>(body)),
        4 => drop(json::<crate::api::retention::PlaceHold>(body)),
        5 => drop(json::<crate::api::parties::LinkRequest>(body)),
        6 => drop(json::<crate::api::tokens::CreateToken>(body)),
        _ => drop(json::<crate::case::NewCase>(body)),
    }
}

async fn multipart(body: bytes::Bytes) {
    use axum::extract::FromRequest;
    let Ok(req) = axum::http::Request::builder()
        .method("POST")
        .header("content-type", "multipart/form-data; boundary=akte")
        .body(axum::body::Body::from(body))
    else {
        return;
    };
    let Ok(mut mp) = axum::extract::Multipart::from_request(req, &()).await else {
        return;
    };
    for _ in 0..16 {
        let Ok(Some(mut field)) = mp.next_field().await else {
            return;
        };
        let metadata = field.name() == Some("metadata");
        let _ = (field.file_name(), field.content_type());
        let mut read = Vec::new();
        while let Ok(Some(chunk)) = field.chunk().await {
            if read.len() + chunk.len() > 64 * 1024 {
                break;
            }
            read.extend_from_slice(&chunk);
        }
        if metadata {
            let _ = crate::api::params::json::<Option<crate::api::record_views::RecordMeta>>(&read);
        }
    }
}

/// A fuzz target: any bytes in, nothing out.
pub type Target = fn(&[u8]);

/// Every target by name (for the corpus replay).
pub const TARGETS: &[(&str, Target)] = &[
    ("email", email),
    ("mbox", mbox),
    ("document", document),
    ("party_import", party_import),
    ("range", range),
    ("catalogue", catalogue),
    ("query", query),
    ("zip", zip),
    ("request", request),
];

//! Text of a record's content, for the search index and snippets.
//!
//! Text-like media types (plain, CSV, Markdown, JSON, XML, HTML with tags stripped, raw
//! email) are read from the content, up to [`MAX_SOURCE`] bytes. Other documents (PDF,
//! Office, OpenDocument, RTF, scans by OCR) have their text extracted once at ingest, by
//! `document` in worker processes (`sandbox`), and kept in the record's sealed metadata
//! (`extra.text`). Types without an extractor yield no text (archived, never rejected).

pub mod document;
pub mod sandbox;

use futures::TryStreamExt;

use crate::archive::Archive;
use crate::error::Result;
use crate::record::RecordRevision;

/// Content larger than this is indexed by its first `MAX_SOURCE` bytes only.
pub const MAX_SOURCE: u64 = 8 * 1024 * 1024;

/// Snippets are cut from the first this many bytes of a hit's content.
pub const SNIPPET_SOURCE: u64 = 512 * 1024;

/// Whether a media type has text we can read directly.
pub fn is_text_like(media_type: &str) -> bool {
    let m = media_type.to_ascii_lowercase();
    m.starts_with("text/")
        || m == "message/rfc822"
        || m == "application/json"
        || m == "application/xml"
        || m.ends_with("+xml")
        || m.ends_with("+json")
}

/// The text of `r`'s content (empty when the type has no extractor).
pub async fn record_text(archive: &Archive, r: &RecordRevision) -> Result<String> {
    record_text_upto(archive, r, MAX_SOURCE).await
}

/// Like [`record_text`], from at most the first `max` bytes of content (snippets).
pub async fn record_text_upto(archive: &Archive, r: &RecordRevision, max: u64) -> Result<String> {
    // Text extracted at ingest (PDF, Office, OpenDocument, RTF, OCR) is kept, sealed,
    // with the record's metadata.
    if let Some(t) = r.extra.get("text") {
        return Ok(t.clone());
    }
    if !is_text_like(&r.content.media_type) || r.content.size == 0 {
        return Ok(String::new());
    }
    let end = r.content.size.min(max).min(MAX_SOURCE);
    let stream = archive.content_stream(r, Some(0..end)).await?;
    let chunks: Vec<bytes::Bytes> = stream.try_collect().await?;
    let bytes = chunks.concat();
    Ok(text_of(&r.content.media_type, &bytes))
}

/// Text of bytes of a given media type.
pub fn text_of(media_type: &str, bytes: &[u8]) -> String {
    if media_type.eq_ignore_ascii_case("message/rfc822") {
        return crate::ingest::mail::index_text(bytes);
    }
    let s = String::from_utf8_lossy(bytes);
    if media_type.eq_ignore_ascii_case("text/html") {
        strip_tags(&s)
    } else {
        s.into_owned()
    }
}

/// Drops tags, `<script>`/`<style>` bodies and decodes the common entities.
pub fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let lower = html.to_ascii_lowercase();
    let mut i = 0;
    let b = html.as_bytes();
    while i < b.len() {
        if b[i] == b'<' {
            let rest = &lower[i..];
            let skip_to = if rest.starts_with("<script") {
                rest.find("</script>").map(|p| p + 9)
            } else if rest.starts_with("<style") {
                rest.find("</style>").map(|p| p + 8)
            } else {
                rest.find('>').map(|p| p + 1)
            };
            match skip_to {
                Some(n) => {
                    i += n;
                    out.push(' ');
                }
                None => break,
            }
        } else {
            let next = html[i..].find('<').map_or(html.len(), |p| i + p);
            out.push_str(&html[i..next]);
            i = next;
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&auml;", "ä")
        .replace("&ouml;", "ö")
        .replace("&uuml;", "ü")
        .replace("&Auml;", "Ä")
        .replace("&Ouml;", "Ö")
        .replace("&Uuml;", "Ü")
        .replace("&szlig;", "ß")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_loses_tags_and_scripts() {
        let t = strip_tags("<p>Sehr <b>geehrte</b> Frau M&uuml;ller</p><script>x()</script>ok");
        assert!(t.contains("Sehr"));
        assert!(t.contains("geehrte"));
        assert!(t.contains("Müller"));
        assert!(!t.contains("x()"));
        assert!(t.contains("ok"));
    }
}

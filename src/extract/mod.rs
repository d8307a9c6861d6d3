//! Text of a record's content, for the search index and snippets.
//!
//! Text-like media types (plain, CSV, Markdown, JSON, XML, HTML with tags stripped, raw
//! email) are read from the content, up to [`MAX_SOURCE`] bytes. Other documents (PDF,
//! Office, OpenDocument, RTF, scans by OCR) have their text extracted once at ingest, by
//! `document` in worker processes (`sandbox`), and kept in the record's sealed metadata
//! (`extra.text`). Types without an extractor yield no text (archived, never rejected).

pub mod confine;
pub mod document;
pub mod mail;
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
        return crate::extract::mail::index_text(bytes);
    }
    let s = String::from_utf8_lossy(bytes);
    if media_type.eq_ignore_ascii_case("text/html") {
        html_text(&s)
    } else {
        s.into_owned()
    }
}

/// The text of an HTML document or email body, for search and snippets: html2text's
/// plain rendering (entities decoded, `<script>`/`<style>` dropped, block elements as
/// line breaks, table cells kept together), no link footnotes or decoration.
///
/// The renderer recurses over the element tree, so hostile nesting could exhaust a
/// thread's stack, which no `catch_unwind` catches: it runs on a thread of its own with
/// a stack sized for the nesting this input can have, and elements nested deeper than
/// [`MAX_HTML_NESTING`] are flattened first.
pub fn html_text(html: &str) -> String {
    let html = flatten_deep(html, MAX_HTML_NESTING);
    let job = move || {
        html2text::config::plain_no_decorate()
            .raw_mode(true)
            .no_link_wrapping()
            .allow_width_overflow()
            .string_from_read(html.as_bytes(), 200)
            .unwrap_or_default()
    };
    std::thread::Builder::new()
        .name("html-text".into())
        .stack_size(HTML_STACK)
        .spawn(job)
        .ok()
        .and_then(|t| t.join().ok())
        .unwrap_or_default()
}

/// Elements nested deeper than this are flattened before rendering.
pub const MAX_HTML_NESTING: usize = 512;
/// Stack of the rendering thread: ample for [`MAX_HTML_NESTING`] levels.
const HTML_STACK: usize = 64 * 1024 * 1024;

/// Drops the tags that would open an element deeper than `max` levels (their text
/// stays): the nesting a renderer sees is bounded whatever the input.
fn flatten_deep(html: &str, max: usize) -> String {
    let mut out = String::with_capacity(html.len());
    let mut depth = 0usize;
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let tag = &rest[open..];
        let end = tag.find('>').map_or(tag.len(), |e| e + 1);
        let t = &tag[..end];
        let closing = t.starts_with("</");
        let self_closing = t.ends_with("/>") || t.starts_with("<!") || t.starts_with("<?");
        if closing {
            if depth <= max {
                out.push_str(t);
            }
            depth = depth.saturating_sub(1);
        } else if self_closing {
            out.push_str(t);
        } else {
            depth += 1;
            if depth <= max {
                out.push_str(t);
            }
        }
        rest = &tag[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_loses_tags_and_scripts() {
        let t = html_text("<p>Sehr <b>geehrte</b> Frau M&uuml;ller</p><script>x()</script>ok");
        assert!(t.contains("Sehr"));
        assert!(t.contains("geehrte"));
        assert!(t.contains("Müller"));
        assert!(!t.contains("x()"));
        assert!(t.contains("ok"));
        // Entities beyond the common few, tables, styles and comments.
        let t = html_text(
            "<html><head><style>p{color:red}</style></head><body><!-- intern -->\
             <table><tr><td>Preis&#x3a;</td><td>12&nbsp;&euro;</td></tr></table>\
             <p>Gr&uuml;&szlig;e aus K&ouml;ln &amp; Bonn</p></body></html>",
        );
        assert!(t.contains("Grüße aus Köln & Bonn"), "{t}");
        assert!(t.contains("12\u{a0}€") || t.contains("12 €"), "{t}");
        assert!(!t.contains("color") && !t.contains("intern"), "{t}");
    }

    #[test]
    fn hostile_nesting_is_flattened_not_a_stack_overflow() {
        for open in ["<div>", "<b>", "<table><tr><td>"] {
            let html = format!("{}tief{}", open.repeat(200_000), "</div>".repeat(10));
            let t = html_text(&html);
            assert!(t.contains("tief"), "{open}: {t:.80}");
        }
    }
}

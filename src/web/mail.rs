//! An archived email as a page shows it: headers, and the HTML body sanitized by an
//! allow-list (`ammonia`: no script, no style, no event handler, no form; remote images
//! dropped) or the text part. The original stays byte-exact in the store; this is only
//! a view of it.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use mail_parser::{Address, MessageParser};

#[derive(Debug, Default)]
pub struct MailView {
    pub subject: Option<String>,
    pub from: String,
    pub to: String,
    pub cc: String,
    pub date: Option<String>,
    /// Sanitized HTML (safe to place in the page).
    pub html: Option<String>,
    pub text: String,
    pub blocked_images: usize,
}

fn addresses(a: Option<&Address<'_>>) -> String {
    let Some(a) = a else { return String::new() };
    a.iter()
        .map(|x| match (x.name(), x.address()) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (None, Some(e)) => e.to_string(),
            (Some(n), None) => n.to_string(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Renders `raw` (never panics: the parser runs under `catch_unwind`).
pub fn render(raw: &[u8]) -> MailView {
    std::panic::catch_unwind(|| render_inner(raw)).unwrap_or_else(|_| MailView {
        text: String::from_utf8_lossy(raw).into_owned(),
        ..MailView::default()
    })
}

fn render_inner(raw: &[u8]) -> MailView {
    let Some(m) = MessageParser::default().parse(raw) else {
        return MailView {
            text: String::from_utf8_lossy(raw).into_owned(),
            ..MailView::default()
        };
    };
    let mut v = MailView {
        subject: m.subject().map(str::to_string),
        from: addresses(m.from()),
        to: addresses(m.to()),
        cc: addresses(m.cc()),
        date: m.date().map(|d| d.to_rfc822()),
        ..MailView::default()
    };
    let has_html = m
        .html_body
        .iter()
        .any(|&i| m.parts.get(i as usize).is_some_and(|p| p.is_text_html()));
    if has_html && let Some(html) = m.body_html(0) {
        let (clean, blocked) = sanitize(&html);
        v.html = Some(clean);
        v.blocked_images = blocked;
    }
    v.text = m.body_text(0).map(|t| t.into_owned()).unwrap_or_default();
    v
}

/// Cleans an email's HTML for display; returns it and how many remote images it dropped.
pub fn sanitize(html: &str) -> (String, usize) {
    let blocked = Arc::new(AtomicUsize::new(0));
    let counter = blocked.clone();
    let mut b = ammonia::Builder::default();
    b.url_schemes(HashSet::from([
        "http", "https", "mailto", "tel", "cid", "data",
    ]))
    .link_rel(Some("noopener noreferrer nofollow"))
    .set_tag_attribute_value("a", "target", "_blank")
    .attribute_filter(move |element, attribute, value| {
        if element == "img" && attribute == "src" {
            // Remote images track the reader; only embedded data images are kept.
            if value.starts_with("data:image/") {
                return Some(value.into());
            }
            counter.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if attribute == "href" && value.trim_start().to_ascii_lowercase().starts_with("data:") {
            return None;
        }
        Some(value.into())
    });
    let out = b.clean(html).to_string();
    (out, blocked.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_style_handlers_and_remote_images_are_removed() {
        let (out, blocked) = sanitize(
            "<p onclick=\"alert(1)\">Hallo <b>Welt</b></p><script>alert(2)</script>\
             <img src=\"https://tracker.example/p.gif\"><a href=\"javascript:alert(3)\">x</a>\
             <style>body{}</style><iframe src=\"https://x\"></iframe>\
             <img src=\"data:image/png;base64,AAAA\">",
        );
        assert!(!out.contains("script"), "{out}");
        assert!(!out.contains("onclick"), "{out}");
        assert!(!out.contains("javascript"), "{out}");
        assert!(!out.contains("tracker.example"), "{out}");
        assert!(!out.contains("iframe") && !out.contains("<style"), "{out}");
        assert!(out.contains("<b>Welt</b>"), "{out}");
        assert!(out.contains("data:image/png"), "{out}");
        assert_eq!(blocked, 1);
    }

    #[test]
    fn an_email_renders_with_headers_and_its_html_cleaned() {
        let raw = b"From: Anna Muster <anna@example.de>\r\nTo: einkauf@example.com\r\n\
Subject: Angebot\r\nDate: Tue, 1 Oct 2024 10:00:00 +0200\r\nMIME-Version: 1.0\r\n\
Content-Type: text/html; charset=utf-8\r\n\r\n<p>Guten Tag</p><script>alert(1)</script>\r\n";
        let v = render(raw);
        assert_eq!(v.subject.as_deref(), Some("Angebot"));
        assert_eq!(v.from, "Anna Muster <anna@example.de>");
        let html = v.html.expect("html body");
        assert!(
            html.contains("Guten Tag") && !html.contains("script"),
            "{html}"
        );
        // Not an email at all: shown as text, no panic.
        let v = render(b"\xff\xfe garbage");
        assert!(v.html.is_none());
    }
}

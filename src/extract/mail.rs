//! RFC 5322 messages: header facts, thread id, body text and attachments, parsed with
//! `mail-parser` under `catch_unwind` (a malformed message must never take the caller
//! down; its raw bytes are archived whatever the parser makes of them).

use chrono::{DateTime, Utc};
use mail_parser::{MessageParser, MimeHeaders};

/// What an archived email's record carries besides its raw bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MailFacts {
    pub message_id: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub reply_to: Vec<String>,
    /// Decoded (RFC 2047, any charset).
    pub subject: Option<String>,
    pub in_reply_to: Option<String>,
    /// The conversation: the first `References` id, else `In-Reply-To`, else the
    /// message's own id.
    pub thread: Option<String>,
    /// text/plain body, or the HTML body as text.
    pub text: String,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Attachment {
    pub file_name: Option<String>,
    pub media_type: String,
    pub bytes: bytes::Bytes,
}

/// Parses `raw`. `Err` carries the reason the message could not be read (the raw bytes
/// are still archived by the caller).
pub fn parse(raw: &[u8]) -> Result<MailFacts, String> {
    if raw.is_empty() {
        return Err("empty message".into());
    }
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse_inner(raw)))
        .unwrap_or_else(|_| Err("the MIME parser failed on this message".into()))
}

fn addrs(a: Option<&mail_parser::Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address())
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

fn first_id(v: &mail_parser::HeaderValue<'_>) -> Option<String> {
    v.as_text_list()
        .and_then(|l| l.first())
        .map(|s| s.to_string())
        .or_else(|| v.as_text().map(str::to_string))
}

fn parse_inner(raw: &[u8]) -> Result<MailFacts, String> {
    let m = MessageParser::default()
        .parse(raw)
        .ok_or_else(|| "not an RFC 5322 message".to_string())?;
    // A message without any header the parser knows is not mail.
    if m.from().is_none() && m.subject().is_none() && m.message_id().is_none() && m.date().is_none()
    {
        return Err("no From, Subject, Message-ID or Date header".into());
    }
    let message_id = m.message_id().map(str::to_string);
    let in_reply_to = first_id(m.in_reply_to());
    let thread = first_id(m.references())
        .or_else(|| in_reply_to.clone())
        .or_else(|| message_id.clone());
    let text = match m.body_text(0) {
        Some(t) => t.into_owned(),
        None => m
            .body_html(0)
            .map(|h| crate::extract::html_text(&h))
            .unwrap_or_default(),
    };
    let mut attachments = Vec::new();
    // Attachments as the parser sees them, plus inline parts that carry a file name
    // (but not the part that is the body).
    let body_part = m.text_body.first().or(m.html_body.first()).copied();
    let mut ids: Vec<u32> = m.attachments.clone();
    for (i, part) in m.parts.iter().enumerate().skip(1) {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        if part.attachment_name().is_some()
            && !matches!(part.body, mail_parser::PartType::Multipart(_))
            && Some(i) != body_part
            && !ids.contains(&i)
        {
            ids.push(i);
        }
    }
    ids.sort_unstable();
    for part in ids.iter().filter_map(|i| m.parts.get(*i as usize)) {
        let media_type = part
            .content_type()
            .map(|c| media_type(c.ctype(), c.subtype()))
            .unwrap_or_else(|| {
                if part.is_message() {
                    "message/rfc822".into()
                } else {
                    "application/octet-stream".into()
                }
            });
        attachments.push(Attachment {
            file_name: part.attachment_name().map(sanitize_file_name),
            media_type,
            bytes: bytes::Bytes::copy_from_slice(part.contents()),
        });
    }
    Ok(MailFacts {
        message_id,
        date: m
            .date()
            .and_then(|d| DateTime::from_timestamp(d.to_timestamp(), 0)),
        from: addrs(m.from()),
        to: addrs(m.to()),
        cc: addrs(m.cc()),
        bcc: addrs(m.bcc()),
        reply_to: addrs(m.reply_to()),
        subject: m.subject().map(|s| s.trim().to_string()),
        in_reply_to,
        thread,
        text,
        attachments,
    })
}

/// `type/subtype`, lower-cased, from what a part declares; a bare or malformed type
/// becomes its usual default.
fn media_type(ctype: &str, subtype: Option<&str>) -> String {
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    let t = ctype.trim().to_ascii_lowercase();
    match subtype.map(|s| s.trim().to_ascii_lowercase()) {
        Some(s) if token(&t) && token(&s) => format!("{t}/{s}"),
        _ => match t.as_str() {
            "text" => "text/plain".into(),
            "message" => "message/rfc822".into(),
            _ => "application/octet-stream".into(),
        },
    }
}

/// A file name as a name only: no directories, no control characters, at most 255 bytes.
pub fn sanitize_file_name(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let mut out: String = base
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .trim_start_matches('.')
        .to_string();
    while out.len() > 255 {
        out.pop();
    }
    if out.is_empty() {
        "attachment".into()
    } else {
        out
    }
}

/// The text an email contributes to the search index: subject, addresses, body, and the
/// names and (text-like) contents of its attachments.
pub fn index_text(raw: &[u8]) -> String {
    match parse(raw) {
        Ok(f) => {
            let mut t = String::new();
            t.push_str(f.subject.as_deref().unwrap_or(""));
            t.push('\n');
            t.push_str(&f.text);
            for a in &f.attachments {
                t.push('\n');
                t.push_str(a.file_name.as_deref().unwrap_or(""));
                if crate::extract::is_text_like(&a.media_type) {
                    t.push('\n');
                    t.push_str(&crate::extract::text_of(&a.media_type, &a.bytes));
                }
            }
            t
        }
        Err(_) => String::from_utf8_lossy(raw).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAIL: &[u8] = b"From: =?ISO-8859-1?Q?J=FCrgen_M=FCller?= <JM@Mueller.example>\r\n\
To: a@example.com, B <b@example.com>\r\n\
Cc: c@example.com\r\n\
Subject: =?UTF-8?B?UmVjaG51bmcgZsO8ciBNw6Ryeg==?=\r\n\
Date: Tue, 04 Mar 2025 10:15:00 +0100\r\n\
Message-ID: <m2@example.com>\r\n\
In-Reply-To: <m1@example.com>\r\n\
References: <m0@example.com> <m1@example.com>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b\"\r\n\
\r\n\
--b\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
\r\n\
Anbei die Rechnung.\r\n\
--b\r\n\
Content-Type: text/csv; name=\"../../etc/pos\x01ten.csv\"\r\n\
Content-Disposition: attachment; filename=\"../../etc/pos\x01ten.csv\"\r\n\
\r\n\
a;b\r\n\
--b--\r\n";

    #[test]
    fn an_html_only_message_has_its_text() {
        let raw = b"From: a@example.com\r\nSubject: Lieferung\r\nMessage-ID: <h1@example.com>\r\n\
MIME-Version: 1.0\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n\
<html><head><style>.x{color:red}</style></head><body><p>Die Zahnr&auml;der sind\r\n\
versp\xe4tet.</p><table><tr><td>Menge</td><td>12&nbsp;St&uuml;ck</td></tr></table>\
<script>alert(1)</script></body></html>\r\n";
        let f = parse(raw).unwrap();
        assert!(f.text.contains("Zahnräder sind"), "{}", f.text);
        assert!(f.text.contains("verspätet"), "{}", f.text);
        assert!(f.text.contains("Stück"), "{}", f.text);
        assert!(
            !f.text.contains("alert") && !f.text.contains("color"),
            "{}",
            f.text
        );
        assert!(index_text(raw).contains("verspätet"));
    }

    #[test]
    fn headers_thread_body_and_attachments() {
        let f = parse(MAIL).unwrap();
        assert_eq!(f.subject.as_deref(), Some("Rechnung für März"));
        assert_eq!(f.from, ["jm@mueller.example"]);
        assert_eq!(f.to, ["a@example.com", "b@example.com"]);
        assert_eq!(f.cc, ["c@example.com"]);
        assert_eq!(f.message_id.as_deref(), Some("m2@example.com"));
        assert_eq!(f.thread.as_deref(), Some("m0@example.com"));
        assert_eq!(f.in_reply_to.as_deref(), Some("m1@example.com"));
        assert_eq!(f.date.unwrap().to_rfc3339(), "2025-03-04T09:15:00+00:00");
        assert!(f.text.contains("Anbei die Rechnung"));
        assert_eq!(f.attachments.len(), 1);
        assert_eq!(f.attachments[0].file_name.as_deref(), Some("posten.csv"));
        assert_eq!(f.attachments[0].media_type, "text/csv");
        assert_eq!(&f.attachments[0].bytes[..], b"a;b");
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        assert!(parse(b"").is_err());
        assert!(parse(b"\x00\x01\x02 just bytes").is_err());
    }
}

#[cfg(test)]
mod hostile {
    use super::*;

    fn nested(depth: usize) -> Vec<u8> {
        let mut head = String::from("From: a@example.com\r\nSubject: deep\r\n");
        let mut tail = String::new();
        for i in 0..depth {
            head.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
            ));
            tail = format!("\r\n--b{i}--\r\n{tail}");
        }
        head.push_str("Content-Type: text/plain\r\n\r\ninnermost\r\n");
        head.push_str(&tail);
        head.into_bytes()
    }

    #[test]
    fn a_mime_tree_thousands_deep_is_survived() {
        for depth in [100, 1_000, 10_000] {
            // Whatever the parser makes of it: no crash, no stack overflow.
            let _ = parse(&nested(depth));
        }
    }
}

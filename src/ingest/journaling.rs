//! Journal reports: how mail servers wrap what they journal. Exchange (envelope
//! journaling, `X-MS-Journal-Report`) sends a report whose first part lists the envelope
//! (`Sender:`, `To:`, `Cc:`, `Bcc:`, `Recipient:` lines) and whose attached
//! `message/rfc822` part is the original. The original is what is archived, byte-exact;
//! the envelope comes from the report.

use super::batch::Envelope;

/// The original message and the envelope a journal report carries; `None` for a message
/// that is not a journal report (it is archived as it is).
pub fn unwrap_report(raw: &[u8]) -> Option<(Vec<u8>, Envelope)> {
    if !has_report_header(raw) {
        return None;
    }
    let msg = mail_parser::MessageParser::default().parse(raw)?;
    let original = msg
        .parts
        .iter()
        .find_map(|p| p.message())
        .map(|m| m.raw_message().to_vec())?;
    let text = msg
        .parts
        .iter()
        .filter(|p| p.is_text() && !p.is_text_html())
        .find_map(|p| p.text_contents())
        .unwrap_or_default();
    let mut envelope = Envelope::default();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let addresses = addresses(value);
        match name.trim().to_ascii_lowercase().as_str() {
            "sender" => {
                if let Some(a) = addresses.into_iter().next() {
                    envelope.from = a;
                }
            }
            "to" | "cc" | "bcc" | "recipient" => {
                for a in addresses {
                    if !envelope.to.contains(&a) {
                        envelope.to.push(a);
                    }
                }
            }
            _ => {}
        }
    }
    Some((original, envelope))
}

/// Whether the top-level header names a journal report.
fn has_report_header(raw: &[u8]) -> bool {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(raw.len());
    raw[..end]
        .split(|b| *b == b'\n')
        .any(|l| l.len() >= 20 && l[..20].eq_ignore_ascii_case(b"x-ms-journal-report:"))
}

/// The addresses in a report line (`a@x.example, Forwarded: b@y.example`).
fn addresses(value: &str) -> Vec<String> {
    value
        .split(|c: char| c.is_whitespace() || ",;<>\"()".contains(c))
        .filter(|t| {
            let mut parts = t.splitn(2, '@');
            matches!((parts.next(), parts.next()), (Some(l), Some(d)) if !l.is_empty() && d.contains('.'))
        })
        .map(|t| t.trim_end_matches('.').to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = "From: Einkauf <einkauf@firma.example>\r\nTo: kunde@example.com\r\n\
        Subject: Bestellung\r\nMessage-ID: <b-1@firma.example>\r\n\r\nBitte liefern.\r\n";

    fn report(original: &str) -> String {
        format!(
            "From: Microsoft Exchange <journal@firma.example>\r\nTo: archiv@firma.example\r\n\
             Subject: Bestellung\r\nX-MS-Journal-Report:\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"jr\"\r\n\r\n--jr\r\n\
             Content-Type: text/plain; charset=us-ascii\r\n\r\nSender: einkauf@firma.example\r\n\
             Subject: Bestellung\r\nMessage-Id: <b-1@firma.example>\r\nTo: kunde@example.com\r\n\
             Bcc: geheim@firma.example, Expanded: verteiler@firma.example\r\n\r\n--jr\r\n\
             Content-Type: message/rfc822\r\n\r\n{original}\r\n--jr--\r\n"
        )
    }

    #[test]
    fn an_exchange_report_yields_the_original_byte_exact_and_its_envelope() {
        let (original, env) = unwrap_report(report(ORIGINAL).as_bytes()).unwrap();
        assert_eq!(String::from_utf8(original).unwrap(), ORIGINAL, "byte-exact");
        assert_eq!(env.from, "einkauf@firma.example");
        assert_eq!(
            env.to,
            [
                "kunde@example.com",
                "geheim@firma.example",
                "verteiler@firma.example"
            ]
        );
    }

    #[test]
    fn a_plain_message_is_not_a_report() {
        assert!(unwrap_report(ORIGINAL.as_bytes()).is_none());
        // The header only counts at the top, not in the body.
        let body = format!("{ORIGINAL}X-MS-Journal-Report:\r\n");
        assert!(unwrap_report(body.as_bytes()).is_none());
    }
}

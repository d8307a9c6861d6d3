//! Text and facts from documents: PDF (text layer, embedded e-invoice XML), Office Open
//! XML and legacy Office (office_oxide), OpenDocument (zip + quick-xml), RTF, HTML,
//! plain text in any common charset, and e-invoices (XRechnung UBL and CII, ZUGFeRD /
//! Factur-X inside a PDF).
//!
//! These parsers read hostile input. They run in a worker process with time and memory
//! limits (`extract::sandbox`); here they only bound what they read themselves (zip
//! members, XML depth) so that a worker rarely needs to be killed.

use std::io::Read;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// Extracted text is kept up to this many bytes per document.
pub const MAX_TEXT: usize = 256 * 1024;
/// A zip member is inflated up to this many bytes, no further (zip bombs).
const MAX_MEMBER: u64 = 64 * 1024 * 1024;
/// XML nesting deeper than this is refused.
const MAX_XML_DEPTH: usize = 512;

/// What extraction found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Extracted {
    /// The document's text, NFC-normalised, at most [`MAX_TEXT`] bytes.
    pub text: String,
    /// E-invoice facts, when the document is or carries one.
    pub invoice: Option<Invoice>,
    /// Files carried inside the document that are kept as originals of their own (the
    /// XML of a ZUGFeRD/Factur-X PDF): (file name, media type, bytes).
    pub embedded: Vec<(String, String, Vec<u8>)>,
    /// An image, or a PDF without a text layer: only OCR could find text.
    pub needs_ocr: bool,
}

/// The facts of an electronic invoice (EN 16931).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// `UBL` or `CII`.
    pub syntax: String,
    pub number: Option<String>,
    pub issue_date: Option<String>,
    pub due_date: Option<String>,
    pub seller: Option<String>,
    pub buyer: Option<String>,
    pub seller_vat: Option<String>,
    pub buyer_vat: Option<String>,
    pub net: Option<String>,
    pub gross: Option<String>,
    pub currency: Option<String>,
}

impl Invoice {
    /// The facts as `extra` metadata (`invoice_number`, `seller_vat`, …).
    pub fn to_extra(&self) -> Vec<(String, String)> {
        let mut v = vec![("einvoice".to_string(), self.syntax.clone())];
        for (k, val) in [
            ("invoice_number", &self.number),
            ("invoice_date", &self.issue_date),
            ("due_date", &self.due_date),
            ("seller", &self.seller),
            ("buyer", &self.buyer),
            ("seller_vat", &self.seller_vat),
            ("buyer_vat", &self.buyer_vat),
            ("net_total", &self.net),
            ("gross_total", &self.gross),
            ("currency", &self.currency),
        ] {
            if let Some(x) = val {
                v.push((k.to_string(), x.clone()));
            }
        }
        v
    }
}

/// The extractor a media type (or, failing that, a file name) calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Pdf,
    Office(office_oxide::DocumentFormat),
    OpenDocument,
    Rtf,
    Html,
    Xml,
    Text,
    Image,
}

/// Which extractor applies; `None` for types without one (archived with "no text").
pub fn kind_of(media_type: &str, file_name: Option<&str>) -> Option<Kind> {
    use office_oxide::DocumentFormat as F;
    let m = media_type.to_ascii_lowercase();
    let ext = file_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let k = match m.as_str() {
        "application/pdf" => Kind::Pdf,
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => {
            Kind::Office(F::Docx)
        }
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => {
            Kind::Office(F::Xlsx)
        }
        "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
            Kind::Office(F::Pptx)
        }
        "application/msword" => Kind::Office(F::Doc),
        "application/vnd.ms-excel" => Kind::Office(F::Xls),
        "application/vnd.ms-powerpoint" => Kind::Office(F::Ppt),
        "application/vnd.oasis.opendocument.text"
        | "application/vnd.oasis.opendocument.spreadsheet"
        | "application/vnd.oasis.opendocument.presentation" => Kind::OpenDocument,
        "application/rtf" | "text/rtf" => Kind::Rtf,
        "text/html" | "application/xhtml+xml" => Kind::Html,
        "application/xml" | "text/xml" => Kind::Xml,
        m if m.ends_with("+xml") => Kind::Xml,
        m if m.starts_with("image/") => Kind::Image,
        m if m.starts_with("text/") => Kind::Text,
        _ => match ext.as_str() {
            "pdf" => Kind::Pdf,
            "docx" => Kind::Office(F::Docx),
            "xlsx" => Kind::Office(F::Xlsx),
            "pptx" => Kind::Office(F::Pptx),
            "doc" => Kind::Office(F::Doc),
            "xls" => Kind::Office(F::Xls),
            "ppt" => Kind::Office(F::Ppt),
            "odt" | "ods" | "odp" => Kind::OpenDocument,
            "rtf" => Kind::Rtf,
            "htm" | "html" => Kind::Html,
            "xml" => Kind::Xml,
            "txt" | "csv" | "md" | "log" => Kind::Text,
            "png" | "jpg" | "jpeg" | "tif" | "tiff" | "gif" | "bmp" | "webp" => Kind::Image,
            _ => return None,
        },
    };
    Some(k)
}

/// Whether extraction of this kind parses a complex format (and so belongs in a worker
/// process with limits) rather than decoding text.
pub fn needs_sandbox(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Pdf | Kind::Office(_) | Kind::OpenDocument | Kind::Xml | Kind::Rtf
    )
}

/// Extracts text and facts. `Err` is the reason extraction failed (the original is
/// archived all the same).
pub fn extract(bytes: &[u8], kind: Kind) -> Result<Extracted, String> {
    if bytes.is_empty() {
        return Ok(Extracted::default());
    }
    // Third-party parsers can panic on hostile input (fuzzing found pdf_oxide indexing
    // out of bounds): that is a failed extraction, not a dead worker or caller.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        extract_unguarded(bytes, kind)
    }))
    .unwrap_or_else(|p| {
        let why = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown".into());
        Err(format!("the {kind:?} parser failed on this file ({why})"))
    })
}

fn extract_unguarded(bytes: &[u8], kind: Kind) -> Result<Extracted, String> {
    let mut out = match kind {
        Kind::Pdf => pdf(bytes)?,
        Kind::Office(format) => office(bytes, format)?,
        Kind::OpenDocument => Extracted {
            text: open_document(bytes)?,
            ..Default::default()
        },
        Kind::Rtf => Extracted {
            text: rtf(bytes),
            ..Default::default()
        },
        Kind::Html => Extracted {
            text: super::html_text(&decode_text(bytes)),
            ..Default::default()
        },
        Kind::Xml => xml(bytes)?,
        Kind::Text => Extracted {
            text: decode_text(bytes),
            ..Default::default()
        },
        Kind::Image => Extracted {
            needs_ocr: true,
            ..Default::default()
        },
    };
    out.text = finish_text(&out.text);
    Ok(out)
}

/// NFC (PDF extractors emit decomposed umlauts), no control characters but line breaks
/// and tabs, at most [`MAX_TEXT`] bytes.
pub fn finish_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_TEXT));
    for c in s.nfc() {
        if c.is_control() && c != '\n' && c != '\t' {
            continue;
        }
        if out.len() + c.len_utf8() > MAX_TEXT {
            break;
        }
        out.push(c);
    }
    out
}

/// Text in any common charset: UTF-8 (with or without BOM), UTF-16 with BOM, else the
/// charset chardetng guesses (Windows-1252, ISO-8859-x, …).
pub fn decode_text(bytes: &[u8]) -> String {
    if let Some((enc, _)) = encoding_rs::Encoding::for_bom(bytes) {
        return enc.decode_with_bom_removal(bytes).0.into_owned();
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return s.to_string();
    }
    let mut det = chardetng::EncodingDetector::new(chardetng::Iso2022JpDetection::Deny);
    det.feed(bytes, true);
    let enc = det.guess(None, chardetng::Utf8Detection::Allow);
    enc.decode_without_bom_handling(bytes).0.into_owned()
}

fn pdf(bytes: &[u8]) -> Result<Extracted, String> {
    let doc = pdf_oxide::PdfDocument::from_bytes(bytes.to_vec())
        .map_err(|e| format!("not a readable PDF: {e}"))?;
    let text = doc
        .extract_all_text()
        .map_err(|e| format!("PDF text: {e}"))?;
    // A scanned PDF has no text layer; some scanners' PDFs carry a few stray
    // characters (page separators, control codes): no letter or digit means OCR.
    let mut out = Extracted {
        needs_ocr: !text.chars().any(char::is_alphanumeric),
        text,
        ..Default::default()
    };
    // ZUGFeRD / Factur-X / XRechnung carry their XML as an embedded file.
    if let Ok(files) = doc.extract_embedded_files() {
        for (name, data) in files {
            if !name.to_ascii_lowercase().ends_with(".xml") {
                continue;
            }
            if let Ok(Some(inv)) = invoice(&data) {
                if out.invoice.is_none() {
                    out.invoice = Some(inv);
                }
                let name = crate::extract::mail::sanitize_file_name(&name);
                out.embedded.push((name, "application/xml".into(), data));
            }
        }
    }
    Ok(out)
}

fn office(bytes: &[u8], format: office_oxide::DocumentFormat) -> Result<Extracted, String> {
    let doc = office_oxide::Document::from_reader(std::io::Cursor::new(bytes.to_vec()), format)
        .map_err(|e| format!("not a readable {format:?} document: {e}"))?;
    Ok(Extracted {
        text: doc.plain_text(),
        ..Default::default()
    })
}

/// Reads one zip member, inflating at most [`MAX_MEMBER`] bytes.
fn zip_member(bytes: &[u8], name: &str) -> Result<Vec<u8>, String> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("not a zip package: {e}"))?;
    let f = z
        .by_name(name)
        .map_err(|e| format!("no {name} in the package: {e}"))?;
    let mut out = Vec::new();
    f.take(MAX_MEMBER + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("{name}: {e}"))?;
    if out.len() as u64 > MAX_MEMBER {
        return Err(format!(
            "{name} inflates beyond {} MiB (zip bomb?)",
            MAX_MEMBER >> 20
        ));
    }
    Ok(out)
}

/// Text of an OpenDocument file (`content.xml`): paragraphs and headings on lines, table
/// cells separated by tabs.
fn open_document(bytes: &[u8]) -> Result<String, String> {
    let xml = zip_member(bytes, "content.xml")?;
    xml_text(&xml, |name| {
        matches!(name, b"text:p" | b"text:h" | b"table:table-row")
    })
}

/// The text nodes of an XML document; a line break after each element `line_end`
/// accepts. Entities other than the five predefined ones are not expanded (no billion
/// laughs), nesting is bounded, and DTDs are skipped.
fn xml_text(xml: &[u8], line_end: impl Fn(&[u8]) -> bool) -> Result<String, String> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_reader(xml);
    r.config_mut().trim_text(false);
    let mut buf = Vec::new();
    let mut out = String::new();
    let mut depth = 0usize;
    loop {
        match r.read_event_into(&mut buf) {
            Ok(Event::Start(_)) => {
                depth += 1;
                if depth > MAX_XML_DEPTH {
                    return Err(format!("XML nested deeper than {MAX_XML_DEPTH} levels"));
                }
            }
            Ok(Event::End(e)) => {
                depth = depth.saturating_sub(1);
                if line_end(e.name().as_ref()) {
                    out.push('\n');
                } else if e.name().as_ref() == b"table:table-cell" {
                    out.push('\t');
                }
            }
            Ok(Event::Text(t)) => {
                let raw = String::from_utf8_lossy(t.as_ref());
                out.push_str(&unescape_basic(&raw));
            }
            Ok(Event::CData(t)) => out.push_str(&String::from_utf8_lossy(t.as_ref())),
            Ok(Event::GeneralRef(e)) => {
                // Only the predefined entities and character references; a custom entity
                // (a billion laughs) is left out, never expanded.
                let name = String::from_utf8_lossy(e.as_ref()).into_owned();
                out.push_str(&unescape_basic(&format!("&{name};")));
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("XML: {e}")),
        }
        if out.len() > MAX_TEXT * 2 {
            break;
        }
        buf.clear();
    }
    Ok(out)
}

/// The five predefined XML entities and numeric character references.
fn unescape_basic(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        let Some(end) = after.find(';').filter(|e| *e <= 12) else {
            out.push('&');
            rest = &after[1..];
            continue;
        };
        let ent = &after[1..end];
        let c = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => ent
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        if let Some(c) = c {
            out.push(c);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn xml(bytes: &[u8]) -> Result<Extracted, String> {
    let inv = invoice(bytes)?;
    let text = xml_text(bytes, |_| true)?;
    Ok(Extracted {
        text,
        invoice: inv,
        ..Default::default()
    })
}

/// The local name of a possibly prefixed XML name.
fn local(name: &[u8]) -> &[u8] {
    match name.iter().rposition(|b| *b == b':') {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// The facts of an e-invoice: XRechnung/EN 16931 in UBL (`Invoice`, `CreditNote`) or
/// CII (`CrossIndustryInvoice`, as in ZUGFeRD/Factur-X). `Ok(None)` for other XML.
pub fn invoice(xml: &[u8]) -> Result<Option<Invoice>, String> {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_reader(xml);
    r.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut inv = Invoice::default();
    let mut syntax: Option<&str> = None;
    let mut attr_currency: Option<String> = None;
    loop {
        match r.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                let name = local(e.name().as_ref()).to_vec();
                if path.is_empty() {
                    syntax = match name.as_slice() {
                        b"Invoice" | b"CreditNote" => Some("UBL"),
                        b"CrossIndustryInvoice" => Some("CII"),
                        _ => return Ok(None),
                    };
                }
                if name.ends_with(b"Amount") && attr_currency.is_none() {
                    for a in e.attributes().flatten() {
                        if local(a.key.as_ref()) == b"currencyID" {
                            attr_currency = Some(String::from_utf8_lossy(&a.value).into_owned());
                        }
                    }
                }
                path.push(name);
                if path.len() > MAX_XML_DEPTH {
                    return Err(format!("XML nested deeper than {MAX_XML_DEPTH} levels"));
                }
            }
            Ok(Event::End(_)) => {
                path.pop();
            }
            Ok(Event::Text(t)) => {
                let v = unescape_basic(&String::from_utf8_lossy(t.as_ref()))
                    .trim()
                    .to_string();
                if v.is_empty() {
                    buf.clear();
                    continue;
                }
                let p: Vec<&[u8]> = path.iter().map(|x| x.as_slice()).collect();
                match syntax {
                    Some("UBL") => ubl_field(&p, v, &mut inv),
                    Some(_) => cii_field(&p, v, &mut inv),
                    None => {}
                }
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => return Err(format!("XML: {e}")),
        }
        buf.clear();
    }
    let Some(syntax) = syntax else {
        return Ok(None);
    };
    inv.syntax = syntax.into();
    if inv.currency.is_none() {
        inv.currency = attr_currency;
    }
    Ok(Some(inv))
}

fn set(slot: &mut Option<String>, v: String) {
    if slot.is_none() {
        *slot = Some(v);
    }
}

fn ends(p: &[&[u8]], tail: &[&[u8]]) -> bool {
    p.len() >= tail.len() && p[p.len() - tail.len()..] == *tail
}

fn ubl_field(p: &[&[u8]], v: String, inv: &mut Invoice) {
    let party = |side: &[u8]| p.contains(&side);
    if p.len() == 2 && p[1] == b"ID" {
        set(&mut inv.number, v);
    } else if p.len() == 2 && p[1] == b"IssueDate" {
        set(&mut inv.issue_date, v);
    } else if (p.len() == 2 && p[1] == b"DueDate") || ends(p, &[b"PaymentMeans", b"PaymentDueDate"])
    {
        set(&mut inv.due_date, v);
    } else if p.len() == 2 && p[1] == b"DocumentCurrencyCode" {
        set(&mut inv.currency, v);
    } else if ends(p, &[b"PartyTaxScheme", b"CompanyID"]) {
        if party(b"AccountingSupplierParty") {
            set(&mut inv.seller_vat, v);
        } else if party(b"AccountingCustomerParty") {
            set(&mut inv.buyer_vat, v);
        }
    } else if ends(p, &[b"PartyLegalEntity", b"RegistrationName"])
        || ends(p, &[b"PartyName", b"Name"])
    {
        if party(b"AccountingSupplierParty") {
            set(&mut inv.seller, v);
        } else if party(b"AccountingCustomerParty") {
            set(&mut inv.buyer, v);
        }
    } else if ends(p, &[b"LegalMonetaryTotal", b"TaxExclusiveAmount"]) {
        set(&mut inv.net, v);
    } else if ends(p, &[b"LegalMonetaryTotal", b"TaxInclusiveAmount"]) {
        set(&mut inv.gross, v);
    }
}

fn cii_field(p: &[&[u8]], v: String, inv: &mut Invoice) {
    let party = |side: &[u8]| p.contains(&side);
    if ends(p, &[b"ExchangedDocument", b"ID"]) {
        set(&mut inv.number, v);
    } else if ends(
        p,
        &[b"ExchangedDocument", b"IssueDateTime", b"DateTimeString"],
    ) {
        set(&mut inv.issue_date, cii_date(&v));
    } else if ends(p, &[b"DueDateDateTime", b"DateTimeString"]) {
        set(&mut inv.due_date, cii_date(&v));
    } else if ends(p, &[b"InvoiceCurrencyCode"]) {
        set(&mut inv.currency, v);
    } else if ends(p, &[b"SpecifiedTaxRegistration", b"ID"]) {
        if party(b"SellerTradeParty") {
            set(&mut inv.seller_vat, v);
        } else if party(b"BuyerTradeParty") {
            set(&mut inv.buyer_vat, v);
        }
    } else if ends(p, &[b"SellerTradeParty", b"Name"]) {
        set(&mut inv.seller, v);
    } else if ends(p, &[b"BuyerTradeParty", b"Name"]) {
        set(&mut inv.buyer, v);
    } else if in_summation(p, b"TaxBasisTotalAmount") {
        set(&mut inv.net, v);
    } else if in_summation(p, b"GrandTotalAmount") {
        set(&mut inv.gross, v);
    }
}

/// `…MonetarySummation/<leaf>` (the element is `SpecifiedTradeSettlementHeader…`).
fn in_summation(p: &[&[u8]], leaf: &[u8]) -> bool {
    matches!(p, [.., parent, last] if *last == leaf && parent.ends_with(b"MonetarySummation"))
}

/// CII format 102 (`20240315`) as an ISO date.
fn cii_date(v: &str) -> String {
    if v.len() == 8 && v.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}-{}-{}", &v[..4], &v[4..6], &v[6..])
    } else {
        v.to_string()
    }
}

/// Text of an RTF document: control words and destinations dropped, `\par`/`\line` as
/// line breaks. Bytes given as `\'hh` (and raw 8-bit bytes) are decoded in the
/// document's code page (`\ansicpg`, default Windows-1252; multi-byte pages such as 932
/// decode byte runs together); `\uN` is Unicode, followed by `\ucN` fallback characters
/// (default 1, scoped to the group) that are skipped; `\binN` skips N bytes of binary.
pub fn rtf(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut encoding: &'static encoding_rs::Encoding = encoding_rs::WINDOWS_1252;
    // Bytes waiting to be decoded together (a run of `\'hh`).
    let mut pending: Vec<u8> = Vec::new();
    let flush = |pending: &mut Vec<u8>, out: &mut String, enc: &'static encoding_rs::Encoding| {
        if !pending.is_empty() {
            let (s, _) = enc.decode_without_bom_handling(pending);
            out.push_str(&s);
            pending.clear();
        }
    };
    let mut i = 0;
    // Group depth at which an ignored destination started, if inside one.
    let mut skip_from: Option<usize> = None;
    let mut depth = 0usize;
    // `\ucN` of each open group; fallback characters still to skip after a `\uN`.
    let mut uc: Vec<usize> = vec![1];
    let mut uc_skip = 0usize;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'{' => {
                flush(&mut pending, &mut out, encoding);
                depth += 1;
                uc.push(uc.last().copied().unwrap_or(1));
                uc_skip = 0;
                i += 1;
                // `{\*\dest …}` and the tables are not text.
                let rest = &bytes[i..bytes.len().min(i + 12)];
                if skip_from.is_none()
                    && (rest.starts_with(b"\\*")
                        || rest.starts_with(b"\\fonttbl")
                        || rest.starts_with(b"\\colortbl")
                        || rest.starts_with(b"\\stylesheet")
                        || rest.starts_with(b"\\info")
                        || rest.starts_with(b"\\pict"))
                {
                    skip_from = Some(depth);
                }
            }
            b'}' => {
                flush(&mut pending, &mut out, encoding);
                if skip_from == Some(depth) {
                    skip_from = None;
                }
                depth = depth.saturating_sub(1);
                if uc.len() > 1 {
                    uc.pop();
                }
                uc_skip = 0;
                i += 1;
            }
            b'\\' => {
                i += 1;
                let Some(&c) = bytes.get(i) else { break };
                if c == b'\'' {
                    let hex = bytes.get(i + 1..i + 3).unwrap_or_default();
                    i += 3;
                    if uc_skip > 0 {
                        uc_skip -= 1;
                        continue;
                    }
                    if skip_from.is_none()
                        && let Ok(v) = u8::from_str_radix(&String::from_utf8_lossy(hex), 16)
                    {
                        pending.push(v);
                    }
                    continue;
                }
                flush(&mut pending, &mut out, encoding);
                if !c.is_ascii_alphabetic() {
                    // An escaped symbol: \\ \{ \} or \~ (non-breaking space).
                    i += 1;
                    if uc_skip > 0 {
                        uc_skip -= 1;
                        continue;
                    }
                    if skip_from.is_none() {
                        match c {
                            b'~' => out.push(' '),
                            b'\\' | b'{' | b'}' => out.push(c as char),
                            _ => {}
                        }
                    }
                    continue;
                }
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                    i += 1;
                }
                let word = &bytes[start..i];
                let nstart = i;
                if i < bytes.len() && (bytes[i] == b'-' || bytes[i].is_ascii_digit()) {
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                let num: Option<i64> = std::str::from_utf8(&bytes[nstart..i])
                    .ok()
                    .and_then(|s| s.parse().ok());
                if i < bytes.len() && bytes[i] == b' ' {
                    i += 1;
                }
                if word == b"bin" {
                    // Binary data: skipped whatever it contains, also in a destination.
                    let n = usize::try_from(num.unwrap_or(0)).unwrap_or(0);
                    i = i.saturating_add(n).min(bytes.len());
                    continue;
                }
                if uc_skip > 0 {
                    // A control word stands for one fallback character too.
                    uc_skip -= 1;
                    continue;
                }
                match word {
                    b"ansicpg" => {
                        if let Some(enc) = num
                            .and_then(|n| u16::try_from(n).ok())
                            .and_then(codepage::to_encoding)
                        {
                            encoding = enc;
                        }
                    }
                    b"uc" => {
                        if let (Some(n), Some(top)) = (num, uc.last_mut()) {
                            *top = usize::try_from(n).unwrap_or(0).min(16);
                        }
                    }
                    _ if skip_from.is_some() => {}
                    b"par" | b"line" | b"row" | b"page" => out.push('\n'),
                    b"tab" | b"cell" => out.push('\t'),
                    b"u" => {
                        if let Some(n) = num {
                            let code = if n < 0 { n + 65536 } else { n };
                            if let Some(ch) = u32::try_from(code).ok().and_then(char::from_u32) {
                                out.push(ch);
                            }
                            uc_skip = uc.last().copied().unwrap_or(1);
                        }
                    }
                    _ => {}
                }
            }
            b'\r' | b'\n' => i += 1,
            _ => {
                i += 1;
                if uc_skip > 0 {
                    uc_skip -= 1;
                } else if skip_from.is_none() {
                    if b.is_ascii() {
                        flush(&mut pending, &mut out, encoding);
                        out.push(b as char);
                    } else {
                        // A raw 8-bit byte: in the code page, like `\'hh`.
                        pending.push(b);
                    }
                }
            }
        }
    }
    flush(&mut pending, &mut out, encoding);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pdf_that_panics_its_parser_is_a_failed_extraction() {
        // Found by fuzzing (fuzz/regressions/document/pdf-abort-1): pdf_oxide panics.
        let data = include_bytes!("../../fuzz/regressions/document/pdf-abort-1");
        let e = extract(&data[1..], Kind::Pdf).unwrap_err();
        assert!(e.contains("parser failed"), "{e}");
    }

    #[test]
    fn rtf_honours_its_code_page_unicode_fallbacks_and_binary() {
        // Windows-1252 by default.
        assert_eq!(rtf(br"{\rtf1\ansi Stra\'dfe}"), "Straße");
        // \ansicpg1251: Cyrillic.
        assert_eq!(
            rtf(br"{\rtf1\ansi\ansicpg1251 \'cc\'ee\'f1\'ea\'e2\'e0}"),
            "Москва"
        );
        // \ansicpg932: Shift-JIS byte pairs decode together.
        assert_eq!(rtf(br"{\rtf1\ansi\ansicpg932 \'93\'fa\'96\'7b}"), "日本");
        // \uc2: two fallback characters after each \u, and \uc is scoped to its group.
        assert_eq!(rtf(br"{\rtf1{\uc2\u246 oe}\u252 u}"), "öü");
        assert_eq!(rtf(br"{\rtf1\uc0\u8364 EUR}"), "€EUR");
        // A \'hh fallback counts as one character.
        assert_eq!(rtf(br"{\rtf1\u228\'e4x}"), "äx");
        // \binN: N raw bytes skipped, braces and backslashes in them included.
        assert_eq!(rtf(b"{\\rtf1 vor \\bin5 {\\}}x nach}"), "vor  nach");
    }

    #[test]
    fn charsets_are_detected() {
        let latin1 = b"Gr\xfc\xdfe aus K\xf6ln, Stra\xdfe und M\xfcller";
        assert_eq!(decode_text(latin1), "Grüße aus Köln, Straße und Müller");
        let utf16: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("Köln".encode_utf16().flat_map(|u| u.to_le_bytes()))
            .collect();
        assert_eq!(decode_text(&utf16), "Köln");
        assert_eq!(decode_text("Straße".as_bytes()), "Straße");
    }

    #[test]
    fn rtf_text_is_read() {
        let r = br"{\rtf1\ansi{\fonttbl{\f0 Arial;}}{\*\generator x;}\f0 Sehr geehrte Frau M\'fcller,\par Rechnung Nr.\~42 \u8364? f\'e4llig.}";
        let t = rtf(r);
        assert!(t.contains("Sehr geehrte Frau Müller,"), "{t}");
        assert!(t.contains("Rechnung Nr. 42 € fällig."), "{t}");
        assert!(!t.contains("Arial") && !t.contains("generator"), "{t}");
    }

    #[test]
    fn billion_laughs_is_not_expanded() {
        let xml = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<lolz>&lol9; &amp; done</lolz>"#;
        let e = extract(xml, Kind::Xml).unwrap();
        assert_eq!(e.text.trim(), "& done");
    }

    #[test]
    fn deep_xml_is_refused() {
        let mut x = String::new();
        for _ in 0..10_000 {
            x.push_str("<a>");
        }
        assert!(extract(x.as_bytes(), Kind::Xml).is_err());
    }

    #[test]
    fn kinds_follow_media_type_then_name() {
        assert_eq!(kind_of("application/pdf", None), Some(Kind::Pdf));
        assert_eq!(
            kind_of("application/octet-stream", Some("a.ODT")),
            Some(Kind::OpenDocument)
        );
        assert_eq!(kind_of("application/octet-stream", Some("a.bin")), None);
    }
}

//! `akte demo` and `akte serve --demo`: a realistic Kundenakte, generated (nothing is
//! downloaded), so that a newcomer sees a full system with one command. Everything goes
//! in through the API, as a client would send it: parties with roles (customers,
//! suppliers, one that is both), contacts, framework agreements and complaints as cases,
//! emails with PDF attachments, PDF letters and invoices, XRechnung e-invoices, phone
//! notes, a legal hold, and an old letter whose retention has run out (awaiting a
//! disposal). It also creates one token per demo person.

use std::fmt::Write as _;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use base64::Engine;
use chrono::{Datelike, NaiveDate};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::api::AppState;

/// Our own company, the recipient of the demo's mail.
const OWN_DOMAIN: &str = "akte-demo.de";

const STEMS: &[&str] = &[
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Bauer",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Braun",
    "Krüger",
    "Hofmann",
    "Hartmann",
    "Lange",
    "Schmitt",
    "Werner",
    "Schmitz",
    "Krause",
    "Meier",
    "Lehmann",
    "Köhler",
];
const TRADES: &[&str] = &[
    "Maschinenbau GmbH",
    "Logistik GmbH",
    "Elektrotechnik KG",
    "Metallbau GmbH & Co. KG",
    "Verpackungen GmbH",
    "Industriebedarf AG",
    "Kunststofftechnik GmbH",
    "Antriebstechnik GmbH",
];
const CITIES: &[(&str, &str)] = &[
    ("20095", "Hamburg"),
    ("80331", "München"),
    ("50667", "Köln"),
    ("70173", "Stuttgart"),
    ("04109", "Leipzig"),
    ("90402", "Nürnberg"),
    ("28195", "Bremen"),
    ("01067", "Dresden"),
];

/// The demo persons and their tokens.
pub struct DemoTokens {
    pub lines: Vec<(String, String, String)>,
}

impl DemoTokens {
    pub fn describe(&self) -> String {
        let mut s = String::from("demo tokens (person, role, token):\n");
        for (p, r, t) in &self.lines {
            let _ = writeln!(s, "  {p:<14} {r:<30} {t}");
        }
        s
    }
}

struct Client {
    app: Router,
    token: String,
}

impl Client {
    async fn send(
        &self,
        method: Method,
        uri: &str,
        ctype: &str,
        body: Vec<u8>,
    ) -> anyhow::Result<Value> {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", self.token))
            .header("content-type", ctype)
            .body(Body::from(body))?;
        let resp = match self.app.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("{uri}: {status}: {}", String::from_utf8_lossy(&bytes));
        }
        Ok(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    async fn post(&self, uri: &str, body: Value) -> anyhow::Result<Value> {
        self.send(
            Method::POST,
            uri,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }

    async fn file(&self, uri: &str, ctype: &str, bytes: Vec<u8>) -> anyhow::Result<Value> {
        self.send(Method::POST, uri, ctype, bytes).await
    }
}

fn id_of(v: &Value) -> anyhow::Result<String> {
    v.get("id")
        .and_then(|x| x.as_str())
        .map(str::to_string)
        .context("the answer has no id")
}

/// A one-page PDF with `lines` as its text layer (Helvetica, WinAnsi).
pub fn pdf(lines: &[String]) -> Vec<u8> {
    let mut content = String::from("BT /F1 11 Tf 60 780 Td 15 TL\n");
    for l in lines {
        let esc: String = l
            .chars()
            .map(|c| match c {
                '(' | ')' | '\\' => format!("\\{c}"),
                c => c.to_string(),
            })
            .collect();
        content.push_str(&format!("({esc}) Tj T*\n"));
    }
    content.push_str("ET\n");
    let content: Vec<u8> = content
        .chars()
        .map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?'))
        .collect();
    let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
    stream.extend_from_slice(&content);
    stream.extend_from_slice(b"\nendstream");
    let objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_vec(),
        stream,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_vec(),
    ];
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        out.extend_from_slice(o);
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

fn ubl(number: &str, date: NaiveDate, seller: &str, seller_vat: &str, net: u32) -> Vec<u8> {
    let gross = f64::from(net) * 1.19;
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ubl:Invoice xmlns:ubl="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2" xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
  <cbc:CustomizationID>urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0</cbc:CustomizationID>
  <cbc:ID>{number}</cbc:ID>
  <cbc:IssueDate>{date}</cbc:IssueDate>
  <cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>
  <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>
  <cac:AccountingSupplierParty><cac:Party>
    <cac:PartyTaxScheme><cbc:CompanyID>{seller_vat}</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>
    <cac:PartyLegalEntity><cbc:RegistrationName>{seller}</cbc:RegistrationName></cac:PartyLegalEntity>
  </cac:Party></cac:AccountingSupplierParty>
  <cac:AccountingCustomerParty><cac:Party>
    <cac:PartyTaxScheme><cbc:CompanyID>DE811111111</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>
    <cac:PartyLegalEntity><cbc:RegistrationName>akte Demo GmbH</cbc:RegistrationName></cac:PartyLegalEntity>
  </cac:Party></cac:AccountingCustomerParty>
  <cac:LegalMonetaryTotal>
    <cbc:TaxExclusiveAmount currencyID="EUR">{net}.00</cbc:TaxExclusiveAmount>
    <cbc:TaxInclusiveAmount currencyID="EUR">{gross:.2}</cbc:TaxInclusiveAmount>
    <cbc:PayableAmount currencyID="EUR">{gross:.2}</cbc:PayableAmount>
  </cac:LegalMonetaryTotal>
</ubl:Invoice>
"#
    )
    .into_bytes()
}

fn email(
    from: (&str, &str),
    to: &str,
    subject: &str,
    date: NaiveDate,
    n: usize,
    text: &str,
    attachment: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let b64 = |b: &[u8]| {
        let s = base64::engine::general_purpose::STANDARD.encode(b);
        s.as_bytes()
            .chunks(76)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let subject_enc = format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(subject)
    );
    let html = format!(
        "<html><body><p>{}</p><p>Mit freundlichen Grüßen<br>{}</p><img src=\"https://tracker.example.net/open.gif\" alt=\"\"></body></html>",
        text.replace('\n', "<br>"),
        from.0
    );
    let mut m = format!(
        "From: {} <{}>\r\nTo: {to}\r\nSubject: {subject_enc}\r\nDate: {}, {} {} {} 09:{:02}:00 +0100\r\nMessage-ID: <demo-{n}@{}>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"mix-{n}\"\r\n\r\n",
        from.0,
        from.1,
        date.format("%a"),
        date.day(),
        date.format("%b"),
        date.year(),
        n % 60,
        from.1.split('@').nth(1).unwrap_or("example.de"),
    );
    m.push_str(&format!(
        "--mix-{n}\r\nContent-Type: multipart/alternative; boundary=\"alt-{n}\"\r\n\r\n--alt-{n}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--alt-{n}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n--alt-{n}--\r\n",
        b64(format!("{text}\n\nMit freundlichen Grüßen\n{}", from.0).as_bytes()),
        b64(html.as_bytes())
    ));
    if let Some((name, bytes)) = attachment {
        m.push_str(&format!(
            "--mix-{n}\r\nContent-Type: application/pdf; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            b64(bytes)
        ));
    }
    m.push_str(&format!("--mix-{n}--\r\n"));
    m.into_bytes()
}

fn ascii(s: &str) -> String {
    s.to_lowercase()
        .replace('ä', "ae")
        .replace('ö', "oe")
        .replace('ü', "ue")
        .replace('ß', "ss")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// Seeds the demo through the API of `state` as `admin_token`. `today` dates it.
pub async fn seed(
    state: &AppState,
    admin_token: &str,
    today: NaiveDate,
) -> anyhow::Result<DemoTokens> {
    let c = Client {
        app: crate::api::app(state.clone()),
        token: admin_token.to_string(),
    };
    let year = today.year();
    let q = |pairs: &[(&str, &str)]| crate::web::query(pairs);
    let mut parties = Vec::new();
    for (i, stem) in STEMS.iter().enumerate() {
        let trade = TRADES[i % TRADES.len()];
        let name = format!("{stem} {trade}");
        let domain = format!(
            "{}-{}.de",
            ascii(stem),
            ascii(trade.split_whitespace().next().unwrap_or("firma"))
        );
        let (postcode, city) = CITIES[i % CITIES.len()];
        let mut roles = Vec::new();
        let customer = i % 2 == 0 || i == 5;
        let supplier = i % 2 == 1;
        if customer {
            roles.push(json!({"role": "customer", "number": format!("K{:05}", 10_000 + i), "since": format!("{}-01-15", year - 6 + (i % 4) as i32)}));
        }
        if supplier {
            roles.push(json!({"role": "supplier", "number": format!("L{:05}", 70_000 + i), "since": format!("{}-03-01", year - 7 + (i % 5) as i32)}));
        }
        let vat = format!("DE{:09}", 100_000_000 + i * 7_919_731 % 800_000_000);
        let p = c
            .post(
                "/v1/parties",
                json!({
                    "kind": "organisation",
                    "name": name,
                    "addresses": [{"street": format!("{}straße {}", stem, 3 + i), "postcode": postcode, "city": city, "country": "DE"}],
                    "emails": [format!("info@{domain}")],
                    "phones": [format!("+49 {} {}", 30 + i, 100_200 + i * 37)],
                    "domains": [domain],
                    "vat_id": vat,
                    "roles": roles,
                }),
            )
            .await?;
        parties.push((id_of(&p)?, name, domain, vat, customer, supplier));
    }
    // A contact person of the first customer.
    let contact = c
        .post(
            "/v1/parties",
            json!({
                "kind": "person",
                "name": "Anna Berger",
                "emails": [format!("a.berger@{}", parties[0].2)],
                "roles": [{"role": "contact"}],
                "relations": [{"kind": "works-for", "party": parties[0].0}],
            }),
        )
        .await?;
    let _ = id_of(&contact)?;
    let mut n = 0usize;
    for (i, (pid, name, domain, vat, customer, supplier)) in parties.iter().enumerate() {
        let role = if *customer { "customer" } else { "supplier" };
        // A framework agreement in force for every third party.
        if i % 3 == 0 {
            let case = c
                .post(
                    "/v1/cases",
                    json!({
                        "party": pid, "kind": "framework-agreement",
                        "title": format!("Rahmenvertrag {name} {}", year - 1),
                        "valid_from": format!("{}-01-01", year - 1),
                        "valid_until": format!("{}-12-31", year + 1),
                        "reference": format!("RV-{}-{i:03}", year - 1),
                    }),
                )
                .await?;
            let cid = id_of(&case)?;
            let bytes = pdf(&[
                format!("Rahmenvertrag zwischen {name} und akte Demo GmbH"),
                format!("Laufzeit: 01.01.{} bis 31.12.{}", year - 1, year + 1),
                "Preise gemaess Anlage 1, Zahlungsziel 30 Tage netto.".into(),
                "Sondervereinbarung: Skonto 2 % bei Zahlung binnen 10 Tagen.".into(),
            ]);
            let date = format!("{}-12-10", year - 2);
            c.file(
                &format!(
                    "/v1/records?{}",
                    q(&[
                        ("class", "framework-agreement"),
                        ("title", &format!("Rahmenvertrag {name}")),
                        ("date", &date),
                        ("filename", "rahmenvertrag.pdf"),
                        ("party", pid),
                        ("role", role),
                        ("case", &cid)
                    ])
                ),
                "application/pdf",
                bytes,
            )
            .await?;
        }
        // An open complaint for every fifth.
        if i % 5 == 1 {
            let case = c
                .post(
                    "/v1/cases",
                    json!({"party": pid, "kind": "complaint", "title": format!("Reklamation Lieferung {}-{:03}", year, i)}),
                )
                .await?;
            let cid = id_of(&case)?;
            c.post(
                &format!("/v1/parties/{pid}/notes"),
                json!({"text": "Kunde meldet beschädigte Ware, Fotos folgen per E-Mail. Rückruf zugesagt.", "title": "Reklamation telefonisch aufgenommen", "duration": "8m", "case": cid}),
            )
            .await?;
        }
        // Transactions over the last years.
        for k in 0..(3 + i % 4) {
            let y = year - (k as i32 % 3);
            let date = NaiveDate::from_ymd_opt(
                y,
                1 + ((i + k * 5) % 11) as u32,
                1 + ((i * 3 + k) % 27) as u32,
            )
            .unwrap_or(today);
            let date = date.min(today);
            let number = format!("{}-{:04}", y, 100 + i * 10 + k);
            n += 1;
            match k % 3 {
                0 if *supplier => {
                    // An XRechnung from the supplier.
                    c.file(
                        &format!(
                            "/v1/records?{}",
                            q(&[
                                ("filename", &format!("xrechnung-{number}.xml")),
                                ("party", pid),
                                ("role", "supplier")
                            ])
                        ),
                        "application/xml",
                        ubl(
                            &format!("RE-{number}"),
                            date,
                            name,
                            vat,
                            800 + (i * 137 + k * 59) as u32 % 9000,
                        ),
                    )
                    .await?;
                }
                0 => {
                    let bytes = pdf(&[
                        "akte Demo GmbH - Rechnung".into(),
                        format!("Rechnung Nr. AR-{number} vom {}", date.format("%d.%m.%Y")),
                        format!("Kunde: {name}"),
                        format!("Gesamtbetrag: {},00 EUR", 500 + i * 40 + k * 13),
                    ]);
                    c.file(
                        &format!(
                            "/v1/records?{}",
                            q(&[
                                ("class", "invoice"),
                                ("title", &format!("Ausgangsrechnung AR-{number}")),
                                ("date", &date.to_string()),
                                ("filename", &format!("AR-{number}.pdf")),
                                ("party", pid),
                                ("role", role)
                            ])
                        ),
                        "application/pdf",
                        bytes,
                    )
                    .await?;
                }
                1 => {
                    let bytes = pdf(&[
                        format!("Bestellung {number}"),
                        format!("An: {name}"),
                        "Pos. 1  Lagerbuchse 40 mm   200 Stk".into(),
                        "Pos. 2  Dichtring NBR 60x4  500 Stk".into(),
                    ]);
                    c.file(
                        &format!(
                            "/v1/records?{}",
                            q(&[
                                ("class", "order"),
                                ("title", &format!("Bestellung {number}")),
                                ("date", &date.to_string()),
                                ("filename", &format!("bestellung-{number}.pdf")),
                                ("party", pid),
                                ("role", role)
                            ])
                        ),
                        "application/pdf",
                        bytes,
                    )
                    .await?;
                }
                _ => {
                    // An email with a PDF attachment, linked by its sender's address.
                    let att = pdf(&[
                        format!("Angebot {number}"),
                        name.to_string(),
                        "Wir bieten Ihnen freibleibend an: Wartungsvertrag, 12 Monate.".into(),
                    ]);
                    let contact_name =
                        format!("Vertrieb {}", name.split_whitespace().next().unwrap_or(""));
                    let raw = email(
                        (&contact_name, &format!("vertrieb@{domain}")),
                        &format!("einkauf@{OWN_DOMAIN}"),
                        &format!("Angebot {number} – Wartung und Ersatzteile"),
                        date,
                        n,
                        "Sehr geehrte Damen und Herren,\nanbei unser Angebot wie besprochen.\nDie Preise gelten bis Ende des Quartals.",
                        Some((&format!("angebot-{number}.pdf"), &att)),
                    );
                    c.file("/v1/emails", "message/rfc822", raw).await?;
                }
            }
        }
        if i % 4 == 2 {
            c.post(
                &format!("/v1/parties/{pid}/notes"),
                json!({"text": format!("Telefonat mit {name}: Liefertermin für KW {} bestätigt.", 10 + i), "title": "Liefertermin bestätigt", "duration": "5m"}),
            )
            .await?;
        }
    }
    // An old business letter past its retention: awaiting a disposal request.
    let old = NaiveDate::from_ymd_opt(year - 12, 3, 14).unwrap_or(today);
    c.file(
        &format!(
            "/v1/records?{}",
            q(&[
                ("class", "business-letter"),
                ("title", "Geschäftsbrief Preisänderung (alt)"),
                ("date", &old.to_string()),
                ("filename", "preisaenderung-alt.pdf"),
                ("party", &parties[3].0),
                ("role", "supplier")
            ])
        ),
        "application/pdf",
        pdf(&[
            format!("Preisänderung zum 01.04.{}", year - 12),
            "Sehr geehrte Damen und Herren, ...".into(),
        ]),
    )
    .await?;
    // A legal hold on one party.
    c.post(
        "/v1/holds",
        json!({"name": "Rechtsstreit Gewährleistung", "reason": "Klage wegen Mängeln an Lieferung; Landgericht Hamburg", "authority": "Rechtsabteilung", "scope": {"type": "party", "id": parties[4].0}}),
    )
    .await?;
    // One token per demo person.
    let mut lines = Vec::new();
    for (name, person, role, parties_of) in [
        ("anna", "anna.archiv", "archivist", None),
        ("bernd", "bernd.archiv", "archivist", None),
        ("clara", "clara.sachb", "clerk", None),
        ("udo", "udo.pruefer", "auditor", None),
        (
            "rita",
            "rita.extern",
            "clerk",
            Some(vec![parties[0].0.clone()]),
        ),
    ] {
        let mut body = json!({"name": format!("demo-{name}"), "person": person, "role": role});
        if let Some(p) = &parties_of {
            body["parties"] = json!(p);
        }
        let t = c.post("/v1/tokens", body).await?;
        let token = t
            .get("token")
            .and_then(|x| x.as_str())
            .unwrap_or("")
            .to_string();
        let what = match &parties_of {
            Some(_) => format!("{role} (only {})", parties[0].1),
            None => role.to_string(),
        };
        lines.push((person.to_string(), what, token));
    }
    Ok(DemoTokens { lines })
}

//! The web interface over HTTP, without a browser: sessions and their cookie, CSRF and
//! origin checks on every form, sign-out and revocation, party restriction, escaping
//! and the content sandbox, both languages. (`tests/browser.rs` walks the same pages
//! in headless Chromium.)

mod common;

use common::server::{ADMIN, Server};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn api_post(s: &Server, path: &str, body: Value) -> Value {
    let r = http()
        .post(s.url(path))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.expect("json")
}

async fn token(
    s: &Server,
    person: &str,
    role: &str,
    parties: Option<Vec<&str>>,
) -> (String, String) {
    let mut b = json!({"name": format!("t-{person}"), "person": person, "role": role});
    if let Some(p) = parties {
        b["parties"] = json!(p);
    }
    let v = api_post(s, "/v1/tokens", b).await;
    (
        v["token"].as_str().expect("token").to_string(),
        v["id"].as_str().expect("id").to_string(),
    )
}

/// Signs in with `token`; returns the session cookie (`name=value`).
async fn sign_in(s: &Server, token: &str) -> String {
    let r = http()
        .post(s.url("/login"))
        .form(&[("token", token), ("next", "/parties")])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let c = r
        .headers()
        .get(SET_COOKIE)
        .expect("a session cookie")
        .to_str()
        .expect("ascii")
        .to_string();
    c.split(';').next().expect("pair").to_string()
}

async fn page(s: &Server, cookie: &str, path: &str) -> (StatusCode, String) {
    let r = http()
        .get(s.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("get");
    let status = r.status();
    (status, r.text().await.expect("body"))
}

/// The CSRF token of the page at `path`.
async fn csrf(s: &Server, cookie: &str, path: &str) -> String {
    let (_, html) = page(s, cookie, path).await;
    let i = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    html[i + 19..i + 19 + 64].to_string()
}

async fn party(s: &Server, name: &str) -> String {
    let v = api_post(
        s,
        "/v1/parties",
        json!({"kind": "organisation", "name": name, "roles": [{"role": "customer", "number": "4711"}]}),
    )
    .await;
    v["id"].as_str().expect("id").to_string()
}

#[tokio::test]
async fn sign_in_makes_a_strict_session_and_sign_out_or_revocation_ends_it() {
    let s = Server::start(&[]);
    // Not signed in: to the sign-in page, with the way back.
    let r = http().get(s.url("/search?q=x")).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/login?next=%2Fsearch%3Fq%3Dx");
    // A wrong token: 401 and the form again; no cookie.
    let r = http()
        .post(s.url("/login"))
        .header("accept-language", "de-DE")
        .form(&[("token", "akte_wrong")])
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert!(r.text().await.expect("body").contains("ungültig"));
    // An open redirect after sign-in is not possible.
    let (clerk, clerk_id) = token(&s, "clara", "clerk", None).await;
    let r = http()
        .post(s.url("/login"))
        .header("x-forwarded-proto", "https")
        .form(&[("token", clerk.as_str()), ("next", "//evil.example/")])
        .send()
        .await
        .expect("login");
    assert_eq!(r.headers()[LOCATION], "/search");
    let c = r.headers()[SET_COOKIE].to_str().expect("ascii").to_string();
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(c.contains(attr), "{attr} missing in {c}");
    }
    let cookie = sign_in(&s, &clerk).await;
    let r = http()
        .get(s.url("/parties"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    let csp = r.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline'; img"),
        "{csp}"
    );
    assert!(
        !csp.split(';')
            .any(|d| d.contains("script-src") && d.contains("unsafe")),
        "{csp}"
    );
    let html = r.text().await.expect("body");
    // A clerk's navigation: no filing, retention or audit.
    assert!(html.contains("href=\"/search\"") && !html.contains("href=\"/upload\""));
    assert!(!html.contains("href=\"/retention\"") && !html.contains("href=\"/journal\""));
    // Sign-out needs the form's token, then ends the session.
    let r = http()
        .post(s.url("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", "0".repeat(64).as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let t = csrf(&s, &cookie, "/parties").await;
    let r = http()
        .post(s.url("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", t.as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        r.headers()[SET_COOKIE]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0")
    );
    let (st, _) = page(&s, &cookie, "/parties").await;
    assert_eq!(st, StatusCode::SEE_OTHER, "the old cookie is dead");
    // Revoking the token ends its sessions at the next request.
    let cookie = sign_in(&s, &clerk).await;
    assert_eq!(page(&s, &cookie, "/parties").await.0, StatusCode::OK);
    let r = http()
        .delete(s.url(&format!("/v1/tokens/{clerk_id}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("revoke");
    assert!(r.status().is_success());
    assert_eq!(page(&s, &cookie, "/parties").await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn every_form_checks_its_csrf_token_and_origin_and_writes_nothing_without() {
    let s = Server::start(&[]);
    let p = party(&s, "Muster Metall GmbH").await;
    let (clerk, _) = token(&s, "clara", "clerk", None).await;
    let cookie = sign_in(&s, &clerk).await;
    let good = csrf(&s, &cookie, &format!("/parties/{p}")).await;
    let note = |csrf: String, origin: Option<&'static str>| {
        let mut r = http()
            .post(s.url(&format!("/parties/{p}/notes")))
            .header("cookie", &cookie)
            .form(&[("csrf", csrf.as_str()), ("text", "Rückruf vereinbart")]);
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send()
    };
    let r = note(String::new(), None).await.expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = note("f".repeat(64), None).await.expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = note(good.clone(), Some("https://evil.example"))
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Nothing was written.
    let file: Value = http()
        .get(s.url(&format!("/v1/parties/{p}/file")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("file")
        .json()
        .await
        .expect("json");
    assert_eq!(file["records_total"], 0);
    // With its token (and the same origin) the note is saved.
    let host = s.base.trim_start_matches("http://").to_string();
    let r = http()
        .post(s.url(&format!("/parties/{p}/notes")))
        .header("cookie", &cookie)
        .header("origin", format!("http://{host}"))
        .form(&[("csrf", good.as_str()), ("text", "Rückruf vereinbart")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[LOCATION],
        format!("/parties/{p}?done=note").as_str()
    );
    let (_, html) = page(&s, &cookie, &format!("/parties/{p}?done=note")).await;
    assert!(html.contains("Telefonnotiz") || html.contains("Phone note"));
    assert!(html.contains("class=\"flash\""));
}

#[tokio::test]
async fn a_restricted_session_sees_nothing_of_another_party() {
    let s = Server::start(&[]);
    let a = party(&s, "Alpha Antriebe GmbH").await;
    let b = party(&s, "Beta Bau GmbH").await;
    // A record of both, and one of B only.
    for (parties, title) in [
        (vec![&a, &b], "Gemeinsames Protokoll"),
        (vec![&b], "Nur Beta Vertrag"),
    ] {
        let q = format!(
            "/v1/records?filename=x.txt&title={}&party={}&role=customer",
            title.replace(' ', "%20"),
            parties[0]
        );
        let r = http()
            .post(s.url(&q))
            .bearer_auth(ADMIN)
            .header("content-type", "text/plain")
            .body(format!("{title} Inhalt"))
            .send()
            .await
            .expect("record");
        assert!(r.status().is_success(), "{}", r.status());
        let id = r.json::<Value>().await.expect("json")["id"]
            .as_str()
            .expect("id")
            .to_string();
        if let Some(other) = parties.get(1) {
            api_post(
                &s,
                &format!("/v1/records/{id}/links"),
                json!({"add": [{"party": other, "role": "supplier"}]}),
            )
            .await;
        }
    }
    let (rita, _) = token(&s, "rita", "clerk", Some(vec![&a])).await;
    let cookie = sign_in(&s, &rita).await;
    let (st, html) = page(&s, &cookie, "/parties").await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        html.contains("Alpha Antriebe") && !html.contains("Beta Bau"),
        "{html}"
    );
    let (st, _) = page(&s, &cookie, &format!("/parties/{b}")).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // Search (waits for the index): A's record is found; B's name shows nowhere, not as
    // a co-party of the shared record, not as a facet.
    let mut html = String::new();
    for _ in 0..100 {
        html = page(&s, &cookie, "/search?q=Inhalt").await.1;
        if html.contains("Gemeinsames Protokoll") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(html.contains("Gemeinsames Protokoll"), "{html}");
    assert!(
        !html.contains("Nur Beta Vertrag") && !html.contains("Beta Bau"),
        "{html}"
    );
    // The retention pages are not for a restricted token.
    let (st, _) = page(&s, &cookie, "/retention").await;
    assert_eq!(st, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn script_in_titles_and_content_is_escaped_or_sandboxed() {
    let s = Server::start(&[]);
    let title = "<script>window.x=1</script><img src=x onerror=alert(1)>";
    let r = http()
        .post(s.url("/v1/records?filename=a.html&class=memo&title=%3Cscript%3Ewindow.x%3D1%3C%2Fscript%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E"))
        .bearer_auth(ADMIN)
        .header("content-type", "text/html")
        .body("<script>alert(2)</script><p>Hallo</p>")
        .send()
        .await
        .expect("record");
    assert!(r.status().is_success());
    let id = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let cookie = sign_in(&s, ADMIN).await;
    let (st, html) = page(&s, &cookie, &format!("/records/{id}")).await;
    assert_eq!(st, StatusCode::OK);
    assert!(
        !html.contains(title) && !html.contains("<script>window"),
        "unescaped title"
    );
    assert!(
        html.contains("&#60;script&#62;") || html.contains("&lt;script&gt;"),
        "{html}"
    );
    // HTML content is never shown inline, and whatever is served runs no script.
    let r = http()
        .get(s.url(&format!("/records/{id}/content?inline=1")))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("content");
    assert_eq!(r.status(), StatusCode::OK);
    let cd = r.headers()["content-disposition"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(cd.starts_with("attachment"), "{cd}");
    let csp = r.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    // The search page: the highlighted title is escaped by the API.
    let mut html = String::new();
    for _ in 0..100 {
        html = page(&s, &cookie, "/search?q=Hallo").await.1;
        if html.contains("ol class=\"hits\"") && html.contains("window.x") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(html.contains("window.x"), "{html}");
    assert!(!html.contains("<script>window"), "{html}");
}

#[tokio::test]
async fn both_languages_render_with_their_formats() {
    let s = Server::start(&[]);
    let p = party(&s, "Gamma Getriebe GmbH").await;
    let r = http()
        .post(s.url(&format!(
            "/v1/records?filename=brief.txt&class=business-letter&party={p}&role=customer"
        )))
        .bearer_auth(ADMIN)
        .header("content-type", "text/plain")
        .body("Sehr geehrte Damen und Herren")
        .send()
        .await
        .expect("record");
    assert!(r.status().is_success());
    let cookie = sign_in(&s, ADMIN).await;
    let get = |lang: &'static str, path: String| {
        http()
            .get(s.url(&path))
            .header("cookie", &cookie)
            .header("accept-language", lang)
            .send()
    };
    let de = get("de-DE,de;q=0.9", format!("/parties/{p}"))
        .await
        .expect("de")
        .text()
        .await
        .expect("body");
    let en = get("en-GB,en;q=0.9", format!("/parties/{p}"))
        .await
        .expect("en")
        .text()
        .await
        .expect("body");
    assert!(de.contains("<html lang=\"de\">") && de.contains("Stammdaten") && de.contains("Kunde"));
    assert!(
        en.contains("<html lang=\"en\">") && en.contains("Master data") && en.contains("Customer")
    );
    // The switch sets a cookie that wins over Accept-Language.
    let r = http()
        .get(s.url("/lang/en?back=/parties"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("switch");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/parties");
    let lang = r.headers()[SET_COOKIE]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("pair")
        .to_string();
    let html = http()
        .get(s.url("/retention"))
        .header("cookie", format!("{cookie}; {lang}"))
        .header("accept-language", "de")
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("body");
    assert!(
        html.contains("Legal holds") && html.contains("Business letter"),
        "English class names"
    );
    // Static assets: vendored, served with a charset.
    let r = http()
        .get(s.url("/assets/htmx.min.js"))
        .send()
        .await
        .expect("htmx");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert!(r.text().await.expect("body").contains("htmx"));
}

#[tokio::test]
async fn the_apis_behind_the_pages_answer_with_counts_not_every_row() {
    let s = Server::start(&[]);
    let p = party(&s, "Delta Dichtungen GmbH").await;
    let q = |class: &str, date: &str, n: usize| {
        format!("/v1/records?filename=d{n}.txt&class={class}&date={date}&party={p}&role=customer")
    };
    let docs = [
        ("invoice", "2024-03-01"),
        ("invoice", "2024-05-01"),
        ("order", "2024-07-01"),
        ("invoice", "2025-01-10"),
        ("business-letter", "2010-02-01"),
    ];
    for (n, (class, date)) in docs.iter().enumerate() {
        let r = http()
            .post(s.url(&q(class, date, n)))
            .bearer_auth(ADMIN)
            .header("content-type", "text/plain")
            .body(format!("Beleg {n}"))
            .send()
            .await
            .expect("record");
        assert!(r.status().is_success(), "{}", r.status());
    }
    let s = &s;
    let get = async |path: String| {
        let r = http()
            .get(s.url(&path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("get");
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json::<Value>().await.expect("json")
    };
    // The party file: at most `per_year` documents per year, every year counted.
    let f = get(format!("/v1/parties/{p}/file?per_year=1")).await;
    assert_eq!(
        f["transactions_by_year"]["2024"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(
        f["transactions_by_year"]["2024"][0]["title"], "d2.txt",
        "newest first"
    );
    assert_eq!(f["transactions_per_year"]["2024"], 3);
    assert_eq!(f["transactions_per_year"]["2025"], 1);
    let all = get(format!("/v1/parties/{p}/file")).await;
    assert_eq!(
        all["transactions_by_year"]["2024"].as_array().map(Vec::len),
        Some(3)
    );
    let r = http()
        .get(s.url(&format!("/v1/parties/{p}/file?per_year=-1")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The retention report without rows: counts per class, no per-record rows.
    let rep = get("/v1/retention/report?rows=false".into()).await;
    assert_eq!(rep["records"].as_array().map(Vec::len), Some(0));
    assert_eq!(rep["records_total"], 5);
    let letters = rep["by_policy"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["class"] == "business-letter")
        .expect("the letter's class")
        .clone();
    assert_eq!(letters["records"], 1);
    assert_eq!(
        letters["eligible"], 1,
        "a 2010 letter is past its six years"
    );
    assert_eq!(letters["on_hold"], 0);
    let full = get("/v1/retention/report".into()).await;
    assert_eq!(full["records"].as_array().map(Vec::len), Some(5));
    // The dashboard shows it per class, in the reader's language.
    let cookie = sign_in(s, ADMIN).await;
    let r = http()
        .get(s.url("/retention"))
        .header("cookie", &cookie)
        .header("accept-language", "de")
        .send()
        .await
        .expect("dashboard");
    let html = r.text().await.expect("body");
    assert!(
        html.contains("Handelsbrief") && html.contains("Rechnung"),
        "{html}"
    );
    assert!(
        html.contains("d4.txt"),
        "the eligible letter is offered for disposal"
    );
}

/// Issue #20, the parts a user meets first: a misspelled class, a typo'd future date
/// and `field:*` are refused with a message and write nothing; a record under a party
/// hold says so; the party file lists every linked record (an email of any class in
/// the communication, a contract among the other documents) and the party's holds.
#[tokio::test]
async fn mistakes_are_refused_and_the_file_shows_every_record_and_hold() {
    let s = Server::start(&[]);
    let s = &s;
    let p = party(s, "Epsilon Elektro GmbH").await;
    let post = async |query: String, ctype: &str, body: &str| {
        http()
            .post(s.url(&format!("/v1/records?{query}")))
            .bearer_auth(ADMIN)
            .header("content-type", ctype.to_string())
            .body(body.to_string())
            .send()
            .await
            .expect("post")
    };
    let total = async || -> u64 {
        let f: Value = http()
            .get(s.url(&format!("/v1/parties/{p}/file")))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("file")
            .json()
            .await
            .expect("json");
        f["records_total"].as_u64().expect("count")
    };
    // A misspelled class: refused, with the class it probably meant.
    let r = post(
        format!("class=invioce&party={p}&role=customer&filename=r.txt"),
        "text/plain",
        "Rechnung 1",
    )
    .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    let detail = r.text().await.expect("body");
    assert!(
        detail.contains("invioce") && detail.contains("did you mean \\\"invoice\\\""),
        "{detail}"
    );
    // An empty upload: refused, nothing written.
    let r = post(
        format!("class=invoice&party={p}&role=customer&filename=leer.txt"),
        "text/plain",
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.expect("body").contains("empty"));
    // A document date far in the future: refused.
    let r = post(
        format!("class=invoice&date=2099-01-01&party={p}&role=customer&filename=r.txt"),
        "text/plain",
        "Rechnung 2",
    )
    .await;
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(r.text().await.expect("body").contains("in the future"));
    assert_eq!(total().await, 0, "nothing was written");
    // Accepted: an invoice, an email classed as a complaint, a contract.
    let r = post(
        format!("class=invoice&date=2026-01-05&party={p}&role=customer&filename=r.txt"),
        "text/plain",
        "Rechnung 3",
    )
    .await;
    assert!(r.status().is_success());
    let invoice = r.json::<Value>().await.expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let mail = "From: kunde@epsilon.example\r\nTo: service@example.com\r\nSubject: Reklamation Lieferung\r\nDate: Mon, 5 Jan 2026 10:00:00 +0100\r\nMessage-ID: <rekl-1@epsilon.example>\r\n\r\nDie Ware kam beschaedigt an.\r\n";
    let r = http()
        .post(s.url(&format!(
            "/v1/emails?class=complaint&party={p}&role=customer"
        )))
        .bearer_auth(ADMIN)
        .header("content-type", "message/rfc822")
        .body(mail)
        .send()
        .await
        .expect("email");
    assert!(r.status().is_success(), "{}", r.status());
    let r = post(
        format!("class=contract&party={p}&role=customer&filename=v.txt&title=Wartungsvertrag"),
        "text/plain",
        "Vertrag",
    )
    .await;
    assert!(r.status().is_success());
    // Changing a class to an unknown one is refused too.
    let r = http()
        .post(s.url(&format!("/v1/records/{invoice}/revisions")))
        .bearer_auth(ADMIN)
        .json(&json!({"class": "invioce", "reason": "Tippfehler"}))
        .send()
        .await
        .expect("amend");
    assert!(r.status().is_client_error(), "{}", r.status());
    // A hold on the party shows on its records and in its file.
    api_post(
        s,
        "/v1/holds",
        json!({"name": "Streitfall Epsilon", "reason": "Klage", "scope": {"type": "party", "id": p}}),
    )
    .await;
    let r: Value = http()
        .get(s.url(&format!("/v1/records/{invoice}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("record")
        .json()
        .await
        .expect("json");
    assert_eq!(r["holds"], json!(["Streitfall Epsilon"]), "{r}");
    let f: Value = http()
        .get(s.url(&format!("/v1/parties/{p}/file")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("file")
        .json()
        .await
        .expect("json");
    assert_eq!(f["holds"][0]["name"], "Streitfall Epsilon");
    let titles = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| i["title"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert!(
        titles(&f["communication"]).contains(&"Reklamation Lieferung".to_string()),
        "{f}"
    );
    assert!(
        titles(&f["other_documents"]).contains(&"Wartungsvertrag".to_string()),
        "{f}"
    );
    assert_eq!(f["records_total"], 3);
    // The page shows the hold and both lists.
    let cookie = sign_in(s, ADMIN).await;
    let (_, html) = page(s, &cookie, &format!("/parties/{p}")).await;
    assert!(html.contains("Streitfall Epsilon") && html.contains("Wartungsvertrag"));
    assert!(html.contains("Reklamation Lieferung"));
    // `field:*` is a clear 422, not an internal error.
    let r = http()
        .get(s.url("/v1/search?q=title:*"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("search");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The CLI refuses a typo'd date as well, and writes nothing.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("r.txt");
    std::fs::write(&file, "Rechnung").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_akte"))
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(["archive", "--class", "invoice", "--date", "2099-01-01"])
        .arg(&file)
        .output()
        .expect("akte archive");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in the future"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_akte"))
        .arg("--data")
        .arg(dir.path().join("data"))
        .args(["archive", "--class", "invioce"])
        .arg(&file)
        .output()
        .expect("akte archive");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invioce"));
}

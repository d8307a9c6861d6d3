//! The web interface in a real browser: headless Chromium driven over WebDriver
//! (`chromedriver`, Debian's `chromium` + `chromium-driver`, installed by `.ci/deps`)
//! against `akte serve --demo`. One walk through what clerks, archivists and auditors
//! do, in German, then every page again in English; a screenshot of each page lands in
//! `target/screenshots/` (or `$AKTE_SCREENSHOTS`).
//!
//! Without Chromium the test says so and passes; `tests/web.rs` checks the same pages
//! over HTTP (sessions, CSRF, escaping, restriction) without a browser.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|f| f.is_file())
    })
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Starts `akte serve --demo` on a free port; returns its address and the demo tokens.
fn start_server(data: &Path) -> (Kill, String, Vec<(String, String)>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_akte"))
        .args([
            "--data",
            data.to_str().expect("utf-8"),
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("AKTE_LOG", "warn")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start akte");
    let stderr = child.stderr.take().expect("stderr");
    let kill = Kill(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[akte] {line}");
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut addr = None;
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the server did not seed the demo in time");
        if let Some(a) = line.split("listening on http://").nth(1) {
            addr = Some(a.trim().to_string());
        }
        assert!(!line.contains("seeding the demo failed"), "{line}");
        if line.contains("demo ready") {
            break;
        }
    }
    let text = std::fs::read_to_string(data.join("demo-tokens.txt")).expect("demo tokens");
    let tokens = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let person = w.next()?;
            let token = l.split_whitespace().last()?;
            token
                .starts_with("akte_")
                .then(|| (person.to_string(), token.to_string()))
        })
        .collect();
    (kill, addr.expect("address"), tokens)
}

fn token<'a>(tokens: &'a [(String, String)], person: &str) -> &'a str {
    &tokens
        .iter()
        .find(|(p, _)| p == person)
        .unwrap_or_else(|| panic!("no token for {person}"))
        .1
}

struct Browser {
    c: Client,
    base: String,
    shots: PathBuf,
    taken: Vec<String>,
    /// axe-core's script, when installed (`.ci/deps`): every page is audited for
    /// WCAG 2 A and AA (labels, contrast, landmarks, …) when its screenshot is taken.
    axe: Option<String>,
    /// (page, rule, impact, nodes, help) of every violation found.
    violations: Vec<String>,
    audited: usize,
}

/// Where `.ci/deps` installs axe-core (npm), or `$AKTE_AXE_JS`.
fn axe_script() -> Option<String> {
    let path = std::env::var_os("AKTE_AXE_JS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/akte-axe/node_modules/axe-core/axe.min.js"))
        })?;
    std::fs::read_to_string(path).ok()
}

impl Browser {
    async fn go(&self, path: &str) {
        self.c
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("goto");
    }

    async fn shot(&mut self, name: &str) {
        // The whole page, not only the window: the window grows to the page's height for
        // the picture (at most 4000 px), then returns to its size.
        let (_, _, w, h) = self.c.get_window_rect().await.expect("window");
        let height = self
            .c
            .execute("return document.documentElement.scrollHeight;", vec![])
            .await
            .ok()
            .and_then(|v| v.as_u64())
            .unwrap_or(h);
        if height > h {
            let _ = self
                .c
                .set_window_size(w as u32, (height + 140).min(4000) as u32)
                .await;
        }
        let png = self.c.screenshot().await.expect("screenshot");
        if height > h {
            let _ = self.c.set_window_size(w as u32, h as u32).await;
        }
        let file = self.shots.join(format!("{name}.png"));
        std::fs::write(&file, png).expect("write screenshot");
        self.taken.push(file.display().to_string());
        // The certificate is the API's document in a script-less sandbox: no audit.
        if !name.contains("certificate") {
            self.audit(name).await;
        }
    }

    /// Runs axe-core on the page (WCAG 2.0/2.1 A and AA rules).
    async fn audit(&mut self, name: &str) {
        let Some(axe) = &self.axe else { return };
        // A page that is not HTML of ours (the certificate) is audited all the same.
        self.c
            .execute(&format!("{axe}\n;return true;"), vec![])
            .await
            .expect("inject axe-core");
        let found = self
            .c
            .execute_async(
                "const done = arguments[arguments.length - 1];\n\
                 window.axe.run(document, {iframes: false, runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})\n\
                   .then(r => done(r.violations.map(v => [v.id, v.impact || '', v.nodes.length, v.help, v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')])))\n\
                   .catch(e => done([['axe-error', 'error', 0, String(e), '']]));",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("run axe-core on {name}: {e}"));
        self.audited += 1;
        for v in found.as_array().into_iter().flatten() {
            self.violations.push(format!("{name}: {v}"));
        }
    }

    async fn css(&self, sel: &str) -> fantoccini::elements::Element {
        self.c
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(sel))
            .await
            .unwrap_or_else(|e| panic!("no element {sel}: {e}"))
    }

    async fn count(&self, sel: &str) -> usize {
        self.c
            .find_all(Locator::Css(sel))
            .await
            .expect("find_all")
            .len()
    }

    async fn text(&self, sel: &str) -> String {
        self.css(sel).await.text().await.expect("text")
    }

    async fn source(&self) -> String {
        self.c.source().await.expect("source")
    }

    async fn path(&self) -> String {
        let u = self.c.current_url().await.expect("url");
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    async fn sign_in(&self, token: &str) {
        self.go("/login").await;
        self.css("#token")
            .await
            .send_keys(token)
            .await
            .expect("type");
        self.css("form[action='/login'] button")
            .await
            .click()
            .await
            .expect("click");
        self.css("header nav").await;
    }

    async fn sign_out(&self) {
        self.css("form[action='/logout'] button")
            .await
            .click()
            .await
            .expect("sign out");
        self.css("#token").await;
    }

    /// Waits until `f` holds for the page's source.
    async fn until(&self, what: &str, f: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.source().await;
            if f(&s) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    async fn set_lang(&self, lang: &str) {
        self.css(&format!(".lang a[hreflang='{lang}']"))
            .await
            .click()
            .await
            .expect("lang");
        self.css(&format!("html[lang='{lang}']")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerk_archivist_and_auditor_work_in_a_real_browser() {
    let (Some(driver), Some(chromium)) = (
        which("chromedriver"),
        which("chromium").or_else(|| which("chromium-browser")),
    ) else {
        eprintln!(
            "SKIPPED: no chromedriver/chromium on PATH (run .ci/deps to install Debian's \
             chromium and chromium-driver); tests/web.rs covers the pages over HTTP"
        );
        return;
    };
    let data = tempfile::tempdir().expect("tempdir");
    let (_server, addr, tokens) = start_server(data.path());
    let port = free_port();
    let _driver = Kill(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver"),
    );
    let shots = std::env::var_os("AKTE_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots"));
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-background-networking", "--no-first-run", "--window-size=1280,800",
                     "--lang=de-DE"],
            "prefs": {"intl.accept_languages": "de-DE,de"}
        }),
    );
    let mut client = None;
    for _ in 0..50 {
        match ClientBuilder::rustls()
            .expect("tls")
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let c = client.expect("chromedriver session");
    let axe = axe_script();
    if axe.is_none() {
        eprintln!(
            "accessibility audit SKIPPED: axe-core not found (.ci/deps installs it with npm into \
             ~/.cache/akte-axe, or set AKTE_AXE_JS)"
        );
    }
    let mut b = Browser {
        c,
        base: format!("http://{addr}"),
        shots,
        taken: Vec::new(),
        axe,
        violations: Vec::new(),
        audited: 0,
    };
    let result = walk(&mut b, &tokens, &addr).await;
    let _ = b.c.clone().close().await;
    eprintln!("screenshots ({}):", b.taken.len());
    for s in &b.taken {
        eprintln!("  {s}");
    }
    result.expect("walk");
    if b.axe.is_some() {
        eprintln!(
            "axe-core (WCAG 2.1 A/AA): {} pages audited, {} violations",
            b.audited,
            b.violations.len()
        );
        for v in &b.violations {
            eprintln!("  {v}");
        }
        assert!(
            b.violations.is_empty(),
            "accessibility violations (see above)"
        );
    }
}

/// Opens an archived email (found by its subject, told apart by its media type).
async fn open_email(b: &Browser) {
    b.go("/search?q=Wartung%20Ersatzteile").await;
    b.css("ol.hits li").await;
    b.c.find(Locator::XPath(
        "//ol[@class='hits']/li[.//span[contains(., 'message/rfc822')]]//a[@class='title']",
    ))
    .await
    .expect("an email among the hits")
    .click()
    .await
    .expect("open email");
    b.css(".mail").await;
}

async fn walk(b: &mut Browser, tokens: &[(String, String)], addr: &str) -> Result<(), String> {
    let anna = token(tokens, "anna.archiv");
    let bernd = token(tokens, "bernd.archiv");
    let rita = token(tokens, "rita.extern");
    let udo = token(tokens, "udo.pruefer");

    // Sign in: German by Accept-Language.
    b.go("/search").await;
    b.css("#token").await;
    assert!(
        b.path().await.starts_with("/login"),
        "not signed in: sent to sign-in"
    );
    assert!(b.source().await.contains("Anmelden"));
    b.shot("de-01-sign-in").await;
    b.sign_in(anna).await;

    // Search, then a facet as a filter.
    b.css("#top-q")
        .await
        .send_keys("Angebot")
        .await
        .expect("type");
    b.css(".searchbox button")
        .await
        .click()
        .await
        .expect("search");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b.path().await.contains("q=Angebot") {
        assert!(Instant::now() < deadline, "the search did not load");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.css("ol.hits li").await;
    let before = b.text(".results p.muted").await;
    assert!(
        b.source().await.contains("<mark>"),
        "matches are highlighted"
    );
    b.shot("de-02-search").await;
    b.css(".facets ul li a").await.click().await.expect("facet");
    b.css(".chips .chip").await;
    assert!(
        b.path().await.contains("class="),
        "the facet filters: {}",
        b.path().await
    );
    let after = b.text(".results p.muted").await;
    eprintln!("search: {before} → with a facet: {after}");

    // The parties and a party file.
    b.go("/parties").await;
    b.css("table.list tbody tr").await;
    assert!(b.count("table.list tbody tr").await >= 30);
    b.shot("de-03-parties").await;
    b.c.find(Locator::LinkText("Müller Maschinenbau GmbH"))
        .await
        .expect("party link")
        .click()
        .await
        .expect("open file");
    b.css("#h-master").await;
    let party_path = b.path().await;
    let party_id = party_path.trim_start_matches("/parties/").to_string();
    let src = b.source().await;
    assert!(src.contains("Rahmenvertrag"), "agreement in force shown");
    assert!(src.contains("Kunde"), "roles shown");
    b.shot("de-04-party-file").await;

    // A PDF record: inline in a frame.
    b.c.find(Locator::Css(".card a[href^='/records/']"))
        .await
        .expect("record link")
        .click()
        .await
        .expect("open record");
    b.css("#h-content").await;
    assert!(b.count("iframe.doc").await == 1, "the PDF is shown inline");
    assert!(b.source().await.contains("SHA-256"));
    b.shot("de-05-record-pdf").await;

    // An email record: headers, sanitized body, remote image blocked, attachment linked.
    open_email(b).await;
    let src = b.source().await;
    assert!(!src.contains("tracker.example.net"), "remote image removed");
    assert!(src.contains("angebot-"), "attachment listed");
    b.shot("de-06-record-email").await;

    // A phone note from the party file: open the form, type, save.
    b.go(&party_path).await;
    b.css("#add-note")
        .await
        .click()
        .await
        .expect("open note form");
    b.css("#note-text")
        .await
        .send_keys("Rückruf wegen Liefertermin, alles geklärt.")
        .await
        .expect("type");
    b.css("#save-note").await.click().await.expect("save note");
    b.css("p.flash").await;
    b.until("the note in the timeline", |s| {
        s.contains("Telefonnotiz") || s.contains("phone-note")
    })
    .await;
    b.shot("de-07-party-file-note").await;

    // Upload two files at once (the file input takes both).
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let f1 = dir.path().join("lieferschein-4711.txt");
    let f2 = dir.path().join("protokoll-besprechung.txt");
    std::fs::write(&f1, "Lieferschein 4711: 20 Paletten Dichtringe").map_err(|e| e.to_string())?;
    std::fs::write(&f2, "Besprechungsprotokoll: Preise 2027").map_err(|e| e.to_string())?;
    b.go(&format!("/upload?party={party_id}")).await;
    b.css("#up-files")
        .await
        .send_keys(&format!("{}\n{}", f1.display(), f2.display()))
        .await
        .expect("choose files");
    b.shot("de-08-upload").await;
    b.css("#up-submit").await.click().await.expect("upload");
    b.until("two uploads done", |s| {
        s.matches("class=\"ok\"").count() >= 2
    })
    .await;
    b.shot("de-09-upload-done").await;

    // A legal hold on the party.
    b.go(&format!("/retention?hold={party_id}")).await;
    b.css("#place-hold summary")
        .await
        .click()
        .await
        .expect("open hold form");
    b.css("#hold-name")
        .await
        .send_keys("Prüfung Betriebsprüfung 2026")
        .await
        .expect("type");
    b.css("#hold-reason")
        .await
        .send_keys("Anforderung des Finanzamts")
        .await
        .expect("type");
    b.css("#place-hold button.primary")
        .await
        .click()
        .await
        .expect("place hold");
    b.css("p.flash").await;
    assert!(b.source().await.contains("Prüfung Betriebsprüfung 2026"));
    b.shot("de-10-retention").await;

    // Disposal: requested by anna …
    b.css("#disp-reason")
        .await
        .send_keys("Aufbewahrungsfrist abgelaufen")
        .await
        .expect("type");
    b.css("#request-disposal")
        .await
        .click()
        .await
        .expect("request");
    b.css("#disposal-state").await;
    let disposal_path = b.path().await;
    let disposal_path = disposal_path.split('?').next().unwrap_or("").to_string();
    assert!(
        b.count("#approve").await == 0,
        "the requester cannot approve"
    );
    b.shot("de-11-disposal-requested").await;
    b.sign_out().await;
    b.shot("de-12-signed-out").await;

    // … approved by bernd, a second person.
    b.sign_in(bernd).await;
    b.go(&disposal_path).await;
    b.css("#approve").await.click().await.expect("approve");
    b.until("the disposal executed", |s| s.contains("ausgeführt"))
        .await;
    b.css("a[href$='/certificate']").await;
    b.shot("de-13-disposal-executed").await;
    b.css("a[href$='/certificate']")
        .await
        .click()
        .await
        .expect("certificate");
    b.until("the certificate", |s| {
        s.to_lowercase().contains("certificate")
            || s.contains("Löschprotokoll")
            || s.contains("Disposal")
    })
    .await;
    b.shot("de-14-certificate").await;
    b.go("/search").await;
    b.sign_out().await;

    // A document whose title and body carry script: nothing runs.
    let script_id = {
        let http = reqwest::Client::new();
        let r = http
            .post(format!("http://{addr}/v1/records?filename=x.html&title=%3Cscript%3Ewindow.__pwned%3D1%3C%2Fscript%3E%3Cimg%20src%3Dx%20onerror%3D%22window.__pwned%3D2%22%3E&class=memo"))
            .bearer_auth(anna)
            .header("content-type", "text/html")
            .body("<html><body><script>window.__pwned=3</script><p>Skriptprobe</p></body></html>")
            .send()
            .await
            .map_err(|e| e.to_string())?;
        assert!(r.status().is_success(), "{}", r.status());
        let v: serde_json::Value = r.json().await.map_err(|e| e.to_string())?;
        v["id"].as_str().unwrap_or_default().to_string()
    };
    b.sign_in(anna).await;
    b.go(&format!("/records/{script_id}")).await;
    b.css("#h-content").await;
    b.go("/search?q=Skriptprobe").await;
    b.css("ol.hits").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.go(&format!("/records/{script_id}")).await;
    b.css("#h-content").await;
    let pwned =
        b.c.execute("return window.__pwned === undefined;", vec![])
            .await
            .map_err(|e| e.to_string())?;
    assert_eq!(
        pwned,
        serde_json::json!(true),
        "no script ran on the record page"
    );
    assert!(
        b.source().await.contains("&lt;script&gt;"),
        "the title is escaped"
    );
    b.shot("de-15-record-script-escaped").await;
    b.sign_out().await;

    // A restricted clerk sees only her party.
    b.sign_in(rita).await;
    b.go("/parties").await;
    b.css("table.list").await;
    assert_eq!(b.count("table.list tbody tr").await, 1, "one party only");
    b.go("/search?q=Angebot").await;
    b.css(".results").await;
    let src = b.source().await;
    assert!(
        !src.contains("Schmidt Logistik"),
        "no other party in hits or facets"
    );
    b.shot("de-16-restricted-search").await;
    b.go("/search").await;
    let other = "/parties/00000000-0000-7000-8000-000000000000";
    b.go(other).await;
    b.css("p.error").await;
    b.sign_out().await;

    // The auditor: journal, verify, procedure documentation.
    b.sign_in(udo).await;
    b.go("/journal").await;
    b.css("table.journal tbody tr").await;
    b.shot("de-17-journal").await;
    b.go("/verify").await;
    b.css("#start-verify").await.click().await.expect("verify");
    b.until("verify passed", |s| s.contains("bestanden")).await;
    b.shot("de-18-verify").await;
    b.go("/procedure").await;
    b.css("div.doc-text table").await;
    b.shot("de-19-procedure").await;

    // English: the switch, then every page again.
    b.set_lang("en").await;
    assert!(b.source().await.contains("Procedure documentation"));
    b.shot("en-19-procedure").await;
    b.go("/journal").await;
    b.css("table.journal").await;
    b.shot("en-17-journal").await;
    b.go("/verify").await;
    b.shot("en-18-verify").await;
    b.sign_out().await;
    b.shot("en-01-sign-in").await;
    assert!(b.source().await.contains("Sign in"));
    b.sign_in(anna).await;
    b.go("/search?q=Angebot").await;
    b.css("ol.hits").await;
    assert!(b.source().await.contains("hits"));
    b.shot("en-02-search").await;
    b.go("/parties").await;
    b.shot("en-03-parties").await;
    b.go(&party_path).await;
    b.css("#h-master").await;
    assert!(b.source().await.contains("Master data"));
    b.shot("en-04-party-file").await;
    b.go("/search?q=Rahmenvertrag").await;
    b.css("ol.hits li a.title")
        .await
        .click()
        .await
        .expect("open");
    b.css("#h-content").await;
    b.shot("en-05-record-pdf").await;
    open_email(b).await;
    b.shot("en-06-record-email").await;
    b.go(&format!("/upload?party={party_id}")).await;
    b.shot("en-08-upload").await;
    b.go("/retention").await;
    assert!(b.source().await.contains("Legal holds"));
    b.shot("en-10-retention").await;
    b.go(&disposal_path).await;
    b.css("#disposal-state").await;
    b.shot("en-13-disposal").await;
    // A phone-sized screen, for reading.
    b.c.set_window_size(390, 844)
        .await
        .map_err(|e| e.to_string())?;
    b.go(&party_path).await;
    b.css("#h-master").await;
    b.shot("en-20-party-file-phone").await;
    b.sign_out().await;
    Ok(())
}

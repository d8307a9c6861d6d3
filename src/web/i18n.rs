//! The interface's two languages: every text in German and English, and dates, numbers
//! and sizes in the reader's format.

use chrono::{DateTime, NaiveDate, Utc};

/// A language the interface speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    De,
    En,
}

impl Lang {
    pub fn code(&self) -> &'static str {
        match self {
            Lang::De => "de",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "de" => Some(Lang::De),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The reader's choice from `Accept-Language` (by quality; German when neither
    /// language is asked for).
    pub fn negotiate(accept: Option<&str>) -> Lang {
        let mut best: Option<(f32, Lang)> = None;
        for part in accept.unwrap_or("").split(',') {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = it
                .find_map(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|v| v.parse::<f32>().ok())
                })
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or("");
            let Some(lang) = Lang::parse(primary) else {
                continue;
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map(|(_, l)| l).unwrap_or(Lang::De)
    }

    pub fn texts(&self) -> &'static Texts {
        match self {
            Lang::De => &DE,
            Lang::En => &EN,
        }
    }

    pub fn date(&self, d: &NaiveDate) -> String {
        match self {
            Lang::De => d.format("%d.%m.%Y").to_string(),
            Lang::En => d.format("%-d %b %Y").to_string(),
        }
    }

    /// A time in UTC, as the journal keeps it.
    pub fn datetime(&self, t: &DateTime<Utc>) -> String {
        match self {
            Lang::De => t.format("%d.%m.%Y %H:%M UTC").to_string(),
            Lang::En => t.format("%-d %b %Y %H:%M UTC").to_string(),
        }
    }

    /// A whole number with the locale's thousands separator.
    pub fn num(&self, n: u64) -> String {
        let digits = n.to_string();
        let sep = match self {
            Lang::De => '.',
            Lang::En => ',',
        };
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(sep);
            }
            out.push(c);
        }
        out
    }

    /// An amount of money such as an e-invoice's total (`1234.5` → `1.234,50 €`).
    pub fn amount(&self, value: &str, currency: &str) -> Option<String> {
        let v: f64 = value.trim().parse().ok()?;
        if !v.is_finite() {
            return None;
        }
        let cents = (v * 100.0).round() as i64;
        let (neg, cents) = (cents < 0, cents.unsigned_abs());
        let whole = self.num(cents / 100);
        let frac = cents % 100;
        let sign = if neg { "-" } else { "" };
        let cur = if currency == "EUR" { "€" } else { currency };
        Some(match self {
            Lang::De => format!("{sign}{whole},{frac:02} {cur}"),
            Lang::En => format!("{sign}{cur}{whole}.{frac:02}"),
        })
    }

    /// A size in bytes, KB or MB (decimal units).
    pub fn bytes(&self, n: u64) -> String {
        let (v, unit) = if n >= 1_000_000 {
            (n as f64 / 1e6, "MB")
        } else if n >= 1_000 {
            (n as f64 / 1e3, "KB")
        } else {
            return format!("{} B", self.num(n));
        };
        let s = format!("{v:.1}");
        let s = match self {
            Lang::De => s.replace('.', ","),
            Lang::En => s,
        };
        format!("{s} {unit}")
    }
}

macro_rules! texts {
    ($($key:ident: $de:expr, $en:expr;)*) => {
        /// Every text of the interface, in one language.
        #[derive(Debug)]
        pub struct Texts {
            $(pub $key: &'static str,)*
        }
        pub static DE: Texts = Texts { $($key: $de,)* };
        pub static EN: Texts = Texts { $($key: $en,)* };
    };
}

texts! {
    action: "Aktion", "Action";
    active: "aktiv", "active";
    actor: "Person", "Actor";
    add_phone_note: "Telefonnotiz hinzufügen", "Add phone note";
    address: "Anschrift", "Address";
    agreements_in_force: "Geltende Vereinbarungen", "Agreements in force";
    all_roles: "Alle Rollen", "All roles";
    approve_disposal: "Löschung freigeben (Vier-Augen-Prinzip)", "Approve disposal (four eyes)";
    approved_by: "Freigegeben von", "Approved by";
    archived: "Archiviert", "Archived";
    archived_at: "Archiviert am", "Archived at";
    attachment_of: "Anhang von", "Attachment of";
    attachments: "Anhänge", "Attachments";
    audit: "Prüfung", "Audit";
    authority: "Veranlasst durch (Behörde, Gericht)", "Authority (court, agency)";
    back: "Zurück", "Back";
    bad_token: "Dieses Token ist ungültig, abgelaufen oder widerrufen.", "This token is invalid, expired or revoked.";
    by_class: "Nach Dokumentklasse", "By class";
    by_rules: "— automatisch (Regeln) —", "— automatic (rules) —";
    case: "Vorgang", "Case";
    case_closed: "Vorgang geschlossen.", "Case closed.";
    case_complaint: "Reklamation", "Complaint";
    case_contract: "Vertrag", "Contract";
    case_inquiry: "Anfrage", "Inquiry";
    case_opened: "Vorgang eröffnet.", "Case opened.";
    case_order: "Auftrag", "Order";
    certificate: "Löschprotokoll", "Disposal certificate";
    check: "Prüfung", "Check";
    check_gone: "bereits gelöscht", "already disposed";
    check_held: "gesperrt", "on hold";
    check_ok: "löschbar", "eligible";
    check_retained: "Frist läuft noch", "still retained";
    choose_records: "Datensätze auswählen", "Choose records";
    class: "Dokumentklasse", "Class";
    close_case: "Vorgang schließen", "Close case";
    communication: "Kommunikation", "Communication";
    variant_of: "gleiche Message-ID, andere Bytes als die", "same Message-ID, other bytes than the";
    direction_in: "eingehend", "incoming";
    direction_out: "ausgehend", "outgoing";
    first_copy: "erste Fassung", "first copy";
    content: "Inhalt", "Content";
    csrf_failed: "Das Formular ist abgelaufen oder stammt nicht von dieser Seite. Bitte laden Sie die Seite neu.", "The form has expired or did not come from this site. Please reload the page.";
    date: "Datum", "Date";
    date_from: "Datum von", "Date from";
    date_to: "bis", "to";
    disp_approved: "freigegeben, wird ausgeführt", "approved, executing";
    disp_executed: "ausgeführt", "executed";
    disp_requested: "beantragt", "requested";
    disposal: "Löschung", "Disposal";
    disposal_approved: "Löschung freigegeben.", "Disposal approved.";
    disposal_requested: "Löschung beantragt; eine zweite Person muss sie freigeben.", "Disposal requested; a second person must approve it.";
    disposals: "Löschungen", "Disposals";
    disposed: "gelöscht", "disposed";
    document_date: "Belegdatum", "Document date";
    domains: "Domänen", "Domains";
    download_original: "Original herunterladen", "Download original";
    drop_here: "Dateien hierher ziehen oder auswählen", "Drop files here or choose them";
    duplicates: "Duplikate", "Duplicates";
    duration: "Dauer", "Duration";
    eligible: "löschbar", "eligible";
    eligible_records: "Löschbare Datensätze", "Records eligible for disposal";
    email: "E-Mail", "Email";
    error: "Fehler", "Error";
    expiring_90: "laufen in 90 Tagen ab", "expire within 90 days";
    extracted_text: "Erkannter Text", "Extracted text";
    facet_class: "Dokumentklasse", "Class";
    facet_party: "Partner", "Party";
    facet_role: "Rolle", "Role";
    facet_state: "Aufbewahrungsstatus", "Retention state";
    facet_year: "Jahr", "Year";
    facets: "Filter", "Filters";
    failed: "Fehlgeschlagen", "Failed";
    failed_title: "Das hat nicht geklappt", "That did not work";
    file: "Datei", "File";
    file_documents: "Dokumente ablegen", "File documents";
    files: "Dateien", "Files";
    filing: "Ablage", "Filing";
    filter: "Filtern", "Filter";
    filters: "Filter", "Filters";
    four_eyes: "Ihr eigener Antrag: eine andere Person muss ihn freigeben.", "Your own request: another person must approve it.";
    from: "Von", "From";
    from_date: "ab", "from";
    from_seq: "Ab Nr.", "From no.";
    has_contact: "Ansprechpartner", "contact";
    history: "Versionen", "History";
    hits: "Treffer", "hits";
    hold_placed: "Sperre gesetzt.", "Hold placed.";
    hold_released: "Sperre aufgehoben.", "Hold released.";
    holds: "Aufbewahrungssperren", "Legal holds";
    import_archive: "Postfach oder Archiv importieren", "Import a mailbox or archive";
    import_intro: "Eine mbox-Datei oder ein ZIP mit E-Mails und Dokumenten; der Import läuft im Hintergrund.", "An mbox file or a zip of emails and documents; the import runs in the background.";
    in_file_of: "in der Akte von", "in the file of";
    items: "Einträge", "Items";
    job_done: "fertig", "done";
    job_error: "Fehler", "error";
    job_failed: "Befunde gefunden", "problems found";
    job_passed: "bestanden", "passed";
    job_running: "läuft", "running";
    job_unpacking: "wird entpackt", "unpacking";
    journal: "Journal", "Journal";
    journal_entries: "Journaleinträge", "Journal entries";
    journal_head: "Letzter Eintrag", "Last entry";
    kind: "Art", "Kind";
    last_verify: "Letzte Prüfung", "Last verification";
    legal_basis: "Rechtsgrundlage", "Legal basis";
    list_truncated: "Nur die ersten Einträge werden gezeigt; grenzen Sie die Suche ein.", "Only the first entries are shown; narrow the filter.";
    master_data: "Stammdaten", "Master data";
    media_type: "Dateityp", "Media type";
    merged_duplicates: "Zusammengeführte Dubletten", "Merged duplicates";
    merged_into: "Zusammengeführt in", "Merged into";
    metadata: "Metadaten", "Metadata";
    name: "Name", "Name";
    name_prefix: "Name beginnt mit", "Name starts with";
    navigation: "Hauptnavigation", "Main navigation";
    never: "noch nie", "never";
    next: "Weiter", "Next";
    no_preview: "Keine Vorschau für diesen Dateityp.", "No preview for this type.";
    none: "keine", "none";
    not_allowed: "Nicht erlaubt", "Not allowed";
    not_found: "Nicht gefunden", "Not found";
    note_saved: "Telefonnotiz gespeichert.", "Phone note saved.";
    note_text: "Notiz", "Note";
    nothing_found: "Nichts gefunden.", "Nothing found.";
    objects: "Objekte", "Objects";
    on_hold: "gesperrt", "on hold";
    open: "Öffnen", "Open";
    open_case: "Vorgang eröffnen", "Open a case";
    open_cases: "Offene Vorgänge", "Open cases";
    organisation: "Organisation", "Organisation";
    page: "Seite", "Page";
    pages: "Seiten", "Pages";
    parent_of: "Mutter von", "parent of";
    parties: "Partner", "Parties";
    party: "Partner", "Party";
    partyrole_contact: "Kontakt", "Contact";
    partyrole_customer: "Kunde", "Customer";
    partyrole_mentioned: "erwähnt", "mentioned";
    partyrole_partner: "Partner", "Partner";
    partyrole_prospect: "Interessent", "Prospect";
    partyrole_recipient: "Empfänger", "Recipient";
    partyrole_sender: "Absender", "Sender";
    partyrole_subject: "betroffen", "subject";
    partyrole_supplier: "Lieferant", "Supplier";
    period: "Frist", "Period";
    person: "Person", "Person";
    phone: "Telefon", "Phone";
    place: "Ort", "Place";
    place_hold: "Sperre setzen", "Place a hold";
    placed: "Gesetzt", "Placed";
    previous: "Zurück", "Previous";
    problems: "Befunde", "Problems";
    procedure: "Verfahrensdokumentation", "Procedure documentation";
    progress: "Fortschritt", "Progress";
    query: "Suchbegriff", "Query";
    reason: "Begründung", "Reason";
    rechecks: "Prüfungen vor der Löschung", "Checks before disposal";
    rechecks_intro: "Bei der Freigabe und bei der Ausführung wird jeder Datensatz erneut geprüft: Frist abgelaufen, keine Sperre.", "At approval and at execution every record is checked again: retention passed, no hold.";
    record: "Datensatz", "Record";
    records: "Datensätze", "records";
    register: "Handelsregister", "Register";
    related_parties: "Verbundene Partner", "Related parties";
    release: "Aufheben", "Release";
    released: "aufgehoben", "released";
    remote_images_blocked: "Externe Bilder wurden blockiert", "Remote images were blocked";
    remove_filter: "Filter entfernen", "Remove filter";
    request_disposal: "Löschung beantragen", "Request disposal";
    requested_by: "Beantragt von", "Requested by";
    restricted: "eingeschränkt", "restricted";
    retain_until: "Aufbewahren bis", "Retain until";
    retention: "Aufbewahrung", "Retention";
    role: "Rolle", "Role";
    role_admin: "Administration", "Administrator";
    role_archivist: "Archivar/in", "Archivist";
    role_auditor: "Prüfer/in", "Auditor";
    role_clerk: "Sachbearbeitung", "Clerk";
    roles: "Rollen", "Roles";
    save_note: "Notiz speichern", "Save note";
    scope: "Umfang", "Scope";
    scope_case: "Vorgang (ID)", "Case (id)";
    scope_class: "Dokumentklasse", "Class";
    scope_party: "Partner (ID)", "Party (id)";
    scope_records: "Datensätze (IDs, durch Komma getrennt)", "Records (ids, comma-separated)";
    scope_target: "Ziel", "Target";
    search: "Suche", "Search";
    search_in_file: "In dieser Akte suchen", "Search this file";
    search_placeholder: "Suchen: Wörter, \"Phrase\", von:…", "Search: words, \"phrase\", from:…";
    search_unavailable: "Die Suche ist nicht verfügbar.", "Search is not available.";
    session_expired: "Ihre Sitzung ist abgelaufen; bitte melden Sie sich erneut an.", "Your session has expired; please sign in again.";
    show_all: "Alle zeigen", "Show all";
    sign_in: "Anmelden", "Sign in";
    sign_in_intro: "Melden Sie sich mit Ihrem persönlichen Zugangstoken an.", "Sign in with your personal access token.";
    sign_out: "Abmelden", "Sign out";
    signed_out: "Sie sind abgemeldet.", "You are signed out.";
    since: "seit", "since";
    skip_to_content: "Zum Inhalt springen", "Skip to content";
    sort: "Sortierung", "Sort";
    sort_newest: "Neueste zuerst", "Newest first";
    sort_oldest: "Älteste zuerst", "Oldest first";
    sort_relevance: "Relevanz", "Relevance";
    start_import: "Import starten", "Start import";
    start_page: "Startseite", "Start page";
    start_verify: "Prüfung starten", "Start verification";
    started: "Gestartet", "Started";
    state: "Status", "State";
    state_awaiting: "wartet auf Ereignis", "awaiting event";
    state_disposed: "gelöscht", "disposed";
    state_eligible: "löschbar", "eligible";
    state_held: "gesperrt", "on hold";
    state_retained: "aufbewahrt", "retained";
    subject: "Betreff", "Subject";
    subjects: "Betrifft", "Subjects";
    subsidiary_of: "Tochter von", "subsidiary of";
    text_truncated: "Gekürzt; das vollständige Original steht zum Download bereit.", "Cut short; the complete original can be downloaded.";
    the_original: "dem Original", "the original";
    time: "Zeit", "Time";
    title: "Titel", "Title";
    to: "An", "To";
    token: "Zugangstoken", "Access token";
    transactions: "Geschäftsvorfälle nach Jahr", "Transactions by year";
    unnamed: "(ohne Namen)", "(no name)";
    until: "bis", "until";
    upload: "Hochladen", "Upload";
    upload_documents: "Dokumente hochladen", "Upload documents";
    uploaded_dup: "bereits archiviert", "already archived";
    valid_until: "Gültig bis", "Valid until";
    vat_id: "USt-IdNr.", "VAT ID";
    verify: "Integritätsprüfung", "Verification";
    verify_intro: "Prüft jedes Objekt gegen seinen SHA-256-Hash und rechnet die Hash-Kette des Journals nach.", "Re-hashes every object against its SHA-256 and recomputes the journal's hash chain.";
    other_documents: "Weitere Dokumente", "Other documents";
    legal_hold: "Aufbewahrungssperre", "Legal hold";
    works_for: "arbeitet für", "works for";
    years: "Jahre", "years";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_by_quality() {
        assert_eq!(Lang::negotiate(Some("en-US,en;q=0.9,de;q=0.8")), Lang::En);
        assert_eq!(Lang::negotiate(Some("fr, de-AT;q=0.5, en;q=0.4")), Lang::De);
        assert_eq!(Lang::negotiate(Some("fr")), Lang::De);
        assert_eq!(Lang::negotiate(None), Lang::De);
        assert_eq!(Lang::negotiate(Some("de;q=0, en;q=0.1")), Lang::En);
    }

    #[test]
    fn numbers_dates_and_amounts_follow_the_locale() {
        assert_eq!(Lang::De.num(1234567), "1.234.567");
        assert_eq!(Lang::En.num(1234567), "1,234,567");
        assert_eq!(Lang::En.num(999), "999");
        let d = NaiveDate::from_ymd_opt(2024, 3, 5).expect("date");
        assert_eq!(Lang::De.date(&d), "05.03.2024");
        assert_eq!(Lang::En.date(&d), "5 Mar 2024");
        assert_eq!(
            Lang::De.amount("1234.5", "EUR").as_deref(),
            Some("1.234,50 €")
        );
        assert_eq!(
            Lang::En.amount("1234.5", "EUR").as_deref(),
            Some("€1,234.50")
        );
        assert_eq!(Lang::De.bytes(1_500_000), "1,5 MB");
    }
}

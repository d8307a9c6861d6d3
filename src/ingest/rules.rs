//! Classification rules (TOML): evidence → class and parties. The shipped defaults are
//! `schemas/classification.toml`; a company edits a copy (`akte import --rules FILE`,
//! `AKTE_RULES=FILE`). Every assignment names the rule that made it.

use serde::Deserialize;

use crate::error::{Error, Result};

/// The shipped rules.
pub const SHIPPED: &str = include_str!("../../schemas/classification.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    rule: Vec<Rule>,
}

/// One rule: conditions (all must hold) and what it assigns.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    #[serde(default)]
    pub einvoice: Option<bool>,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub fields: Vec<String>,
    #[serde(default)]
    pub sender_domain: Option<String>,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub class: Option<String>,
    #[serde(default)]
    pub party: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
}

/// What is known about an item when it is classified.
#[derive(Debug, Clone, Default)]
pub struct Evidence<'a> {
    pub subject: Option<&'a str>,
    pub file_name: Option<&'a str>,
    pub body: &'a str,
    pub sender_domains: Vec<String>,
    pub media_type: &'a str,
    pub einvoice: bool,
}

/// What the rules assign, each with the rule's name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    pub class: Option<(String, String)>,
    /// (party, role, rule)
    pub parties: Vec<(String, String, String)>,
}

#[derive(Debug, Clone)]
pub struct Rules {
    rules: Vec<Rule>,
    /// Where they came from (shown in errors and `extra.class_rule`).
    pub source: String,
}

/// Keywords are matched in the first this many bytes of the body.
const BODY_PREFIX: usize = 16 * 1024;

impl Rules {
    pub fn shipped() -> Rules {
        // The shipped file is checked by a test; an error here cannot happen at run time.
        Rules::parse(SHIPPED, "shipped", &|_| true).unwrap_or(Rules {
            rules: vec![],
            source: "none".into(),
        })
    }

    /// Reads rules from `path`; every class must be one `class_known` accepts.
    pub fn load(path: &std::path::Path, class_known: &dyn Fn(&str) -> bool) -> Result<Rules> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path.display(), e))?;
        Rules::parse(&text, &path.display().to_string(), class_known)
    }

    pub fn parse(text: &str, source: &str, class_known: &dyn Fn(&str) -> bool) -> Result<Rules> {
        let bad =
            |reason: String| Error::invalid("classification rules", format!("{source}: {reason}"));
        let f: File = toml::from_str(text).map_err(|e| bad(e.to_string()))?;
        for r in &f.rule {
            if r.name.trim().is_empty() {
                return Err(bad("a rule without a name".into()));
            }
            if let Some(c) = &r.class
                && !class_known(c)
            {
                return Err(bad(format!(
                    "rule {:?}: class {c:?} is not in the retention catalogue",
                    r.name
                )));
            }
            for field in &r.fields {
                if !matches!(field.as_str(), "subject" | "filename" | "body") {
                    return Err(bad(format!(
                        "rule {:?}: unknown field {field:?} (subject, filename, body)",
                        r.name
                    )));
                }
            }
            if r.class.is_none() && r.party.is_none() {
                return Err(bad(format!(
                    "rule {:?} assigns neither class nor party",
                    r.name
                )));
            }
            if r.einvoice.is_none()
                && r.keywords.is_empty()
                && r.sender_domain.is_none()
                && r.media_type.is_none()
            {
                return Err(bad(format!("rule {:?} has no condition", r.name)));
            }
        }
        Ok(Rules {
            rules: f.rule,
            source: source.to_string(),
        })
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Applies the rules to `e`.
    pub fn apply(&self, e: &Evidence) -> Assignment {
        let mut a = Assignment::default();
        for r in &self.rules {
            if !matches(r, e) {
                continue;
            }
            if a.class.is_none()
                && let Some(c) = &r.class
            {
                a.class = Some((c.clone(), r.name.clone()));
            }
            if let Some(p) = &r.party {
                a.parties.push((
                    p.clone(),
                    r.role.clone().unwrap_or_else(|| "correspondent".into()),
                    r.name.clone(),
                ));
            }
        }
        a
    }
}

fn matches(r: &Rule, e: &Evidence) -> bool {
    if let Some(want) = r.einvoice
        && want != e.einvoice
    {
        return false;
    }
    if let Some(m) = &r.media_type
        && !e.media_type.eq_ignore_ascii_case(m)
    {
        return false;
    }
    if let Some(d) = &r.sender_domain {
        let d = d.trim_start_matches('@').to_ascii_lowercase();
        let hit = e
            .sender_domains
            .iter()
            .any(|s| *s == d || s.ends_with(&format!(".{d}")));
        if !hit {
            return false;
        }
    }
    if !r.keywords.is_empty() {
        let fields: Vec<&str> = if r.fields.is_empty() {
            vec!["subject", "filename"]
        } else {
            r.fields.iter().map(String::as_str).collect()
        };
        let mut hay = String::new();
        for f in fields {
            let part = match f {
                "subject" => e.subject.unwrap_or_default(),
                "filename" => e.file_name.unwrap_or_default(),
                _ => prefix(e.body, BODY_PREFIX),
            };
            hay.push_str(&part.to_lowercase());
            hay.push('\n');
        }
        if !r
            .keywords
            .iter()
            .any(|k| word_start(&hay, &k.to_lowercase()))
        {
            return false;
        }
    }
    true
}

fn prefix(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Whether `needle` occurs in `hay` at the start of a word.
fn word_start(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    hay.match_indices(needle).any(|(i, _)| {
        hay[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric())
    })
}

/// The domain of every address in `addrs` (`Name <a@b.c>` or `a@b.c`).
pub fn domains(addrs: &[String]) -> Vec<String> {
    addrs
        .iter()
        .filter_map(|a| {
            let a = a.rsplit('<').next().unwrap_or(a).trim_end_matches('>');
            a.rsplit_once('@')
                .map(|(_, d)| d.trim().to_ascii_lowercase())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rules_parse_against_the_shipped_catalogue() {
        let cat = crate::retention::catalogue::Catalogue::shipped();
        let r = Rules::parse(SHIPPED, "shipped", &|c| cat.classes.contains_key(c)).unwrap();
        assert!(r.len() >= 10);
    }

    #[test]
    fn first_class_wins_and_names_its_rule() {
        let r = Rules::shipped();
        let e = Evidence {
            subject: Some("Ihre Rechnungskorrektur 4711"),
            ..Default::default()
        };
        assert_eq!(
            r.apply(&e).class,
            Some(("credit-note".into(), "credit-note".into()))
        );
        let e = Evidence {
            file_name: Some("Rahmenvertrag_2024.pdf"),
            ..Default::default()
        };
        assert_eq!(r.apply(&e).class.unwrap().0, "framework-agreement");
        let e = Evidence {
            subject: Some("Mittagessen"),
            body: "Rechnung folgt",
            ..Default::default()
        };
        assert_eq!(r.apply(&e).class, None, "body is not searched by default");
        let e = Evidence {
            einvoice: true,
            ..Default::default()
        };
        assert_eq!(r.apply(&e).class.unwrap().1, "e-invoice");
        // A reminder about an invoice is a letter, not the invoice.
        let e = Evidence {
            subject: Some("Zahlungserinnerung Rechnung 4711"),
            ..Default::default()
        };
        assert_eq!(
            r.apply(&e).class,
            Some(("business-letter".into(), "payment-reminder".into()))
        );
    }

    #[test]
    fn sender_domain_links_a_party_and_bad_rules_are_refused() {
        let text = r#"
[[rule]]
name = "acme"
sender_domain = "acme.example"
party = "P1"
role = "supplier"
"#;
        let r = Rules::parse(text, "t", &|_| true).unwrap();
        let e = Evidence {
            sender_domains: domains(&["Anna <anna@mail.acme.example>".into()]),
            ..Default::default()
        };
        assert_eq!(
            r.apply(&e).parties,
            vec![("P1".into(), "supplier".into(), "acme".into())]
        );
        assert!(
            Rules::parse(
                "[[rule]]\nname='x'\nclass='nope'\nkeywords=['a']",
                "t",
                &|c| c == "invoice"
            )
            .is_err()
        );
        assert!(Rules::parse("[[rule]]\nname='x'\nclass='invoice'", "t", &|_| true).is_err());
        assert!(Rules::parse("[[rule]]\nname='x'\nbogus=1", "t", &|_| true).is_err());
    }
}

//! `akte token create`, `akte token list`, `akte token revoke`.

use std::process::ExitCode;

use chrono::NaiveDate;
use clap::Subcommand;

use super::parse_date;
use crate::archive::Archive;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once.
    Create {
        /// admin, archivist, clerk or auditor.
        #[arg(long)]
        role: String,
        #[arg(long)]
        name: Option<String>,
        /// Last day the token is valid (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date)]
        expires: Option<NaiveDate>,
        /// Restrict the token to this party's file, records and search (repeatable).
        #[arg(long = "party")]
        parties: Vec<String>,
        /// The person the token belongs to (default: the acting person, `--actor`).
        #[arg(long)]
        person: Option<String>,
        /// Limit it to records dated in these fiscal years, `2024` or `2023-2024` (a tax
        /// auditor's Z1 access): it reads and searches only them.
        #[arg(long, value_parser = parse_years)]
        years: Option<crate::access::FiscalYears>,
        /// Limit it to records of these retention classes (comma-separated or
        /// repeated, e.g. `--classes invoice,credit-note`): it reads and searches only them.
        #[arg(long, value_delimiter = ',')]
        classes: Vec<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token.
    Revoke { id: String },
}

pub(super) async fn token(
    archive: Archive,
    actor: &str,
    json: bool,
    cmd: TokenCommand,
) -> anyhow::Result<ExitCode> {
    let tokens = crate::access::Tokens::new(
        archive.store().clone(),
        archive.journal_arc(),
        archive.clock().clone(),
    );
    tokens.load().await?;
    match cmd {
        TokenCommand::Create {
            role,
            name,
            expires,
            parties,
            person,
            years,
            classes,
        } => {
            crate::access::check_classes(&classes, archive.catalogue())?;
            let role: crate::access::Role = role.parse()?;
            let name = name.unwrap_or_else(|| role.to_string());
            let expires_at = expires.and_then(crate::api::tokens::end_of_day);
            let person = person.unwrap_or_else(|| {
                crate::access::person_of(actor)
                    .trim_start_matches("cli:")
                    .to_string()
            });
            let (t, secret) = tokens
                .create(
                    actor,
                    crate::access::NewToken {
                        role,
                        name,
                        person,
                        expires_at,
                        secret: None,
                        parties,
                        years,
                        classes,
                    },
                )
                .await?;
            if json {
                outln!(
                    "{}",
                    serde_json::json!({"id": t.id, "name": t.name, "role": t.role, "expires_at": t.expires_at, "token": secret})
                );
            } else {
                outln!("{secret}");
                eprintln!(
                    "token {} ({}, role {}) created; it is shown only now",
                    t.id, t.name, t.role
                );
            }
        }
        TokenCommand::List => {
            for t in tokens.list().await {
                if json {
                    outln!(
                        "{}",
                        serde_json::json!({"id": t.id, "name": t.name, "role": t.role, "created_at": t.created_at, "created_by": t.created_by, "expires_at": t.expires_at, "revoked_at": t.revoked_at})
                    );
                } else {
                    let state = match (t.revoked_at, t.expires_at) {
                        (Some(r), _) => format!("revoked {}", r.format("%Y-%m-%d")),
                        (None, Some(e)) => {
                            format!("expires {}", e.format("%Y-%m-%d %H:%M"))
                        }
                        (None, None) => "active".into(),
                    };
                    outln!("{}  {:<10} {:<20} {}", t.id, t.role, t.name, state);
                }
            }
        }
        TokenCommand::Revoke { id } => {
            let t = tokens.revoke(actor, &id).await?;
            if json {
                outln!(
                    "{}",
                    serde_json::json!({"id": t.id, "revoked_at": t.revoked_at})
                );
            } else {
                outln!("revoked {} ({})", t.id, t.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `2024` or `2023-2024`.
fn parse_years(s: &str) -> Result<crate::access::FiscalYears, String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let year = |x: &str| {
        x.trim()
            .parse::<i32>()
            .map_err(|_| format!("{s:?}: a year (2024) or two (2023-2024)"))
    };
    Ok(crate::access::FiscalYears {
        from: year(a)?,
        to: year(b)?,
    })
}

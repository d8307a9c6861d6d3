//! `akte search` and `akte reindex`.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use chrono::NaiveDate;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::error::Error;
use crate::search::indexer::Indexer;
use crate::search::{SearchIndex, SearchRequest, Sort};
use crate::service::Services;

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Query: words, "phrases", prefix*, field:value, AND/OR/NOT, date:[A TO B].
    #[arg(required = true)]
    query: Vec<String>,
    /// Only this party's file (with parties merged into it).
    #[arg(long)]
    party: Option<String>,
    /// With --party: include related parties.
    #[arg(long)]
    related: bool,
    #[arg(long)]
    class: Option<String>,
    /// Only records where a party (the --party) has this role.
    #[arg(long)]
    role: Option<String>,
    #[arg(long)]
    case: Option<String>,
    /// Document date from (YYYY-MM-DD).
    #[arg(long, value_parser = super::parse_date)]
    from: Option<NaiveDate>,
    /// Document date to, inclusive.
    #[arg(long, value_parser = super::parse_date)]
    to: Option<NaiveDate>,
    /// relevance, date-desc or date-asc.
    #[arg(long, default_value = "relevance")]
    sort: String,
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Page, from 1.
    #[arg(long, default_value_t = 1)]
    page: usize,
    /// Also match words one edit away.
    #[arg(long)]
    fuzzy: bool,
}

/// Opens the index for writing, or read-only (with a notice) while a server holds it.
fn open(dir: &Path) -> anyhow::Result<(SearchIndex, bool)> {
    match SearchIndex::open(dir, false) {
        Ok(i) => Ok((i, true)),
        Err(e @ Error::IndexInUse { .. }) => {
            eprintln!("akte: {e}; searching its last commit");
            Ok((SearchIndex::open(dir, true)?, false))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn search(
    svc: Services,
    index_dir: &Path,
    json: bool,
    a: SearchArgs,
) -> anyhow::Result<ExitCode> {
    svc.load().await?;
    let (index, writable) = open(index_dir)?;
    let indexer = Indexer::new(Arc::new(index), svc.clone());
    if writable {
        indexer.catch_up().await?;
    }
    let parties = match &a.party {
        Some(p) => Some(
            svc.catalog
                .scope(p, a.related)
                .await
                .ok_or_else(|| anyhow::anyhow!("no party {p}"))?,
        ),
        None => None,
    };
    if a.page == 0 || a.limit == 0 || a.limit > 1000 {
        anyhow::bail!("--page counts from 1; --limit is 1 to 1000");
    }
    let r = SearchRequest {
        q: a.query.join(" "),
        parties,
        class: a.class,
        classes: None,
        role: a.role,
        case: a.case,
        from: a.from,
        to: a.to,
        sort: a.sort.parse::<Sort>()?,
        offset: (a.page - 1).saturating_mul(a.limit),
        limit: a.limit,
        fuzzy: a.fuzzy,
        facets: true,
    };
    let today = svc.archive.clock().now().date_naive();
    let res = indexer.index.search(&r, today)?;
    let mut hits = Vec::new();
    for h in &res.hits {
        let Some(b) = svc.catalog.record(&h.id).await else {
            continue;
        };
        let snippet = indexer
            .snippets(&r, h)
            .await
            .map(|(_, s)| s)
            .unwrap_or_default();
        hits.push((b, h.score, snippet));
    }
    if json {
        let out = serde_json::json!({
            "q": r.q,
            "total": res.total,
            "page": a.page,
            "per_page": a.limit,
            "hits": hits.iter().map(|(b, score, snippet)| serde_json::json!({
                "id": b.id, "title": b.title, "class": b.class, "date": b.date,
                "score": score, "parties": b.parties, "snippet": snippet,
            })).collect::<Vec<_>>(),
            "facets": res.facets,
        });
        super::json_line(&out)?;
    } else {
        let tty = std::io::stdout().is_terminal();
        outln!(
            "{} {}",
            res.total,
            if res.total == 1 { "hit" } else { "hits" }
        );
        for (b, _, snippet) in &hits {
            outln!("{}  {}  {:<16} {}", b.id, b.date, b.class, b.title);
            if !snippet.is_empty() {
                outln!("    {}", plain(snippet, tty));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Snippet HTML as terminal text: matches in bold on a terminal, unmarked otherwise.
fn plain(html: &str, tty: bool) -> String {
    let (on, off) = if tty {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("", "")
    };
    html.replace("<mark>", on)
        .replace("</mark>", off)
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
        .replace('\n', " ")
}

pub async fn reindex(svc: Services, index_dir: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    svc.load().await?;
    let index = SearchIndex::open(index_dir, false).map_err(|e| match e {
        e @ Error::IndexInUse { .. } => {
            anyhow::anyhow!("{e}: stop the server before `akte reindex`")
        }
        e => e.into(),
    })?;
    let indexer = Indexer::new(Arc::new(index), svc);
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::new(0);
        if let Ok(s) =
            ProgressStyle::with_template("reindex {bar:40} {pos}/{len} records {per_sec} eta {eta}")
        {
            b.set_style(s);
        }
        b
    });
    let progress = |done: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    };
    let n = indexer.rebuild(&progress).await?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    let size = indexer.index.size_on_disk();
    if json {
        outln!(
            "{}",
            serde_json::json!({"records": n, "seconds": secs, "index_bytes": size, "index": index_dir})
        );
    } else {
        outln!(
            "indexed {n} records in {secs:.1} s ({:.0}/s); index {} is {:.1} MB",
            n as f64 / secs.max(1e-9),
            index_dir.display(),
            size as f64 / 1e6
        );
    }
    Ok(ExitCode::SUCCESS)
}

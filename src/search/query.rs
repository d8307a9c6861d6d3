//! Queries: tantivy's grammar, rewritten — user field names fan out to both languages,
//! plain dates become RFC 3339, `word*` a bounded prefix over the analysed field, raw
//! regexes refused, `a AND NOT b` lifted — and the filters of a request around it.

use chrono::NaiveDate;
use tantivy::Term;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::query_grammar::{UserInputAst, UserInputBound, UserInputLeaf};
use tantivy::schema::{Field, IndexRecordOption};

use crate::error::{Error, Result};

use super::*;

impl SearchIndex {
    /// Parses the user's query text into a tantivy query.
    pub(super) fn parse(&self, q: &str, fuzzy: bool) -> Result<Box<dyn Query>> {
        let f = &self.f;
        if q.trim().is_empty() || q.trim() == "*" {
            return Ok(Box::new(AllQuery));
        }
        let defaults = self.default_fields();
        let mut p = QueryParser::new(
            self.index.schema(),
            defaults.clone(),
            self.query_tokenizers.clone(),
        );
        p.set_conjunction_by_default();
        p.allow_regexes();
        p.set_field_boost(f.title_de, 2.0);
        p.set_field_boost(f.title_en, 2.0);
        p.set_field_boost(f.names, 1.5);
        if fuzzy {
            for field in defaults {
                p.set_field_fuzzy(field, false, 1, true);
            }
        }
        let ast = tantivy::query_grammar::parse_query(q).map_err(|_| {
            Error::unprocessable(
                "q",
                "cannot parse the query (check quotes, brackets and field:value pairs)",
            )
        })?;
        let ast = self.rewrite(ast)?;
        p.build_query_from_user_input_ast(ast)
            .map_err(|e| Error::unprocessable("q", e.to_string()))
    }

    pub(super) fn default_fields(&self) -> Vec<Field> {
        let f = &self.f;
        vec![
            f.title_de, f.title_en, f.body_de, f.body_en, f.names, f.from, f.to, f.cc, f.extra,
        ]
    }

    /// `word*` on each field as a regex over the indexed terms: the word analysed by that
    /// field's query analyzer (so `Lieferung*` looks for terms starting with the stem
    /// `liefer`), then anything. (tantivy's own prefix queries need two words or more.)
    pub(super) fn prefix_leaf(&self, fields: &[Field], word: &str) -> Option<UserInputAst> {
        let schema = self.index.schema();
        let mut leaves = Vec::new();
        for &field in fields {
            let tokenizer = match schema.get_field_entry(field).field_type() {
                tantivy::schema::FieldType::Str(o) => {
                    o.get_indexing_options().map(|i| i.tokenizer().to_string())
                }
                _ => None,
            };
            let Some(mut analyzer) = tokenizer.and_then(|t| self.query_tokenizers.get(&t)) else {
                continue;
            };
            let mut tokens = Vec::new();
            let mut ts = analyzer.token_stream(word);
            while ts.advance() {
                tokens.push(ts.token().text.clone());
            }
            let [token] = tokens.as_slice() else { continue };
            let mut pattern = String::new();
            for c in token.chars() {
                if !c.is_alphanumeric() {
                    pattern.push('\\');
                }
                pattern.push(c);
            }
            pattern.push_str(".*");
            leaves.push((
                Some(tantivy::query_grammar::Occur::Should),
                UserInputAst::Leaf(Box::new(UserInputLeaf::Regex {
                    field: Some(schema.get_field_name(field).to_string()),
                    pattern,
                })),
            ));
        }
        (!leaves.is_empty()).then_some(UserInputAst::Clause(leaves))
    }

    /// Maps user field names onto schema fields and plain dates onto RFC 3339.
    pub(super) fn rewrite(&self, ast: UserInputAst) -> Result<UserInputAst> {
        let schema = self.index.schema();
        let map = user_fields(&self.f);
        let lookup = |name: &str| -> Result<Vec<String>> {
            map.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, fs)| {
                    fs.iter()
                        .map(|f| schema.get_field_name(*f).to_string())
                        .collect()
                })
                .ok_or_else(|| {
                    Error::unprocessable(
                        "q",
                        format!(
                            "unknown field {name:?}; fields are {}",
                            map.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                        ),
                    )
                })
        };
        let fan_out = |names: Vec<String>, mk: &dyn Fn(String) -> UserInputLeaf| {
            if names.len() == 1 {
                UserInputAst::Leaf(Box::new(mk(names[0].clone())))
            } else {
                UserInputAst::Clause(
                    names
                        .into_iter()
                        .map(|n| {
                            (
                                Some(tantivy::query_grammar::Occur::Should),
                                UserInputAst::Leaf(Box::new(mk(n))),
                            )
                        })
                        .collect(),
                )
            }
        };
        Ok(match ast {
            UserInputAst::Clause(cs) => {
                use tantivy::query_grammar::Occur as O;
                let mut out = Vec::new();
                for (o, a) in cs {
                    match (o, self.rewrite(a)?) {
                        // `a AND NOT b` parses as `+a +(-b)`, and a clause of nothing but
                        // exclusions matches nothing: lift the exclusions one level up.
                        (o, UserInputAst::Clause(inner))
                            if o != Some(O::MustNot)
                                && !inner.is_empty()
                                && inner.iter().all(|(io, _)| *io == Some(O::MustNot)) =>
                        {
                            out.extend(inner)
                        }
                        (o, a) => out.push((o, a)),
                    }
                }
                UserInputAst::Clause(out)
            }
            UserInputAst::Boost(a, b) => UserInputAst::Boost(Box::new(self.rewrite(*a)?), b),
            UserInputAst::Leaf(leaf) => match *leaf {
                UserInputLeaf::Literal(lit)
                    if (lit.prefix || lit.phrase.ends_with('*'))
                        && lit.delimiter == tantivy::query_grammar::Delimiter::None
                        && !lit.phrase.contains(char::is_whitespace)
                        && lit.phrase.trim_end_matches('*').chars().count() >= 2 =>
                {
                    let word = lit.phrase.trim_end_matches('*');
                    let fields = match &lit.field_name {
                        None => self.default_fields(),
                        Some(name) => lookup(name)?
                            .iter()
                            .filter_map(|n| schema.get_field(n).ok())
                            .collect(),
                    };
                    self.prefix_leaf(&fields, word).ok_or_else(|| {
                        Error::unprocessable(
                            "q",
                            format!("{word}* is not a word that can be searched"),
                        )
                    })?
                }
                UserInputLeaf::Literal(lit) => match lit.field_name.clone() {
                    None => UserInputAst::Leaf(Box::new(UserInputLeaf::Literal(lit))),
                    Some(name) => {
                        let names = lookup(&name)?;
                        fan_out(names, &|n| {
                            let mut l = lit.clone();
                            l.field_name = Some(n);
                            UserInputLeaf::Literal(l)
                        })
                    }
                },
                UserInputLeaf::Range {
                    field,
                    lower,
                    upper,
                } => {
                    let Some(name) = field else {
                        return Err(Error::unprocessable(
                            "q",
                            "a range needs a field, e.g. date:[2024-01-01 TO 2024-12-31]",
                        ));
                    };
                    let names = lookup(&name)?;
                    let date_field = matches!(name.as_str(), "date" | "archived");
                    let fix = |b: UserInputBound| -> UserInputBound {
                        if !date_field {
                            return b;
                        }
                        let iso = |s: String| {
                            if s.len() == 10 && NaiveDate::parse_from_str(&s, "%Y-%m-%d").is_ok() {
                                format!("{s}T00:00:00Z")
                            } else {
                                s
                            }
                        };
                        match b {
                            UserInputBound::Inclusive(s) => UserInputBound::Inclusive(iso(s)),
                            UserInputBound::Exclusive(s) => UserInputBound::Exclusive(iso(s)),
                            UserInputBound::Unbounded => UserInputBound::Unbounded,
                        }
                    };
                    let (lower, upper) = (fix(lower), fix(upper));
                    fan_out(names, &|n| UserInputLeaf::Range {
                        field: Some(n),
                        lower: lower.clone(),
                        upper: upper.clone(),
                    })
                }
                // A regular expression runs over whole term dictionaries: not something a
                // caller may hand in (`word*` covers prefixes).
                UserInputLeaf::Regex { .. } => {
                    return Err(Error::unprocessable(
                        "q",
                        "regular expressions are not supported; use word* for a prefix",
                    ));
                }
                // `field:*` asks for documents that have the field at all: text fields
                // keep no such list, so it is refused rather than failing in the index.
                UserInputLeaf::Exists { .. } => {
                    return Err(Error::unprocessable(
                        "q",
                        "field:* (any value) is not supported; search for a word, or word* for a prefix",
                    ));
                }
                UserInputLeaf::Set { field, elements } => match field {
                    None => UserInputAst::Leaf(Box::new(UserInputLeaf::Set { field, elements })),
                    Some(name) => fan_out(lookup(&name)?, &|n| UserInputLeaf::Set {
                        field: Some(n),
                        elements: elements.clone(),
                    }),
                },
                other => UserInputAst::Leaf(Box::new(other)),
            },
        })
    }

    /// The query plus the request's filters.
    pub(super) fn build(&self, r: &SearchRequest) -> Result<Box<dyn Query>> {
        let f = &self.f;
        let mut must: Vec<(Occur, Box<dyn Query>)> =
            vec![(Occur::Must, self.parse(&r.q, r.fuzzy)?)];
        let term = |field: Field, v: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                Term::from_field_text(field, v),
                IndexRecordOption::Basic,
            ))
        };
        if let Some(ps) = &r.parties {
            let any: Vec<(Occur, Box<dyn Query>)> = ps
                .iter()
                .map(|p| (Occur::Should, term(f.party, p)))
                .collect();
            // An empty list matches nothing: a party with no records, or a caller with
            // no party it may see.
            must.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        if let Some(c) = &r.class {
            must.push((Occur::Must, term(f.class, c)));
        }
        if let Some(cs) = &r.classes {
            let any: Vec<(Occur, Box<dyn Query>)> = cs
                .iter()
                .map(|c| (Occur::Should, term(f.class, c)))
                .collect();
            must.push((Occur::Must, Box::new(BooleanQuery::new(any))));
        }
        if let Some(role) = &r.role {
            match &r.parties {
                Some(ps) => {
                    let any: Vec<(Occur, Box<dyn Query>)> = ps
                        .iter()
                        .map(|p| (Occur::Should, term(f.party_role, &format!("{p}:{role}"))))
                        .collect();
                    must.push((Occur::Must, Box::new(BooleanQuery::new(any))));
                }
                None => must.push((Occur::Must, term(f.role, role))),
            }
        }
        if let Some(c) = &r.case {
            must.push((Occur::Must, term(f.case, c)));
        }
        if r.from.is_some() || r.to.is_some() {
            use std::ops::Bound;
            let lo = r.from.map_or(Bound::Unbounded, |d| {
                Bound::Included(Term::from_field_date(f.date, day(d)))
            });
            let hi = r.to.map_or(Bound::Unbounded, |d| {
                Bound::Included(Term::from_field_date(f.date, day(d)))
            });
            must.push((Occur::Must, Box::new(RangeQuery::new(lo, hi))));
        }
        Ok(if must.len() == 1 {
            must.remove(0).1
        } else {
            Box::new(BooleanQuery::new(must))
        })
    }
}

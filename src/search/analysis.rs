//! Text analysis for German and English (DESIGN §7).
//!
//! Every text goes through: split on non-alphanumerics → drop tokens over 40 bytes →
//! lower-case → stop words of the record's language → ASCII folding (`ä`→`a`, `ß`→`ss`,
//! `é`→`e`) → digraph folding (`ae`/`oe`/`ue` → `a`/`o`/`u`, so *Mueller*, *Muller* and
//! *Müller* meet) → [German only, at index time] compound splitting against a shipped
//! dictionary (*Rahmenvertrag* also yields *rahmen* and *vertrag* at the same position) →
//! Snowball stemming of the language.
//!
//! Queries use the same chain without compound splitting: a query for *Vertrag* matches
//! the part a compound left in the index, and a query for *Rahmenvertrag* stays one term.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use rustc_hash::FxHashMap;
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RawTokenizer, RemoveLongFilter, SimpleTokenizer,
    Stemmer, StopWordFilter, TextAnalyzer, Token, TokenFilter, TokenStream, Tokenizer,
    TokenizerManager,
};

/// German body and title text (with compound splitting when indexing).
pub const DE: &str = "akte_de";
/// English body and title text.
pub const EN: &str = "akte_en";
/// Names, addresses, identifiers: folded and lower-cased, not stemmed.
pub const NAME: &str = "akte_name";

const COMPOUNDS: &str = include_str!("compounds-de.txt");

/// The dictionary of German word parts, folded like indexed tokens.
fn dictionary() -> Arc<HashSet<String>> {
    static DICT: OnceLock<Arc<HashSet<String>>> = OnceLock::new();
    DICT.get_or_init(|| {
        Arc::new(
            COMPOUNDS
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(fold_word)
                .collect(),
        )
    })
    .clone()
}

/// Folds one word the way the analyzers do (lower-case, ASCII, digraphs).
pub fn fold_word(w: &str) -> String {
    let mut a = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(DigraphFold)
        .build();
    let mut out = String::new();
    let mut s = a.token_stream(w);
    while s.advance() {
        out.push_str(&s.token().text);
    }
    out
}

fn chain(lang: Language, split: bool) -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(Memo::new(word_chain(lang, split)))
        .build()
}

/// Everything after splitting, applied to one word at a time: lower-case, stop words,
/// folding, [compound parts], stemming. Each filter looks at one token alone, so running
/// it on a whole word gives what it gives inside a text.
fn word_chain(lang: Language, split: bool) -> TextAnalyzer {
    let b = TextAnalyzer::builder(RawTokenizer::default())
        .filter(LowerCaser)
        .filter(stop_words())
        .filter(AsciiFoldingFilter)
        .filter(DigraphFold);
    if split {
        b.filter(Decompound { dict: dictionary() })
            .filter(Stemmer::new(lang))
            .build()
    } else {
        b.filter(Stemmer::new(lang)).build()
    }
}

/// German and English stop words together, in every chain: a query word that is a stop
/// word in one language must not become a required term in the other language's fields.
fn stop_words() -> StopWordFilter {
    static WORDS: OnceLock<Vec<String>> = OnceLock::new();
    let words = WORDS.get_or_init(|| {
        let mut w: Vec<String> = STOP_DE
            .split_whitespace()
            .chain(STOP_EN.split_whitespace())
            .map(str::to_string)
            .collect();
        w.sort();
        w.dedup();
        w
    });
    StopWordFilter::remove(words.iter().cloned())
}

const STOP_DE: &str = "aber alle allem allen aller alles als also am an ander andere anderem anderen \
    anderer anderes auch auf aus bei bin bis bist da damit dann das dass dasselbe dazu dein deine dem \
    den denn der des dessen dich die dies diese dieselbe dieser dieses dir doch dort du durch ein eine \
    einem einen einer eines er es euch euer eure für hab habe haben hat hatte hatten hier hin hinter \
    ich ihm ihn ihnen ihr ihre im in indem ins ist jede jedem jeden jeder jedes jene jetzt kann kein \
    keine man manche mein meine mich mir mit muss nach nicht nichts noch nun nur ob oder ohne sehr \
    sein seine sich sie sind so solche soll sondern sonst über um und uns unser unter viel vom von \
    vor war waren warst was weg weil weiter welche wenn werde werden wie wieder will wir wird wo \
    wollen zu zum zur zwar zwischen";

const STOP_EN: &str = "a an and are as at be but by for if in into is it no not of on or such \
    that the their then there these they this to was will with";

fn name_chain() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(60))
        .filter(LowerCaser)
        .filter(stop_words())
        .filter(AsciiFoldingFilter)
        .filter(DigraphFold)
        .build()
}

/// Registers the index-time analyzers.
pub fn register(m: &TokenizerManager) {
    m.register(DE, chain(Language::German, true));
    m.register(EN, chain(Language::English, false));
    m.register(NAME, name_chain());
}

/// The query-time analyzers (no compound splitting).
pub fn query_manager() -> TokenizerManager {
    let m = TokenizerManager::default();
    m.register(DE, chain(Language::German, false));
    m.register(EN, chain(Language::English, false));
    m.register(NAME, name_chain());
    m
}

/// How many words one analyzer remembers. Word frequencies follow Zipf's law, so a few
/// thousand words are most of any text; the map is emptied when full.
const MEMO_WORDS: usize = 16 * 1024;

/// Runs a word chain once per distinct word and remembers what it gave: stemming,
/// folding and compound splitting are most of the cost of indexing, and most words of
/// a text are words seen a moment ago. Each analyzer (one per field and indexing thread)
/// has its own map, so nothing is shared or locked.
#[derive(Clone)]
pub struct Memo {
    words: TextAnalyzer,
}

impl Memo {
    fn new(words: TextAnalyzer) -> Memo {
        Memo { words }
    }
}

impl TokenFilter for Memo {
    type Tokenizer<T: Tokenizer> = MemoWrapper<T>;
    fn transform<T: Tokenizer>(self, tokenizer: T) -> MemoWrapper<T> {
        MemoWrapper {
            inner: tokenizer,
            words: self.words,
            seen: FxHashMap::default(),
        }
    }
}

#[derive(Clone)]
pub struct MemoWrapper<T> {
    inner: T,
    words: TextAnalyzer,
    /// A word as split from the text → the terms the word chain makes of it.
    seen: FxHashMap<String, Box<[String]>>,
}

impl<T: Tokenizer> Tokenizer for MemoWrapper<T> {
    type TokenStream<'a> = MemoStream<'a, T::TokenStream<'a>>;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        MemoStream {
            tail: self.inner.token_stream(text),
            words: &mut self.words,
            seen: &mut self.seen,
            current: Token::default(),
            pending: Vec::new(),
        }
    }
}

pub struct MemoStream<'a, T> {
    tail: T,
    words: &'a mut TextAnalyzer,
    seen: &'a mut FxHashMap<String, Box<[String]>>,
    current: Token,
    /// Further terms of the current word (compound parts), last first.
    pending: Vec<String>,
}

impl<T: TokenStream> TokenStream for MemoStream<'_, T> {
    fn advance(&mut self) -> bool {
        if let Some(next) = self.pending.pop() {
            self.current.text = next;
            return true;
        }
        while self.tail.advance() {
            let t = self.tail.token();
            let terms = match self.seen.get(t.text.as_str()) {
                Some(terms) => terms,
                None => {
                    let mut terms = Vec::new();
                    let mut s = self.words.token_stream(&t.text);
                    while s.advance() {
                        terms.push(s.token().text.clone());
                    }
                    if self.seen.len() >= MEMO_WORDS {
                        self.seen.clear();
                    }
                    self.seen
                        .entry(t.text.clone())
                        .or_insert(terms.into_boxed_slice())
                }
            };
            let Some((first, rest)) = terms.split_first() else {
                continue; // a stop word
            };
            self.current.offset_from = t.offset_from;
            self.current.offset_to = t.offset_to;
            self.current.position = t.position;
            self.current.position_length = t.position_length;
            self.current.text.clear();
            self.current.text.push_str(first);
            self.pending.clear();
            self.pending.extend(rest.iter().rev().cloned());
            return true;
        }
        false
    }
    fn token(&self) -> &Token {
        &self.current
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.current
    }
}

/// `ae`, `oe`, `ue` → `a`, `o`, `u` (not after `e` or `q`: *neue*, *queue* keep theirs).
#[derive(Clone)]
pub struct DigraphFold;

impl TokenFilter for DigraphFold {
    type Tokenizer<T: Tokenizer> = DigraphFoldWrapper<T>;
    fn transform<T: Tokenizer>(self, tokenizer: T) -> DigraphFoldWrapper<T> {
        DigraphFoldWrapper(tokenizer)
    }
}

#[derive(Clone)]
pub struct DigraphFoldWrapper<T>(T);

impl<T: Tokenizer> Tokenizer for DigraphFoldWrapper<T> {
    type TokenStream<'a> = DigraphFoldStream<T::TokenStream<'a>>;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        DigraphFoldStream(self.0.token_stream(text))
    }
}

pub struct DigraphFoldStream<T>(T);

fn fold_digraphs(s: &mut String) {
    let b = s.as_bytes();
    let needs = b
        .windows(2)
        .any(|w| matches!(w, [b'a' | b'o' | b'u', b'e']));
    if !needs {
        return;
    }
    let mut out = String::with_capacity(s.len());
    let mut prev: Option<char> = None;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if matches!(c, 'a' | 'o' | 'u')
            && chars.peek() == Some(&'e')
            && !matches!(prev, Some('e') | Some('q'))
        {
            chars.next();
        }
        prev = Some(c);
    }
    *s = out;
}

impl<T: TokenStream> TokenStream for DigraphFoldStream<T> {
    fn advance(&mut self) -> bool {
        if !self.0.advance() {
            return false;
        }
        fold_digraphs(&mut self.0.token_mut().text);
        true
    }
    fn token(&self) -> &Token {
        self.0.token()
    }
    fn token_mut(&mut self) -> &mut Token {
        self.0.token_mut()
    }
}

/// Keeps each token and adds the dictionary parts of a German compound after it, at the
/// same position and with the same offsets (so highlighting marks the whole word).
#[derive(Clone)]
pub struct Decompound {
    dict: Arc<HashSet<String>>,
}

impl TokenFilter for Decompound {
    type Tokenizer<T: Tokenizer> = DecompoundWrapper<T>;
    fn transform<T: Tokenizer>(self, tokenizer: T) -> DecompoundWrapper<T> {
        DecompoundWrapper {
            inner: tokenizer,
            dict: self.dict,
        }
    }
}

#[derive(Clone)]
pub struct DecompoundWrapper<T> {
    inner: T,
    dict: Arc<HashSet<String>>,
}

impl<T: Tokenizer> Tokenizer for DecompoundWrapper<T> {
    type TokenStream<'a> = DecompoundStream<'a, T::TokenStream<'a>>;
    fn token_stream<'a>(&'a mut self, text: &'a str) -> Self::TokenStream<'a> {
        DecompoundStream {
            tail: self.inner.token_stream(text),
            dict: &self.dict,
            pending: Vec::new(),
            current: None,
        }
    }
}

pub struct DecompoundStream<'a, T> {
    tail: T,
    dict: &'a HashSet<String>,
    /// Parts still to emit, last first.
    pending: Vec<Token>,
    current: Option<Token>,
}

/// Splits `word` into dictionary parts, right-headed as German compounds are: the longest
/// dictionary suffix, then the rest (minus a linking `s`/`es`/`n`), recursively. Empty
/// when no split leaves only known parts or long enough remainders.
pub fn split_compound(dict: &HashSet<String>, word: &str, depth: u8) -> Vec<String> {
    const MIN_PART: usize = 3;
    if depth == 0 || word.len() < 2 * MIN_PART + 1 || !word.is_ascii() {
        return Vec::new();
    }
    for cut in MIN_PART..=word.len() - MIN_PART - 1 {
        let (head, tail) = word.split_at(cut);
        if tail.len() < 4 || !dict.contains(tail) {
            continue;
        }
        let mut heads = vec![head];
        for link in ["s", "es", "n", "en"] {
            if let Some(h) = head.strip_suffix(link)
                && h.len() >= MIN_PART
            {
                heads.push(h);
            }
        }
        for h in heads {
            if dict.contains(h) {
                return vec![h.to_string(), tail.to_string()];
            }
            let inner = split_compound(dict, h, depth - 1);
            if !inner.is_empty() {
                let mut v = inner;
                v.push(tail.to_string());
                return v;
            }
        }
        // An unknown modifier still leaves the known head: *Kaufvertrag* → *vertrag*.
        if head.len() >= 4 {
            return vec![tail.to_string()];
        }
    }
    Vec::new()
}

impl<T: TokenStream> TokenStream for DecompoundStream<'_, T> {
    fn advance(&mut self) -> bool {
        if let Some(next) = self.pending.pop() {
            self.current = Some(next);
            return true;
        }
        self.current = None;
        if !self.tail.advance() {
            return false;
        }
        let t = self.tail.token();
        let parts = split_compound(self.dict, &t.text, 3);
        for p in parts.into_iter().rev() {
            if p != t.text {
                self.pending.push(Token {
                    text: p,
                    ..t.clone()
                });
            }
        }
        true
    }
    fn token(&self) -> &Token {
        self.current.as_ref().unwrap_or_else(|| self.tail.token())
    }
    fn token_mut(&mut self) -> &mut Token {
        match self.current.as_mut() {
            Some(t) => t,
            None => self.tail.token_mut(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(a: &mut TextAnalyzer, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut s = a.token_stream(text);
        while s.advance() {
            out.push(s.token().text.clone());
        }
        out
    }

    #[test]
    fn umlauts_and_digraphs_meet() {
        let mut de = chain(Language::German, false);
        let a = tokens(&mut de, "Müller Mueller Muller");
        assert_eq!(a[0], a[1]);
        assert_eq!(a[1], a[2]);
        let b = tokens(&mut de, "Straße Strasse");
        assert_eq!(b[0], b[1]);
    }

    #[test]
    fn german_stems_and_compounds() {
        let mut de = chain(Language::German, true);
        let v = tokens(&mut de, "Verträge");
        let w = tokens(&mut de, "Vertrag");
        assert_eq!(v, w);
        let c = tokens(&mut de, "Rahmenvertrag");
        assert!(c.contains(&w[0]), "{c:?} should contain {w:?}");
        assert!(c.len() >= 2);
        // Stop words go.
        assert!(tokens(&mut de, "und der die das").is_empty());
    }

    #[test]
    fn english_stems() {
        let mut en = chain(Language::English, false);
        assert_eq!(tokens(&mut en, "invoices"), tokens(&mut en, "invoice"));
        assert_eq!(tokens(&mut en, "contracts"), tokens(&mut en, "contract"));
        assert!(tokens(&mut en, "the and of").is_empty());
    }

    #[test]
    fn compound_splitting_needs_known_parts() {
        let d = dictionary();
        assert_eq!(
            split_compound(&d, "rahmenvertrag", 3),
            ["rahmen", "vertrag"]
        );
        assert_eq!(
            split_compound(&d, &fold_word("Lieferantenrechnungsnummer"), 3),
            ["lieferant", "rechnung", "nummer"]
        );
        assert!(split_compound(&d, "xyzq", 3).is_empty());
    }
}

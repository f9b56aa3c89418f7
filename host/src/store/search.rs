//! Full-text search: what a `q` means, the same on both databases.
//!
//! A query is terms, all required: a word, or a `"quoted phrase"` whose words must follow each other.
//! Matching ignores case and diacritics and splits text at everything that is not a letter or a
//! digit — SQLite's FTS5 `unicode61` tokenizer with `remove_diacritics 2`, which indexes the text on
//! SQLite. PostgreSQL's own text-search parser splits differently (an e-mail address or a hyphenated
//! word is one token there, and its dictionaries stem), so on PostgreSQL wasmail tokenizes in Rust
//! the way `unicode61` does ([`tokens`]) and stores and queries the tokens as they are (`tsvector`
//! and `tsquery` input, no parser, no stemming): a query finds the same messages on both.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// What a message's `tsvector` may take on PostgreSQL (estimated as PostgreSQL stores it: each
/// distinct word once with a small header, two bytes per recorded position): the type's limit is
/// 1 MiB. A text whose distinct words exceed it is indexed up to there; SQLite indexes it all.
const PG_TSVECTOR_BUDGET: usize = 900 * 1024;
/// The longest word a `tsvector` or `tsquery` takes, in bytes: longer ones are not indexed on
/// PostgreSQL, and a query naming one finds nothing there.
pub(super) const PG_LONGEST_WORD: usize = 2047;
/// Positions PostgreSQL records per word, and the last position it records (later ones share it).
const PG_POSITIONS_PER_WORD: usize = 256;
const PG_LAST_POSITION: usize = 16_383;

/// One required term of a query: its tokens, in order (one for a plain word).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Term(Vec<String>);

/// Splits a user query into terms: quoted phrases and words. An unclosed quote runs to the end; a
/// term without letters or digits matches everything and is dropped.
pub(super) fn terms(q: &str) -> Vec<Term> {
    let mut out = Vec::new();
    for (i, part) in q.split('"').enumerate() {
        if i % 2 == 1 {
            // Inside quotes: one phrase.
            let phrase = tokens(part);
            if !phrase.is_empty() {
                out.push(Term(phrase));
            }
        } else {
            // Outside: every word is a term, and a word that splits ("e-mail") is a phrase.
            for word in part.split_whitespace() {
                let phrase = tokens(word);
                if !phrase.is_empty() {
                    out.push(Term(phrase));
                }
            }
        }
    }
    out
}

/// The FTS5 query for `terms`: each a quoted phrase (no operator or column syntax can get in).
pub(super) fn fts5_query(terms: &[Term]) -> Option<String> {
    (!terms.is_empty()).then(|| {
        terms
            .iter()
            .map(|Term(words)| format!("\"{}\"", words.join(" ")))
            .collect::<Vec<_>>()
            .join(" ")
    })
}

/// Whether `terms` name a word too long for PostgreSQL to have indexed (the query finds nothing).
pub(super) fn pg_unmatchable(terms: &[Term]) -> bool {
    terms
        .iter()
        .any(|Term(words)| words.iter().any(|w| w.len() > PG_LONGEST_WORD))
}

/// The `tsquery` text for `terms`: lexemes quoted, phrases joined with `<->`, terms with `&`.
pub(super) fn pg_tsquery(terms: &[Term]) -> Option<String> {
    (!terms.is_empty()).then(|| {
        terms
            .iter()
            .map(|Term(words)| {
                let phrase = words
                    .iter()
                    .map(|w: &String| quote(w))
                    .collect::<Vec<_>>()
                    .join(" <-> ");
                format!("({phrase})")
            })
            .collect::<Vec<_>>()
            .join(" & ")
    })
}

/// The `tsvector` PostgreSQL indexes for a message, as `tsvector` input text: each distinct token
/// with its positions, given as it is — `to_tsvector` would run PostgreSQL's own parser over them,
/// which splits by the database's locale (conjoining jamo, say, are not letters in every locale).
/// Within [`PG_TSVECTOR_BUDGET`]; like PostgreSQL, it keeps 256 positions per word and positions
/// past 16,383 share the last one (a phrase that far into a text is not found; its words are).
pub(super) fn pg_document(subject: &str, body: &str) -> String {
    let mut words: Vec<(String, Vec<usize>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut size = 0;
    for (i, token) in tokens(subject).into_iter().chain(tokens(body)).enumerate() {
        if token.len() > PG_LONGEST_WORD {
            continue;
        }
        let position = (i + 1).min(PG_LAST_POSITION);
        match index.get(&token) {
            Some(&at) => {
                let positions = &mut words[at].1;
                if positions.len() < PG_POSITIONS_PER_WORD && positions.last() != Some(&position) {
                    positions.push(position);
                    size += 2;
                }
            }
            None => {
                size += token.len() + 8;
                if size > PG_TSVECTOR_BUDGET {
                    break;
                }
                index.insert(token.clone(), words.len());
                words.push((token, vec![position]));
            }
        }
    }
    let mut out = String::with_capacity(size * 2);
    for (word, positions) in &words {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&quote(word));
        out.push(':');
        let list: Vec<String> = positions.iter().map(usize::to_string).collect();
        out.push_str(&list.join(","));
    }
    out
}

/// A lexeme as `tsvector`/`tsquery` input: quoted, so it is taken as it is.
fn quote(lexeme: &str) -> String {
    format!("'{}'", lexeme.replace('\\', "\\\\").replace('\'', "''"))
}

/// `text` split and folded as FTS5's `unicode61` with `remove_diacritics 2` does: runs of letters,
/// digits and private-use characters, lower-cased, with combining marks removed.
pub(super) fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut push = |current: &mut String| {
        if !current.is_empty() {
            // Composed again: what decomposes without marks (Hangul syllables into jamo) is
            // indexed as written.
            out.push(current.nfc().collect::<String>());
            current.clear();
        }
    };
    for c in text.chars() {
        if is_token_char(c) {
            // Decomposed, the diacritics are combining marks: dropped.
            for d in c.to_lowercase().flat_map(|l| l.nfd()) {
                if d.general_category_group() != GeneralCategoryGroup::Mark {
                    current.push(d);
                }
            }
        } else {
            push(&mut current);
        }
    }
    push(&mut current);
    out
}

fn is_token_char(c: char) -> bool {
    use unicode_properties::GeneralCategory::PrivateUse;
    match c.general_category_group() {
        GeneralCategoryGroup::Letter | GeneralCategoryGroup::Number => true,
        _ => c.general_category() == PrivateUse,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_fold_case_and_diacritics_and_split_at_punctuation() {
        assert_eq!(
            tokens("Grüße, CAFÉ user@Example.com re-sent"),
            ["gruße", "cafe", "user", "example", "com", "re", "sent"]
        );
        assert_eq!(tokens("Привет, мир"), ["привет", "мир"]);
        assert_eq!(
            tokens("한국어 테스트"),
            ["한국어", "테스트"],
            "Hangul stays composed"
        );
        assert_eq!(tokens("--- !!!"), Vec::<String>::new());
    }

    #[test]
    fn quotes_make_phrases_and_words_are_terms() {
        let t = terms(r#"invoice "due date" e-mail """#);
        assert_eq!(
            t,
            vec![
                Term(vec!["invoice".into()]),
                Term(vec!["due".into(), "date".into()]),
                Term(vec!["e".into(), "mail".into()]),
            ]
        );
        assert_eq!(
            fts5_query(&t).as_deref(),
            Some(r#""invoice" "due date" "e mail""#)
        );
        assert_eq!(
            pg_tsquery(&t).as_deref(),
            Some("('invoice') & ('due' <-> 'date') & ('e' <-> 'mail')")
        );
        assert_eq!(fts5_query(&terms(" \" ")), None);
    }

    #[test]
    fn hostile_queries_stay_data() {
        // Operators, column filters and quotes of either syntax are split away as punctuation.
        for q in [
            "a' | b",
            "subject:x OR y*",
            "NEAR(a b)",
            "'\\''",
            "!(a & b) <-> c",
        ] {
            let t = terms(q);
            for Term(words) in &t {
                assert!(words.iter().all(|w| w.chars().all(is_token_char)));
            }
        }
    }

    #[test]
    fn the_postgres_document_lists_tokens_with_positions() {
        assert_eq!(
            pg_document("Re: Café", "it's re-sent"),
            "'re':1,5 'cafe':2 'it':3 's':4 'sent':6"
        );
    }

    #[test]
    fn words_too_long_for_postgres_are_left_out_and_unmatchable() {
        let long = "x".repeat(PG_LONGEST_WORD + 1);
        assert_eq!(pg_document("", &format!("a {long} b")), "'a':1 'b':3");
        assert!(pg_unmatchable(&terms(&long)));
        assert!(!pg_unmatchable(&terms("a b")));
    }

    #[test]
    fn the_postgres_document_is_bounded() {
        // Repeated words cost their positions, up to 256 each.
        let repeated = pg_document("s", &"word ".repeat(200_000));
        assert!(repeated.len() < 4_000, "{}", repeated.len());
        // Distinct words cost themselves: indexed up to the budget, in order.
        let distinct: String = (0..200_000).map(|i| format!("w{i} ")).collect();
        let doc = pg_document("", &distinct);
        assert!(doc.len() <= 2 * PG_TSVECTOR_BUDGET && doc.starts_with("'w0':1 'w1':2"));
        assert!(!doc.contains("'w199999'"));
    }
}

//! Full-text search: what a `q` means, the same on both databases.
//!
//! A query is terms, all required: a word, or a `"quoted phrase"` whose words must follow each other.
//! Matching ignores case and diacritics and splits text at everything that is not a letter or a
//! digit — SQLite's FTS5 `unicode61` tokenizer with `remove_diacritics 2`, which indexes the text on
//! SQLite. PostgreSQL's own text-search parser splits differently (an e-mail address or a hyphenated
//! word is one token there, and its dictionaries stem), so on PostgreSQL wasmail tokenizes in Rust
//! the way `unicode61` does ([`tokens`]) and stores and queries the tokens as they are (the `simple`
//! configuration, no stemming): a query finds the same messages on both.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// The most text indexed per message on PostgreSQL: a `tsvector` must stay under 1 MiB, and a
/// message's searchable words are near its top. SQLite indexes the whole text.
const PG_INDEX_BYTES: usize = 256 * 1024;

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

/// The `tsquery` text for `terms`: lexemes quoted, phrases joined with `<->`, terms with `&`.
pub(super) fn pg_tsquery(terms: &[Term]) -> Option<String> {
    (!terms.is_empty()).then(|| {
        terms
            .iter()
            .map(|Term(words)| {
                let phrase = words
                    .iter()
                    .map(|w| format!("'{}'", w.replace('\\', "\\\\").replace('\'', "''")))
                    .collect::<Vec<_>>()
                    .join(" <-> ");
                format!("({phrase})")
            })
            .collect::<Vec<_>>()
            .join(" & ")
    })
}

/// The text PostgreSQL indexes for a message: its tokens, space-separated, up to [`PG_INDEX_BYTES`].
pub(super) fn pg_document(subject: &str, body: &str) -> String {
    let mut out = String::new();
    for token in tokens(subject).into_iter().chain(tokens(body)) {
        if out.len() + token.len() + 1 > PG_INDEX_BYTES {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&token);
    }
    out
}

/// `text` split and folded as FTS5's `unicode61` with `remove_diacritics 2` does: runs of letters,
/// digits and private-use characters, lower-cased, with combining marks removed.
pub(super) fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if is_token_char(c) {
            // Decomposed, the diacritics are combining marks: dropped.
            for d in c.to_lowercase().flat_map(|l| l.nfd()) {
                if d.general_category_group() != GeneralCategoryGroup::Mark {
                    current.push(d);
                }
            }
        } else if !current.is_empty() {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
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
                assert!(words.iter().all(|w| w.chars().all(|c| is_token_char(c))));
            }
        }
    }

    #[test]
    fn the_postgres_document_is_bounded() {
        let body = "word ".repeat(200_000);
        assert!(pg_document("s", &body).len() <= PG_INDEX_BYTES);
    }
}

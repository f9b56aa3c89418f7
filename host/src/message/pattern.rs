//! Regular expressions whose cost is known before they run.
//!
//! The `regex` crate bounds the size of a program, not the time of a search: for some patterns of
//! moderate size it falls back from its lazy DFA to a linear but slow engine (body length x NFA
//! states), and one `matches` call over a large body ran for tens of seconds. A plugin's deadline
//! cannot interrupt native code, so every search here is priced before it starts:
//!
//! - The fast path is a lazy DFA alone (regex-automata's `hybrid`), told to give up rather than
//!   thrash its cache. Its cost is linear in the bytes scanned with a small constant.
//! - When it gives up (cache thrashing, or a Unicode word boundary meeting non-ASCII text), the full
//!   regex engine runs only if `bytes x NFA states` fits a fixed work bound; otherwise the search is
//!   refused with an error the plugin sees ([`MatchError::TooExpensive`]).
//!
//! Every search is charged to a meter first (the calling plugin's fuel), so a plugin that calls
//! `matches` in a loop pays for what it scans.

use super::fields::MatchError;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchErrorKind};
use std::sync::OnceLock;

/// Longest regular expression accepted, in bytes.
pub const MAX_PATTERN_LEN: usize = 4096;

/// Compiled programs may not grow past this (the guard against exponential expansion such as
/// `(\w{100}){100}`); it also bounds compile time, which is linear in the program built.
const PROGRAM_SIZE_LIMIT: usize = 1 << 20;

/// The lazy DFA's transition cache per search. Small on purpose: a pattern that needs more states
/// than this holds is one the fallback prices instead.
const DFA_CACHE_BYTES: usize = 256 << 10;

/// Most `bytes x states` the fallback engine may do in one search: roughly 50 ms of work here.
const FALLBACK_WORK_MAX: u64 = 32 << 20;

/// Fuel charged per byte the lazy DFA scans (it does a few native instructions per byte).
pub const FUEL_PER_DFA_BYTE: u64 = 2;

/// Fuel charged per `byte x state` of the fallback engine.
const FALLBACK_WORK_PER_FUEL: u64 = 4;

/// A compiled pattern with its cost model. Searching needs no lock: each search makes its own
/// small cache (or reuses the one kept here when it is free).
#[derive(Debug)]
pub struct Pattern {
    dfa: DFA,
    states: u64,
    source: String,
    spare: parking_lot::Mutex<Option<Cache>>,
    fallback: OnceLock<Result<regex::Regex, String>>,
}

impl Pattern {
    /// Compiles `pattern` under the size limits.
    pub fn new(pattern: &str) -> Result<Self, MatchError> {
        if pattern.len() > MAX_PATTERN_LEN {
            return Err(MatchError::TooLong(pattern.len()));
        }
        // The same syntax the `regex` crate accepts, so the fallback and the DFA agree.
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .cache_capacity(DFA_CACHE_BYTES)
                    .skip_cache_capacity_check(true)
                    .minimum_cache_clear_count(Some(3))
                    .minimum_bytes_per_state(Some(10))
                    .unicode_word_boundary(true),
            )
            .syntax(syntax::Config::new())
            .thompson(thompson::Config::new().nfa_size_limit(Some(PROGRAM_SIZE_LIMIT)))
            .build(pattern)
            .map_err(|e| MatchError::Invalid(e.to_string()))?;
        let states = dfa.get_nfa().states().len() as u64;
        Ok(Self {
            dfa,
            states: states.max(1),
            source: pattern.to_string(),
            spare: parking_lot::Mutex::new(None),
            fallback: OnceLock::new(),
        })
    }

    /// What this pattern holds in memory (program, spare search cache), bytes; what a cache of
    /// patterns should weigh it by.
    pub fn memory_bytes(&self) -> usize {
        let fallback = if self.fallback.get().is_some() {
            // regex does not report its size; its programs are of the order of the NFA's.
            self.dfa.get_nfa().memory_usage() * 2
        } else {
            0
        };
        self.source.len() + self.dfa.memory_usage() + DFA_CACHE_BYTES + fallback
    }

    /// Whether the pattern matches `haystack`. `charge(fuel)` is called before any work is done and
    /// returns false when the caller's budget cannot pay, which ends the search with
    /// [`MatchError::Budget`].
    pub fn is_match(
        &self,
        haystack: &str,
        charge: &mut dyn FnMut(u64) -> bool,
    ) -> Result<bool, MatchError> {
        let len = haystack.len() as u64;
        if !charge(len.saturating_mul(FUEL_PER_DFA_BYTE).max(1)) {
            return Err(MatchError::Budget);
        }
        let mut cache = self
            .spare
            .lock()
            .take()
            .unwrap_or_else(|| self.dfa.create_cache());
        let input = Input::new(haystack).earliest(true);
        let fast = self.dfa.try_search_fwd(&mut cache, &input);
        *self.spare.lock() = Some(cache);
        match fast {
            Ok(found) => Ok(found.is_some()),
            Err(e) => match e.kind() {
                MatchErrorKind::GaveUp { .. } | MatchErrorKind::Quit { .. } => {
                    self.slow_match(haystack, charge)
                }
                _ => Err(MatchError::Invalid(e.to_string())),
            },
        }
    }

    fn slow_match(
        &self,
        haystack: &str,
        charge: &mut dyn FnMut(u64) -> bool,
    ) -> Result<bool, MatchError> {
        let work = (haystack.len() as u64).saturating_mul(self.states);
        if work > FALLBACK_WORK_MAX {
            return Err(MatchError::TooExpensive {
                bytes: haystack.len(),
                states: self.states,
            });
        }
        if !charge(work / FALLBACK_WORK_PER_FUEL) {
            return Err(MatchError::Budget);
        }
        let regex = self.fallback.get_or_init(|| {
            regex::RegexBuilder::new(&self.source)
                .size_limit(PROGRAM_SIZE_LIMIT)
                .dfa_size_limit(PROGRAM_SIZE_LIMIT)
                .build()
                .map_err(|e| e.to_string())
        });
        match regex {
            Ok(regex) => Ok(regex.is_match(haystack)),
            Err(e) => Err(MatchError::Invalid(e.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free(_: u64) -> bool {
        true
    }

    #[test]
    fn agrees_with_regex_on_ordinary_patterns() {
        let cases = [
            (r"INVOICE \d+", "Grüße INVOICE 42", true),
            (r"^INVOICE", "Grüße INVOICE 42", false),
            (r"(?i)grüsse|grüße", "GRÜSSE", true),
            (r"\bfoo\b", "a foo b", true),
            (r"\bfoo\b", "é foo é", true), // Unicode word boundary over non-ASCII: the fallback answers
            (r"\bfoo\b", "éfoo é", false), // é is a word character
            (r"\bfoo\b", "afoob", false),
            (r"(?m)^Subject: x$", "A: b\nSubject: x\nC: d", true),
        ];
        for (pattern, haystack, expected) in cases {
            let p = Pattern::new(pattern).expect("compiles");
            assert_eq!(
                p.is_match(haystack, &mut free),
                Ok(expected),
                "{pattern} on {haystack}"
            );
            let reference = regex::Regex::new(pattern)
                .expect("regex")
                .is_match(haystack);
            assert_eq!(reference, expected, "reference for {pattern}");
        }
    }

    #[test]
    fn refuses_oversized_and_exploding_patterns() {
        let long = "a".repeat(MAX_PATTERN_LEN + 1);
        assert_eq!(
            Pattern::new(&long).err(),
            Some(MatchError::TooLong(MAX_PATTERN_LEN + 1))
        );
        assert!(matches!(
            Pattern::new(r"(\w{100}){100}"),
            Err(MatchError::Invalid(_))
        ));
        assert!(matches!(Pattern::new("("), Err(MatchError::Invalid(_))));
    }

    #[test]
    fn charges_before_scanning_and_stops_when_the_budget_is_gone() {
        let p = Pattern::new("needle").expect("compiles");
        let hay = "x".repeat(10_000);
        let mut charged = 0;
        assert_eq!(
            p.is_match(&hay, &mut |f| {
                charged += f;
                true
            }),
            Ok(false)
        );
        assert_eq!(charged, 10_000 * FUEL_PER_DFA_BYTE);
        assert_eq!(p.is_match(&hay, &mut |_| false), Err(MatchError::Budget));
    }

    #[test]
    fn a_pattern_that_would_crawl_is_refused_not_run() {
        // Many alternations of Unicode classes with word boundaries: the lazy DFA quits on the
        // first non-ASCII byte and the fallback would need bytes x states far past the bound.
        let pattern = (0..8)
            .map(|i| format!(r"\b\w{{3}}{i}\w+\b"))
            .collect::<Vec<_>>()
            .join("|");
        let p = Pattern::new(&pattern).expect("compiles");
        let hay = "é".repeat(4 << 20);
        let started = std::time::Instant::now();
        let result = p.is_match(&hay, &mut free);
        assert!(
            matches!(result, Err(MatchError::TooExpensive { .. })),
            "{result:?}"
        );
        // Refusing is cheap: it costs at most the DFA's scan up to its give-up point.
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
    }
}

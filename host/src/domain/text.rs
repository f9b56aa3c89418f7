//! What "printable" means for every name: text a person can read as it is, that renders the same
//! everywhere and cannot change how the text around it is displayed or parsed.

use unicode_normalization::UnicodeNormalization;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Why a character is not printable, in words that fit "may not contain …".
pub fn unprintable(c: char) -> Option<&'static str> {
    if c == ' ' {
        return None;
    }
    let why = match c.general_category() {
        // NUL, CR, LF, TAB, DEL, C1 controls: they end lines and strings in the protocols names go to.
        GeneralCategory::Control => "control characters",
        // Bidi overrides and isolates (U+202A–U+202E, U+2066–U+2069), LRM/RLM, zero-width
        // characters, BOM: invisible, and they reorder or hide what is shown around them.
        GeneralCategory::Format => "format characters (bidi controls, zero-width characters)",
        // U+2028, U+2029: line breaks to many renderers and to JavaScript.
        GeneralCategory::LineSeparator => "line separators",
        GeneralCategory::ParagraphSeparator => "paragraph separators",
        // NBSP, ideographic space, …: look like a space and are not one ("Spam" vs "Spam\u{a0}").
        GeneralCategory::SpaceSeparator => "spaces other than U+0020",
        // Meaningless outside an agreement between two parties; render as anything.
        GeneralCategory::PrivateUse => "private-use characters",
        // Unassigned code points and noncharacters (U+FFFE, …): no one can say how they render.
        // Assignments only grow, so a name accepted today is accepted by every later version.
        GeneralCategory::Unassigned => "unassigned code points",
        // Unpaired surrogates cannot occur in a Rust string; refused all the same.
        GeneralCategory::Surrogate => "surrogates",
        _ => return None,
    };
    Some(why)
}

/// The first character of `s` that is not printable, with why.
pub fn first_unprintable(s: &str) -> Option<(char, &'static str)> {
    s.chars().find_map(|c| unprintable(c).map(|why| (c, why)))
}

/// `U+202E`, for refusals.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// `s` in Unicode normalisation form C, so that one name has one spelling ("é" typed as one code
/// point or as "e" + combining accent is one folder, not two).
pub fn nfc(s: &str) -> String {
    s.nfc().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_characters_are_unprintable() {
        for c in [
            '\0', '\r', '\n', '\t', '\u{7f}', '\u{85}', '\u{202e}', '\u{2066}', '\u{200e}',
            '\u{200b}', '\u{feff}', '\u{2028}', '\u{2029}', '\u{a0}', '\u{3000}', '\u{e000}',
            '\u{fffe}',
        ] {
            assert!(unprintable(c).is_some(), "{}", code_point(c));
        }
        for c in [' ', 'a', 'é', 'ß', '中', '😀', '&', '(', ']', '#'] {
            assert_eq!(unprintable(c), None, "{}", code_point(c));
        }
    }

    #[test]
    fn nfc_makes_one_spelling() {
        assert_eq!(nfc("e\u{301}"), "é");
        assert_eq!(code_point('\u{202e}'), "U+202E");
    }
}

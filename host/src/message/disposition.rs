//! The `Content-Disposition` of an attachment download (RFC 6266 with RFC 8187/5987 `filename*`).
//!
//! The file name comes from the mail, so it is hostile input: it can hold CR LF (which would split
//! or, with a strict HTTP library, drop the header), quotes and backslashes (which would end the
//! quoted string early), path separators and `..` (which would climb out of a download folder),
//! control and bidi characters (`invoice\u{202E}fdp.exe` shows as `invoiceexe.pdf`), and any length.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// RFC 8187 `attr-char` minus the alphanumerics: everything else in `filename*` is percent-encoded.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// Longest file name offered, in bytes of UTF-8 (what common file systems accept).
const MAX_NAME_BYTES: usize = 255;

/// Longest extension kept when a long name is shortened.
const MAX_EXTENSION_BYTES: usize = 16;

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded name>` for `filename`,
/// or for `default_name` when the file name is missing or nothing of it survives cleaning.
///
/// The result is always a single line of printable ASCII, so it is always a valid header value.
pub fn attachment_disposition(filename: Option<&str>, default_name: &str) -> String {
    let name = filename
        .map(clean_name)
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| clean_name(default_name));
    let fallback = ascii_fallback(&name);
    let encoded = utf8_percent_encode(&name, ATTR_CHAR);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

/// The name as a safe file name: no control, format (bidi) or separator characters, path separators
/// made `_`, no leading or trailing dots and spaces (hidden files, Windows' silent trimming), at most
/// [`MAX_NAME_BYTES`] keeping a short extension.
fn clean_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|&c| !is_invisible(c))
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| c == '.' || c.is_whitespace());
    shorten(trimmed)
}

/// Characters that must not reach a file name: C0/C1 controls, bidi embeddings, overrides and
/// isolates, zero-width marks and the line and paragraph separators.
fn is_invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{061C}'
                | '\u{FEFF}'
        )
}

/// Cuts `name` to [`MAX_NAME_BYTES`] at a character boundary, keeping a short extension.
fn shorten(name: &str) -> String {
    if name.len() <= MAX_NAME_BYTES {
        return name.to_string();
    }
    let extension = name
        .rfind('.')
        .map(|dot| &name[dot..])
        .filter(|ext| ext.len() <= MAX_EXTENSION_BYTES)
        .unwrap_or("");
    let mut end = MAX_NAME_BYTES - extension.len();
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{extension}", &name[..end])
}

/// The `filename` parameter for clients without RFC 6266: printable ASCII without `"` and `\`; each run
/// of anything else becomes one `_`.
fn ascii_fallback(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let keep = (' '..='~').contains(&c) && c != '"' && c != '\\';
        if keep {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disposition(name: &str) -> String {
        attachment_disposition(Some(name), "attachment-0")
    }

    /// The header value is one line of printable ASCII whatever the name.
    fn assert_header_safe(value: &str) {
        assert!(
            value.bytes().all(|b| (b' '..=b'~').contains(&b)),
            "not printable ASCII: {value:?}"
        );
    }

    /// The quoted `filename` parameter and the decoded `filename*` of a header value.
    fn params(value: &str) -> (String, String) {
        let rest = value.strip_prefix("attachment; filename=\"").expect(value);
        let (fallback, rest) = rest.split_once("\"; filename*=UTF-8''").expect(value);
        assert!(
            !fallback.contains('"') && !fallback.contains('\\'),
            "{value}"
        );
        assert!(!rest.contains(';') && !rest.contains(' '), "{value}");
        let decoded = percent_encoding::percent_decode_str(rest)
            .decode_utf8()
            .expect("UTF-8")
            .into_owned();
        (fallback.to_string(), decoded)
    }

    #[test]
    fn plain_ascii_names_are_unchanged() {
        let value = disposition("report-2024_v2.pdf");
        assert_eq!(
            value,
            "attachment; filename=\"report-2024_v2.pdf\"; filename*=UTF-8''report-2024_v2.pdf"
        );
        let (fallback, name) = params(&disposition("my notes (final).txt"));
        assert_eq!(fallback, "my notes (final).txt");
        assert_eq!(name, "my notes (final).txt");
        assert!(disposition("a b.txt").ends_with("filename*=UTF-8''a%20b.txt"));
    }

    #[test]
    fn utf8_names_are_percent_encoded_with_an_ascii_fallback() {
        let value = disposition("Grüße – отчёт.pdf");
        assert_header_safe(&value);
        let (fallback, name) = params(&value);
        assert_eq!(name, "Grüße – отчёт.pdf");
        assert_eq!(fallback, "Gr_e _ _.pdf");
        assert!(value.contains("filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%E2%80%93%20"));
    }

    #[test]
    fn line_breaks_and_controls_cannot_split_the_header() {
        for hostile in [
            "evil\r\nSet-Cookie: a=b.txt",
            "evil\nX: y",
            "nul\0byte\x7f.txt",
            "tab\there\u{85}.txt",
        ] {
            let value = disposition(hostile);
            assert_header_safe(&value);
            let (fallback, name) = params(&value);
            assert!(!name.chars().any(char::is_control), "{name:?}");
            assert!(!fallback.chars().any(char::is_control), "{fallback:?}");
        }
        let (_, name) = params(&disposition("evil\r\nSet-Cookie: a=b.txt"));
        assert_eq!(name, "evilSet-Cookie: a=b.txt");
    }

    #[test]
    fn quotes_backslashes_and_paths_are_neutralised() {
        let (fallback, name) = params(&disposition("say \"hi\"\\.txt"));
        assert_eq!(name, "say \"hi\"_.txt");
        assert_eq!(fallback, "say _hi__.txt");
        for climbing in ["../../etc/passwd", "..\\..\\boot.ini", "/etc/passwd", "..."] {
            let (fallback, name) = params(&disposition(climbing));
            for text in [&fallback, &name] {
                assert!(!text.contains('/') && !text.contains('\\'), "{text}");
                assert!(!text.starts_with('.'), "{text}");
            }
        }
        assert_eq!(params(&disposition("../../etc/passwd")).1, "_.._etc_passwd");
    }

    #[test]
    fn bidi_and_invisible_characters_are_removed() {
        let (fallback, name) = params(&disposition("invoice\u{202E}fdp.exe"));
        assert_eq!(name, "invoicefdp.exe");
        assert_eq!(fallback, "invoicefdp.exe");
        let (_, name) = params(&disposition("a\u{200B}b\u{2028}c\u{2066}d\u{FEFF}.txt"));
        assert_eq!(name, "abcd.txt");
    }

    #[test]
    fn empty_or_vanishing_names_use_the_default() {
        for empty in ["", "   ", "\r\n", "..", "\u{202E}"] {
            assert_eq!(
                params(&disposition(empty)),
                ("attachment-0".to_string(), "attachment-0".to_string()),
                "{empty:?}"
            );
        }
        assert_eq!(
            params(&attachment_disposition(None, "attachment-3")).1,
            "attachment-3"
        );
    }

    #[test]
    fn long_names_are_shortened_keeping_the_extension() {
        let (_, name) = params(&disposition(&format!("{}.pdf", "é".repeat(1000))));
        assert!(name.len() <= MAX_NAME_BYTES, "{}", name.len());
        assert!(name.ends_with("é.pdf"), "{name}");
        let (_, name) = params(&disposition(&"x".repeat(10_000)));
        assert_eq!(name.len(), MAX_NAME_BYTES);
    }
}

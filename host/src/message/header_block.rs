//! Where the header block starts. Real mail (the corpus has several, from forwarding agents and
//! archives) sometimes begins with a blank or white-space-only line before its headers. Strictly that
//! line ends an empty header block and everything after it is body, which is how mail-parser reads it:
//! such a message would lose all its headers to the text body. Mail clients and Python's `email` read
//! the headers anyway, so the host parses from after those lines; the raw bytes are never changed.

/// The offset where parsing starts: after any leading lines made only of spaces, tabs and CRs, when
/// the line after them is a header field (`name:`). Otherwise 0: a message that is only blank lines, or
/// whose first text after a blank line is not a header (a body-only message), is read as written.
pub fn header_block_start(raw: &[u8]) -> usize {
    let mut start = 0;
    while let Some(newline) = memchr::memchr(b'\n', &raw[start..]) {
        let line = &raw[start..start + newline];
        if !line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            break;
        }
        start += newline + 1;
    }
    if start > 0 && starts_with_field(&raw[start..]) {
        start
    } else {
        0
    }
}

/// Whether `text` begins with a header field name (RFC 5322 ftext: printable ASCII except `:`)
/// followed by optional white space and a colon.
fn starts_with_field(text: &[u8]) -> bool {
    let name_len = text
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    if name_len == 0 {
        return false;
    }
    let rest = &text[name_len..];
    let blanks = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    rest.get(blanks) == Some(&b':')
}

#[cfg(test)]
mod tests {
    use super::header_block_start;

    #[test]
    fn skips_blank_and_white_space_lines_before_a_header() {
        assert_eq!(header_block_start(b"\r\nSubject: x\r\n\r\nbody"), 2);
        assert_eq!(header_block_start(b"\nSubject: x\n\nbody"), 1);
        assert_eq!(header_block_start(b"  \t \r\n\r\n \nFrom: a@b\r\n"), 10);
        assert_eq!(header_block_start(b"\r\n\r\nX-Odd  : y\r\n"), 4);
    }

    #[test]
    fn leaves_everything_else_as_written() {
        // Already at a header, or a continuation-looking first line with text on it.
        assert_eq!(header_block_start(b"Subject: x\r\n\r\nbody"), 0);
        assert_eq!(header_block_start(b" folded\r\nSubject: x\r\n"), 0);
        // Body-only messages: what follows the blank line is not a header.
        assert_eq!(
            header_block_start(b"\nWhile this email is undeliverable\n"),
            0
        );
        assert_eq!(header_block_start(b"\r\nNote that: a sentence\r\n"), 0);
        assert_eq!(header_block_start(b"\r\n: no name\r\n"), 0);
        // Only blank lines, nothing, or blank lines without a final newline.
        assert_eq!(header_block_start(b"\r\n\r\n  \r\n"), 0);
        assert_eq!(header_block_start(b""), 0);
        assert_eq!(header_block_start(b"\r\n   "), 0);
    }
}

//! Case-insensitive substring search, the hot path of most filters.

/// Whether `haystack` contains `needle`, ignoring case (Unicode lower-casing on both sides).
///
/// `needle_folded` must already be lower case; callers fold it once and search many fields. ASCII
/// haystacks (nearly all header values) are folded on the stack-free fast path.
pub fn contains_folded(haystack: &str, needle_folded: &str) -> bool {
    if needle_folded.is_empty() {
        return true;
    }
    if haystack.len() < needle_folded.len() && haystack.is_ascii() {
        return false;
    }
    if haystack.is_ascii() && needle_folded.is_ascii() {
        let hay = haystack.as_bytes();
        let needle = needle_folded.as_bytes();
        // Scan for the first byte in either case with memchr2, then compare the rest ignoring ASCII case.
        let first = needle[0];
        let upper = first.to_ascii_uppercase();
        let mut from = 0;
        while let Some(pos) = memchr::memchr2(first, upper, &hay[from..]) {
            let at = from + pos;
            if hay.len() - at < needle.len() {
                return false;
            }
            if hay[at..at + needle.len()].eq_ignore_ascii_case(needle) {
                return true;
            }
            from = at + 1;
        }
        return false;
    }
    memchr::memmem::find(haystack.to_lowercase().as_bytes(), needle_folded.as_bytes()).is_some()
}

/// Searches a haystack that is already folded (a cached lower-cased body).
pub(crate) fn find_in_folded(haystack_folded: &str, needle_folded: &str) -> bool {
    memchr::memmem::find(haystack_folded.as_bytes(), needle_folded.as_bytes()).is_some()
}

#[cfg(test)]
mod tests {
    use super::contains_folded;

    #[test]
    fn ascii_and_unicode() {
        assert!(contains_folded("Hello WORLD", "world"));
        assert!(contains_folded("Hello WORLD", ""));
        assert!(!contains_folded("Hello", "hello!"));
        assert!(contains_folded("Grüße aus MÜNCHEN", "münchen"));
        assert!(!contains_folded("abc", "abd"));
        assert!(contains_folded("aaab", "aab"));
    }
}

//! Forward addresses: where a `forward` sends a copy, i.e. an SMTP envelope recipient.
//!
//! ```text
//! address = local "@" domain          ; at most 254 bytes (RFC 5321 path limit, less the brackets)
//! local   = atom *("." atom)          ; at most 64 bytes
//! atom    = 1*(ALPHA / DIGIT / one of # $ & ' * + - / = ? ^ _ ` { | } ~)
//! domain  = 2*labels, LDH or IDN      ; stored as lower-case A-labels (xn--…), not an IP address
//! ```
//! Only the plain form is taken, because every other form of RFC 5321/5322 addressing has been used
//! to send mail somewhere other than where it seems to go:
//! - source routes (`@relay:user@domain`) and several `@`: relayed through the first host;
//! - `%` (`user%victim@relay`, the "percent hack") and `!` (UUCP bang paths): the same, by
//!   relays that still honour them;
//! - quoted local parts (`"a@b"@c`, `"x\"y"@z`): can hide `@`, spaces and CR LF;
//! - display names, angle brackets, comments: not an address but a header, and a place for text to
//!   smuggle in; address literals (`user@[10.0.0.1]`): delivery to an internal IP address;
//! - non-ASCII local parts need SMTPUTF8 end to end; IDN domains are fine once converted to
//!   A-labels (UTS 46, strict STD3 rules), which also catches malformed punycode.

use super::{InvalidName, NameKind, name_type};

/// Longest address, in bytes (after the domain is converted to A-labels).
pub const MAX_BYTES: usize = 254;
/// Longest local part, in bytes.
pub const MAX_LOCAL_BYTES: usize = 64;

/// A forward address that follows the grammar above.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ForwardAddress(String);

name_type!(ForwardAddress);

fn refuse(address: &str, rule: impl Into<String>) -> InvalidName {
    InvalidName::new(NameKind::ForwardAddress, address, rule)
}

/// `atext` of RFC 5322 without `%` and `!`, which route.
fn atom_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "#$&'*+-/=?^_`{|}~".contains(c)
}

impl ForwardAddress {
    /// Checks `address`; the domain comes back as lower-case A-labels.
    pub fn parse(address: &str) -> Result<Self, InvalidName> {
        let fail = |rule: String| Err(refuse(address, rule));
        if address.is_empty() {
            return fail("forward addresses may not be empty".into());
        }
        if address.len() > MAX_BYTES {
            return fail(format!(
                "forward addresses are at most {MAX_BYTES} bytes; this one is {} bytes",
                address.len()
            ));
        }
        let unprintable = |c: char| super::text::unprintable(c).is_some();
        if let Some(c) = address
            .chars()
            .find(|&c| c.is_whitespace() || unprintable(c))
        {
            return fail(format!(
                "forward addresses are a plain local@domain and may not contain spaces, \
                 control or format characters ({})",
                super::text::code_point(c)
            ));
        }
        if address.contains(['<', '>']) {
            return fail(
                "forward addresses are a plain local@domain, without display name or angle brackets"
                    .into(),
            );
        }
        if address.starts_with('@') || address.contains(':') {
            return fail("source routes (@relay:user@domain) are refused".into());
        }
        if address.contains('"') {
            return fail("quoted local parts are refused".into());
        }
        let Some((local, domain)) = address.split_once('@') else {
            return fail("forward addresses need an '@'".into());
        };
        if domain.contains('@') {
            return fail(
                "forward addresses have exactly one '@' (relaying forms are refused)".into(),
            );
        }
        local_part(local).map_err(|rule| refuse(address, rule))?;
        let domain = domain_name(domain).map_err(|rule| refuse(address, rule))?;
        let normal = format!("{local}@{domain}");
        if normal.len() > MAX_BYTES {
            return fail(format!(
                "forward addresses are at most {MAX_BYTES} bytes; this one is {} bytes with its domain \
                 in A-labels",
                normal.len()
            ));
        }
        Ok(Self(normal))
    }
}

fn local_part(local: &str) -> Result<(), String> {
    if local.is_empty() {
        return Err("the local part (before '@') may not be empty".into());
    }
    if local.len() > MAX_LOCAL_BYTES {
        return Err(format!(
            "local parts are at most {MAX_LOCAL_BYTES} bytes; this one is {} bytes",
            local.len()
        ));
    }
    if local.contains('%') {
        return Err(
            "'%' routes mail through another host (the percent hack) and is refused".into(),
        );
    }
    if local.contains('!') {
        return Err("'!' routes mail as a UUCP bang path and is refused".into());
    }
    if let Some(c) = local.chars().find(|c| !c.is_ascii()) {
        return Err(format!(
            "local parts are ASCII (non-ASCII needs SMTPUTF8): {}",
            super::text::code_point(c)
        ));
    }
    if let Some(c) = local.chars().find(|&c| c != '.' && !atom_char(c)) {
        return Err(format!("local parts may not contain '{c}'"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("local parts may not begin or end with '.' or contain '..'".into());
    }
    Ok(())
}

fn domain_name(domain: &str) -> Result<String, String> {
    if domain.is_empty() {
        return Err("the domain (after '@') may not be empty".into());
    }
    if domain.starts_with('[') {
        return Err("address literals (user@[192.0.2.1]) are refused".into());
    }
    let ascii = idna::domain_to_ascii_strict(domain)
        .map_err(|_| "the domain is not a well-formed domain name (DNS or IDN)".to_string())?;
    let labels: Vec<&str> = ascii.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return Err("the domain needs at least two labels (example.com), none empty".into());
    }
    if labels
        .last()
        .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("the domain may not be an IP address".into());
    }
    Ok(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(address: &str) -> String {
        ForwardAddress::parse(address)
            .unwrap_or_else(|e| panic!("{address:?} refused: {e}"))
            .into_string()
    }

    fn refused(address: &str, rule_has: &str) {
        match ForwardAddress::parse(address) {
            Ok(a) => panic!("{address:?} accepted as {a:?}"),
            Err(e) => assert!(e.rule.contains(rule_has), "{address:?}: {}", e.rule),
        }
    }

    #[test]
    fn plain_addresses_pass_with_idn_as_a_labels() {
        assert_eq!(ok("ops@example.com"), "ops@example.com");
        assert_eq!(
            ok("first.last+tag@Sub.Example.COM"),
            "first.last+tag@sub.example.com"
        );
        assert_eq!(ok("o'brien_1=x@example.co.uk"), "o'brien_1=x@example.co.uk");
        assert_eq!(ok("info@bücher.example"), "info@xn--bcher-kva.example");
        assert_eq!(
            ok("info@xn--bcher-kva.example"),
            "info@xn--bcher-kva.example"
        );
        assert_eq!(ok("a@例え.テスト"), "a@xn--r8jz45g.xn--zckzah");
        assert_eq!(
            ok(&format!("{}@example.com", "l".repeat(64))).len(),
            64 + 12
        );
    }

    #[test]
    fn routing_tricks_are_refused() {
        refused("@relay.example:victim@example.com", "source routes");
        refused("@a:b@c.example", "source routes");
        refused("victim%example.com@relay.example", "percent hack");
        refused("relay!victim@example.com", "bang path");
        refused("a@b@example.com", "exactly one '@'");
        refused("\"a@b\"@example.com", "quoted local parts");
        refused("\"x\\\"y\"@example.com", "quoted local parts");
        refused("\"evil\r\nRCPT TO:<x@y>\"@example.com", "control");
        refused("Ops <ops@example.com>", "spaces");
        refused("<ops@example.com>", "angle brackets");
        refused("ops@[10.0.0.1]", "address literals");
        refused("ops@10.0.0.1", "IP address");
        refused("ops(comment)@example.com", "'('");
        refused("a,b@example.com", "','");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        refused("", "empty");
        refused("not an address", "spaces");
        refused("nobody", "need an '@'");
        refused("@example.com", "source routes");
        refused("ops@", "domain");
        refused("ops@localhost", "two labels");
        refused("ops@example..com", "domain");
        refused("ops@example.com.", "domain");
        refused("ops@-bad.example", "well-formed");
        refused("ops@under_score.example", "well-formed");
        refused("ops@xn--zz.example", "well-formed");
        refused(".ops@example.com", "'.'");
        refused("o..ps@example.com", "'..'");
        refused("jöran@example.com", "ASCII");
        refused("nul\0@example.com", "control");
        refused("rtl\u{202e}@example.com", "control");
        refused(
            &format!("{}@example.com", "l".repeat(65)),
            "at most 64 bytes",
        );
        refused(&format!("a@{}.com", "d".repeat(300)), "at most 254 bytes");
        refused(&format!("a@{}.example", "d".repeat(64)), "well-formed");
    }
}

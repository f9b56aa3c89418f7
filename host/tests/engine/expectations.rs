//! Named expectations over corpus messages, checked on top of the golden files: each was read by a
//! person and says why it must (not) match.

/// (message, an action it must get) under golden/rules.config.json.
pub const RULES_MUST: &[(&str, &str)] = &[
    // List-Id and List-Unsubscribe headers.
    ("newsletter.eml", r#"{"move_to": "Lists"}"#),
    (
        "mimekit__Announce-GnuPG-2.1.20-released.eml",
        r#"{"move_to": "Lists"}"#,
    ),
    // multipart/report; report-type=delivery-status
    ("cpython__msg_05.eml", r#"{"move_to": "Bounces"}"#),
    (
        "nodemailer__delivery-status.eml",
        r#"{"move_to": "Bounces"}"#,
    ),
    (
        "mimekit__delivery-status-multiple-blank-lines.eml",
        r#"{"move_to": "Bounces"}"#,
    ),
    // Subject "Invoice ..." with a PDF attached.
    ("invoice.eml", r#"{"tag": "billing"}"#),
    ("invoice.eml", r#"{"tag": "documents"}"#),
    // multipart/signed, and S/MIME application/pkcs7-mime.
    (
        "letters__test_english_multipart_signed_utf-8_over_7bit.eml",
        r#"{"tag": "crypto"}"#,
    ),
    (
        "sjm__S_MIME-test-message-encrypted.eml",
        r#"{"tag": "crypto"}"#,
    ),
    // From: ...@python.org
    ("cpython__msg_04.eml", r#"{"tag": "python"}"#),
];

/// Messages no rule may touch.
pub const RULES_UNTOUCHED: &[&str] = &[
    "phishing.eml",
    "disguised-executable.eml",
    "cpython__msg_02.eml",
    "mailpit__plain-text.eml",
];

/// Messages spam-score must move to Junk: SPF and DMARC failures with a deceptive link to a bare IP
/// address; a classic 2001 "vacation giveaway" spam sent to nine recipients.
pub const SPAM: &[&str] = &["phishing.eml", "spamassassin__spam-007.eml"];

/// Messages spam-score must leave alone: authenticated newsletters and invoices, plain mail, and
/// malformed but innocent test messages.
pub const HAM: &[&str] = &[
    "newsletter.eml",
    "invoice.eml",
    "mailpit__plain-text.eml",
    "cpython__msg_02.eml",
    "stalwart__malformed-000.eml",
    "rspamd__html_template_1.eml",
];

/// Messages attachment-guard must quarantine.
pub const DANGEROUS: &[&str] = &[
    "zip-with-script.eml",      // a ZIP holding scan/invoice.pdf.js
    "double-extension.eml",     // Invoice_2026.pdf.exe
    "macro-spreadsheet.eml",    // Budget-Q4.xlsm
    "disguised-executable.eml", // party.jpg starting with MZ
    "encrypted-archive.eml",    // an encrypted ZIP: cannot be inspected
];

/// Messages attachment-guard must let through: PDFs, images, JSON and text attachments, S/MIME
/// signatures, and an .xlsx named "nomacro".
pub const HARMLESS: &[&str] = &[
    "invoice.eml",
    "newsletter.eml",
    "letters__test_polish_multipart_mixed_utf-8_over_base64.eml",
    "spamassassin__nomacro.eml",
    "sjm__n486-TestValidSignedMimeMessage.eml",
    "mailpit__mime-attachment.eml",
];

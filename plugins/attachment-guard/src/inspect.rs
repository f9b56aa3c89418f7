//! Deciding whether an attachment is dangerous, from its name, type and first and last bytes.

use crate::zip::zip_entry_names;
use serde::Deserialize;
use std::fmt;
use wasmail_plugin::Action;

const BLOCKED: &[&str] = &[
    "exe",
    "scr",
    "com",
    "bat",
    "cmd",
    "pif",
    "vbs",
    "vbe",
    "js",
    "jse",
    "wsf",
    "wsh",
    "ws",
    "ps1",
    "psm1",
    "msi",
    "msp",
    "mst",
    "hta",
    "cpl",
    "jar",
    "lnk",
    "reg",
    "dll",
    "sys",
    "scf",
    "inf",
    "gadget",
    "application",
    "iso",
    "img",
    "vhd",
    "vhdx",
    "appx",
    "msix",
    "chm",
    "url",
    "xll",
    "sct",
    "shs",
];
const MACRO: &[&str] = &[
    "docm", "dotm", "xlsm", "xltm", "xlam", "pptm", "potm", "ppam", "ppsm", "sldm",
];
const ARCHIVES: &[&str] = &[
    "zip", "rar", "7z", "gz", "tgz", "bz2", "xz", "cab", "ace", "arj", "tar",
];
const EXECUTABLE_TYPES: &[&str] = &[
    "application/x-msdownload",
    "application/x-dosexec",
    "application/x-msdos-program",
    "application/x-ms-installer",
    "application/x-executable",
    "application/vnd.microsoft.portable-executable",
    "application/hta",
    "application/x-sh",
    "application/javascript",
    "application/x-javascript",
];

/// The plugin's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Returned when something dangerous is found.
    pub actions: Vec<Action>,
    /// Extensions blocked on top of the built-in list (without the dot).
    pub extra_extensions: Vec<String>,
    /// Extensions never blocked, even when built in.
    pub allowed_extensions: Vec<String>,
    /// Read ZIP archives' file names.
    pub inspect_archives: bool,
    /// Archives inside archives count as dangerous (they cannot be inspected).
    pub block_nested_archives: bool,
    /// Encrypted ZIP entries with a blocked name count (their names are visible even when encrypted);
    /// with this on, any encrypted archive counts.
    pub block_encrypted_archives: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            actions: vec![
                Action::Tag("dangerous-attachment".into()),
                Action::AddFlag("$Dangerous".into()),
                Action::MoveTo("Quarantine".into()),
            ],
            extra_extensions: Vec::new(),
            allowed_extensions: Vec::new(),
            inspect_archives: true,
            block_nested_archives: false,
            block_encrypted_archives: true,
        }
    }
}

impl Config {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.actions.is_empty() {
            return Err(
                "actions must not be empty: the plugin would find dangers and do nothing".into(),
            );
        }
        for ext in self.extra_extensions.iter().chain(&self.allowed_extensions) {
            if ext.is_empty() || ext.starts_with('.') || ext.contains(['/', '\\', ' ']) {
                return Err(format!(
                    "extension {ext:?} must be given without the dot, e.g. \"exe\""
                ));
            }
        }
        Ok(())
    }

    fn blocked(&self, ext: &str) -> bool {
        if self
            .allowed_extensions
            .iter()
            .any(|a| a.eq_ignore_ascii_case(ext))
        {
            return false;
        }
        BLOCKED.contains(&ext)
            || MACRO.contains(&ext)
            || self
                .extra_extensions
                .iter()
                .any(|e| e.eq_ignore_ascii_case(ext))
    }
}

/// Why an attachment is dangerous.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The attachment (or archive entry) name.
    pub name: String,
    /// Why.
    pub reason: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.name, self.reason)
    }
}

fn finding(name: &str, reason: impl Into<String>) -> Finding {
    Finding {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// The extension as the operating system would see it: after the last dot, trailing dots and spaces
/// stripped (Windows ignores them), lower case.
fn extension(name: &str) -> Option<String> {
    let trimmed = name.trim_end_matches(['.', ' ', '\u{0}']);
    let (_, ext) = trimmed.rsplit_once('.')?;
    let ext = ext.trim().to_ascii_lowercase();
    (!ext.is_empty()).then_some(ext)
}

/// Findings from a name and a content type.
pub fn inspect_name(name: &str, content_type: &str, config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    // U+202E (right-to-left override) and friends make "invoice<U+202E>fdp.exe" display as "invoiceexe.pdf".
    if name
        .chars()
        .any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'))
    {
        out.push(finding(
            name,
            "name contains a bidirectional override character that disguises its extension",
        ));
    }
    if let Some(ext) = extension(name)
        && config.blocked(&ext)
    {
        let hidden = name
            .trim_end_matches(['.', ' '])
            .rsplit_once('.')
            .and_then(|(stem, _)| extension(stem));
        let reason = if MACRO.contains(&ext.as_str()) {
            format!("macro-enabled Office file (.{ext})")
        } else if let Some(decoy) = hidden {
            format!("blocked extension .{ext} hidden behind .{decoy}")
        } else {
            format!("blocked extension .{ext}")
        };
        out.push(finding(name, reason));
    }
    let ct = content_type.to_ascii_lowercase();
    if EXECUTABLE_TYPES.contains(&ct.as_str())
        && !extension(name).is_some_and(|e| {
            config
                .allowed_extensions
                .iter()
                .any(|a| a.eq_ignore_ascii_case(&e))
        })
    {
        out.push(finding(name, format!("executable content type {ct}")));
    } else if ct.contains("macroenabled") {
        out.push(finding(name, format!("macro-enabled content type {ct}")));
    }
    out
}

/// Findings from content: the first bytes (`head`) and, for ZIP archives, the tail holding the
/// central directory, read only when needed.
pub fn inspect_content(
    name: &str,
    head: &[u8],
    size: u64,
    tail: impl FnOnce() -> Vec<u8>,
    config: &Config,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if head.starts_with(b"MZ") && !extension(name).is_some_and(|e| config.blocked(&e)) {
        out.push(finding(
            name,
            "Windows executable content (MZ signature) under a harmless name",
        ));
    }
    let is_zip = head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06");
    if is_zip && config.inspect_archives && size > 0 {
        match zip_entry_names(&tail()) {
            Some((entries, encrypted)) => {
                for entry in &entries {
                    if let Some(ext) = extension(entry) {
                        if config.blocked(&ext) {
                            out.push(finding(
                                name,
                                format!("archive holds {entry:?} (blocked extension .{ext})"),
                            ));
                        } else if config.block_nested_archives && ARCHIVES.contains(&ext.as_str()) {
                            out.push(finding(
                                name,
                                format!("archive holds another archive {entry:?}"),
                            ));
                        }
                    }
                }
                if encrypted && config.block_encrypted_archives && out.is_empty() {
                    out.push(finding(
                        name,
                        "encrypted archive: its contents cannot be inspected",
                    ));
                }
            }
            None => {
                if config.block_nested_archives {
                    out.push(finding(name, "ZIP archive whose directory cannot be read"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zip::tests::zip_with;

    fn names(name: &str) -> Vec<String> {
        inspect_name(name, "application/octet-stream", &Config::default())
            .into_iter()
            .map(|f| f.reason)
            .collect()
    }

    #[test]
    fn names_and_disguises() {
        assert_eq!(names("setup.exe"), ["blocked extension .exe"]);
        assert_eq!(
            names("invoice.pdf.exe"),
            ["blocked extension .exe hidden behind .pdf"]
        );
        assert_eq!(
            names("invoice.pdf     .exe. "),
            ["blocked extension .exe hidden behind .pdf"]
        );
        assert_eq!(names("Budget.XLSM"), ["macro-enabled Office file (.xlsm)"]);
        assert_eq!(names("invoice\u{202E}fdp.scr").len(), 2);
        assert!(names("report.pdf").is_empty());
        assert!(names("no-extension").is_empty());
        let allow_js = Config {
            allowed_extensions: vec!["JS".into()],
            ..Config::default()
        };
        assert!(inspect_name("app.js", "application/javascript", &allow_js).is_empty());
        let block_pdf = Config {
            extra_extensions: vec!["pdf".into()],
            ..Config::default()
        };
        assert_eq!(
            inspect_name("a.pdf", "application/pdf", &block_pdf).len(),
            1
        );
        assert_eq!(
            inspect_name("x.bin", "application/x-msdownload", &Config::default()).len(),
            1
        );
    }

    #[test]
    fn content() {
        let config = Config::default();
        assert_eq!(
            inspect_content("photo.jpg", b"MZ\x90\x00", 100, Vec::new, &config).len(),
            1
        );
        // An .exe is already reported by name; the signature adds nothing.
        assert!(inspect_content("setup.exe", b"MZ\x90\x00", 100, Vec::new, &config).is_empty());
        let zip = zip_with(&[("docs/readme.txt", false), ("docs/invoice.pdf.js", false)]);
        let found = inspect_content(
            "docs.zip",
            &zip[..4],
            zip.len() as u64,
            || zip.clone(),
            &config,
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].reason.contains("invoice.pdf.js"));
        let clean = zip_with(&[("a.txt", false)]);
        assert!(
            inspect_content(
                "a.zip",
                &clean[..4],
                clean.len() as u64,
                || clean.clone(),
                &config
            )
            .is_empty()
        );
        let locked = zip_with(&[("a.txt", true)]);
        assert_eq!(
            inspect_content(
                "a.zip",
                &locked[..4],
                locked.len() as u64,
                || locked.clone(),
                &config
            )
            .len(),
            1
        );
        let nested = zip_with(&[("inner.zip", false)]);
        let strict = Config {
            block_nested_archives: true,
            ..Config::default()
        };
        assert_eq!(
            inspect_content(
                "a.zip",
                &nested[..4],
                nested.len() as u64,
                || nested.clone(),
                &strict
            )
            .len(),
            1
        );
        assert!(
            inspect_content(
                "a.zip",
                &nested[..4],
                nested.len() as u64,
                || nested.clone(),
                &config
            )
            .is_empty()
        );
    }

    #[test]
    fn config_validation() {
        assert!(
            Config {
                actions: vec![],
                ..Config::default()
            }
            .validate()
            .is_err()
        );
        assert!(
            Config {
                extra_extensions: vec![".exe".into()],
                ..Config::default()
            }
            .validate()
            .is_err()
        );
        assert!(serde_json::from_str::<Config>(r#"{"action": []}"#).is_err());
    }
}

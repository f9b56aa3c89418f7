//! `attachment-guard`: acts on mail carrying dangerous attachments.
//!
//! An attachment is dangerous when:
//! - its name ends in a blocked extension (executables, scripts, installers, shortcuts, disk images:
//!   `exe scr com bat cmd pif vbs vbe js jse wsf wsh ps1 msi msp hta cpl jar lnk reg dll iso img vhd`
//!   and more), including names that hide it (`invoice.pdf.exe`, `invoice.pdf      .exe`, a
//!   right-to-left override character);
//! - it is a macro-enabled Office file (`docm xlsm pptm dotm xltm xlam ppam potm ppsm sldm`, or a
//!   `macroEnabled` content type);
//! - its content type says it is executable (`application/x-msdownload`, `application/x-dosexec`, ...),
//!   or its content starts with the Windows executable signature (`MZ`) whatever its name;
//! - it is a ZIP archive holding any of the above by name (the central directory is read; nested
//!   archives are reported as unscannable when `block_nested_archives` is on).
//!
//! Configuration (every key optional):
//!
//! ```json
//! { "actions": [{"tag": "dangerous-attachment"}, {"move_to": "Quarantine"}],
//!   "extra_extensions": ["xyz"], "allowed_extensions": ["js"],
//!   "inspect_archives": true, "block_nested_archives": false, "block_encrypted_archives": true }
//! ```
//!
//! `actions` are returned when a dangerous attachment is found (default: tag `dangerous-attachment`,
//! flag `$Dangerous`, move to `Quarantine`). Each finding is logged.

mod inspect;
mod zip;

pub use inspect::{Config, Finding, inspect_content, inspect_name};
pub use zip::zip_entry_names;

#[cfg(target_arch = "wasm32")]
mod component {
    use super::{Config, inspect_content, inspect_name};
    use wasmail_plugin::{Action, Error, Message, Prepared};

    /// How much of an archive's end is read to find its central directory.
    const TAIL: u64 = 256 * 1024;

    /// The configuration, parsed and validated once per configuration (see `Prepared`).
    static CONFIG: Prepared<Config> = Prepared::new();

    fn config() -> Result<&'static Config, Error> {
        CONFIG.get_or_init(|| {
            let config: Config = wasmail_plugin::config::parse_or_default()?;
            config.validate().map_err(Error::new)?;
            Ok(config)
        })
    }

    fn prepare() -> Result<(), Error> {
        config().map(|_| ())
    }

    #[wasmail_plugin::filter(prepare = prepare)]
    fn filter(message: &Message) -> Result<Vec<Action>, Error> {
        let config = config()?;
        let mut findings = Vec::new();
        for attachment in message.attachments() {
            let name = attachment.filename.clone().unwrap_or_default();
            findings.extend(inspect_name(&name, &attachment.content_type, config));
            let head = message.attachment_bytes(attachment.index, 0, 4);
            let tail_at = attachment.size.saturating_sub(TAIL);
            let tail = || message.attachment_bytes(attachment.index, tail_at, TAIL);
            findings.extend(inspect_content(&name, &head, attachment.size, tail, config));
        }
        for finding in &findings {
            wasmail_plugin::log::warn(&finding.to_string());
        }
        if findings.is_empty() {
            Ok(vec![])
        } else {
            Ok(config.actions.clone())
        }
    }
}

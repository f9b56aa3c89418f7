//! Just enough of the ZIP format (APPNOTE 4.3.12-4.3.16) to list the names in an archive's central
//! directory, from the archive's tail. Nothing is decompressed.

const EOCD_SIG: &[u8] = b"PK\x05\x06";
const CENTRAL_SIG: &[u8] = b"PK\x01\x02";
const MAX_ENTRIES: usize = 10_000;

fn u16_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?) as usize)
}

fn u32_at(b: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?) as usize)
}

/// Entry names and whether any entry is encrypted, from the last bytes of a ZIP archive (which must
/// hold the end-of-central-directory record and the central directory). `None` when it cannot be read.
pub fn zip_entry_names(tail: &[u8]) -> Option<(Vec<String>, bool)> {
    let eocd = tail.windows(4).rposition(|w| w == EOCD_SIG)?;
    let entries = u16_at(tail, eocd + 10)?;
    let dir_size = u32_at(tail, eocd + 12)?;
    // The directory ends where the EOCD record starts; offsets inside `tail` are relative to it.
    let mut at = eocd.checked_sub(dir_size)?;
    let mut names = Vec::new();
    let mut encrypted = false;
    for _ in 0..entries.min(MAX_ENTRIES) {
        if tail.get(at..at + 4)? != CENTRAL_SIG {
            return None;
        }
        let flags = u16_at(tail, at + 8)?;
        let name_len = u16_at(tail, at + 28)?;
        let extra_len = u16_at(tail, at + 30)?;
        let comment_len = u16_at(tail, at + 32)?;
        let name = tail.get(at + 46..at + 46 + name_len)?;
        names.push(String::from_utf8_lossy(name).into_owned());
        encrypted |= flags & 1 == 1;
        at += 46 + name_len + extra_len + comment_len;
    }
    Some((names, encrypted))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal stored ZIP with the given (name, encrypted) entries and empty contents.
    pub(crate) fn zip_with(entries: &[(&str, bool)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, enc) in entries {
            let offset = out.len() as u32;
            let flags: u16 = if *enc { 1 } else { 0 };
            out.extend_from_slice(b"PK\x03\x04\x14\x00");
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&[0; 18]);
            out.extend_from_slice(&(name.len() as u16).to_le_bytes());
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(name.as_bytes());
            central.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00");
            central.extend_from_slice(&flags.to_le_bytes());
            central.extend_from_slice(&[0; 18]);
            central.extend_from_slice(&(name.len() as u16).to_le_bytes());
            central.extend_from_slice(&[0; 12]);
            central.extend_from_slice(&offset.to_le_bytes());
            central.extend_from_slice(name.as_bytes());
        }
        let dir_offset = out.len() as u32;
        out.extend_from_slice(&central);
        out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&(central.len() as u32).to_le_bytes());
        out.extend_from_slice(&dir_offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }

    #[test]
    fn lists_names() {
        let zip = zip_with(&[("a.txt", false), ("b/c.exe", true)]);
        assert_eq!(
            zip_entry_names(&zip),
            Some((vec!["a.txt".to_string(), "b/c.exe".to_string()], true))
        );
        // Only the tail is needed.
        assert_eq!(zip_entry_names(&zip[20..]).map(|(n, _)| n.len()), Some(2));
        assert_eq!(zip_entry_names(b"PK\x03\x04garbage"), None);
        // The end record cut before its directory size.
        assert_eq!(zip_entry_names(&zip[..zip.len() - 12]), None);
    }
}

//! Where a stored message is and how it is marked: what a pipeline changes.

/// The mailbox state of a stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEnvelope {
    /// Its folder.
    pub folder: String,
    /// IMAP flags.
    pub flags: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Where a discarded message was before it went to the trash.
    pub trashed_from: Option<String>,
}

impl StoredEnvelope {
    /// The envelope a plugin sees (folder, flags, tags).
    pub fn for_plugins(&self) -> crate::message::Envelope {
        crate::message::Envelope {
            folder: self.folder.clone(),
            flags: self.flags.clone(),
            tags: self.tags.clone(),
        }
    }
}

//! Which messages a list shows or a run covers.

use serde::{Deserialize, Serialize};

/// Filters over a tenant's messages. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageFilter {
    /// Exactly this folder. Without it, the trash is left out.
    pub folder: Option<String>,
    /// Carries this tag.
    pub tag: Option<String>,
    /// Substring of the From name or address, case-insensitive.
    pub from: Option<String>,
    /// Substring of the subject, case-insensitive.
    pub subject: Option<String>,
    /// Date header at or after, Unix ms.
    pub since: Option<i64>,
    /// Date header before, Unix ms.
    pub until: Option<i64>,
    /// Full-text query over subject and text body: every word must occur.
    pub q: Option<String>,
}

/// The messages a run covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// These messages (deduplicated, each checked to be the tenant's), in this order.
    Messages(Vec<String>),
    /// Every message matching the filter when the run is made (an empty filter: every message
    /// outside the trash). Its items are written in chunks by the run's job, not by the request.
    Query(MessageFilter),
}

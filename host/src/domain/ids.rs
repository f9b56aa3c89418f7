//! Identifiers that must not be swapped for one another.
//!
//! A tenant id and a message id are both UUID text; as plain strings one can be passed where the other
//! belongs and every query still compiles (and finds nothing, or worse, the wrong thing). [`TenantId`]
//! makes the tenant a type: every store function takes one, and only authentication, the admin API
//! and the store's own rows make them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A tenant's id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(String);

impl TenantId {
    /// Wraps an id read from a trusted place (a verified token, a stored row, an admin path).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text (for SQL parameters and logs).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A node's id: one per `wasmail serve` or `wasmail worker` process, the owner of the leases it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(String);

impl NodeId {
    /// Wraps a node id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

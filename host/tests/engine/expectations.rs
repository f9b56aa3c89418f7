//! Named expectations over corpus messages, checked on top of the golden files: each was read by a
//! person and says why it must (not) match.

/// (message, an action it must get) under golden/rules.config.json.
pub const RULES_MUST: &[(&str, &str)] = &[];
/// Messages no rule may touch.
pub const RULES_UNTOUCHED: &[&str] = &[];
/// Messages spam-score must move to Junk.
pub const SPAM: &[&str] = &[];
/// Messages spam-score must leave alone.
pub const HAM: &[&str] = &[];
/// Messages attachment-guard must quarantine.
pub const DANGEROUS: &[&str] = &[];
/// Messages attachment-guard must let through.
pub const HARMLESS: &[&str] = &[];

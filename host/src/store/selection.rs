//! Which messages a filter selects, as SQL: the conditions a list, a search and a run over a query
//! share (the run writes its items from the same selection, in chunks).

use super::search;
use super::{Arg, Backend, bind_args};
use crate::domain::{MessageFilter, TenantId};
use sqlx::query::Query;
use sqlx::{Database, Encode, Type};

/// The trash folder: where `discard` moves messages. Bytes are never deleted.
pub const TRASH: &str = "Trash";

/// A WHERE clause with `$n` placeholders and its values, built in order.
#[derive(Default)]
pub(super) struct Conditions {
    sql: Vec<String>,
    args: Vec<Arg>,
}

impl Conditions {
    /// Adds `template`; each `{}` in it becomes the placeholder of `arg`.
    pub(super) fn push(&mut self, template: &str, arg: Arg) {
        self.args.push(arg);
        self.sql
            .push(template.replace("{}", &format!("${}", self.args.len())));
    }

    /// Adds a condition without a value.
    pub(super) fn push_sql(&mut self, sql: &str) {
        self.sql.push(sql.to_string());
    }

    pub(super) fn bind<'q, DB: Database>(
        self,
        query: Query<'q, DB, <DB as Database>::Arguments<'q>>,
    ) -> Query<'q, DB, <DB as Database>::Arguments<'q>>
    where
        String: Encode<'q, DB> + Type<DB>,
        i64: Encode<'q, DB> + Type<DB>,
    {
        bind_args(query, self.args)
    }

    pub(super) fn where_clause(&self) -> String {
        self.sql.join(" AND ")
    }
}

fn like_pattern(s: &str) -> String {
    let escaped = s
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

impl MessageFilter {
    pub(super) fn conditions(&self, tenant: &TenantId, backend: Backend) -> Conditions {
        let mut c = Conditions::default();
        // First, so it is $1 and subqueries can name it.
        c.push("m.tenant_id = {}", Arg::Text(tenant.as_str().to_string()));
        match &self.folder {
            Some(folder) => c.push("m.folder = {}", Arg::Text(folder.clone())),
            // A constant, not a parameter: a plan made for any value of it cannot know how few
            // messages the trash holds.
            None => c.push_sql(&format!("m.folder <> '{TRASH}'")),
        }
        if let Some(tag) = &self.tag {
            c.push(
                // $1 is the tenant, not m.tenant_id: an uncorrelated subquery runs once, over
                // the tag index, instead of once per message.
                "m.id IN (SELECT t.message_id FROM message_tags t \
                 WHERE t.tenant_id = $1 AND t.tag = {})",
                Arg::Text(tag.clone()),
            );
        }
        if let Some(from) = &self.from {
            c.push(
                "(LOWER(COALESCE(m.from_address, '')) LIKE {} ESCAPE '\\' \
                 OR LOWER(COALESCE(m.from_name, '')) LIKE {} ESCAPE '\\')",
                Arg::Text(like_pattern(from)),
            );
        }
        if let Some(subject) = &self.subject {
            c.push(
                "LOWER(COALESCE(m.subject, '')) LIKE {} ESCAPE '\\'",
                Arg::Text(like_pattern(subject)),
            );
        }
        if let Some(since) = self.since {
            c.push("m.date >= {}", Arg::Int(since));
        }
        if let Some(until) = self.until {
            c.push("m.date < {}", Arg::Int(until));
        }
        if let Some(q) = &self.q {
            let terms = search::terms(q);
            match backend {
                Backend::Sqlite => {
                    if let Some(query) = search::fts5_query(&terms) {
                        c.push(
                            "m.search_rowid IN (SELECT rowid FROM message_search \
                             WHERE message_search MATCH {})",
                            Arg::Text(query),
                        );
                    }
                }
                Backend::Postgres if search::pg_unmatchable(&terms) => c.push_sql("1 = 0"),
                Backend::Postgres => {
                    if let Some(query) = search::pg_tsquery(&terms) {
                        c.push(
                            "m.search_rowid IN (SELECT s.rowid FROM message_search s \
                             WHERE s.tenant_id = $1 AND s.document @@ CAST({} AS tsquery))",
                            Arg::Text(query),
                        );
                    }
                }
            }
        }
        c
    }
}

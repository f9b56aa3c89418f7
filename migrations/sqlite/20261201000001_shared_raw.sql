-- Copies share the raw bytes (and the full-text index row) of the message they were copied from,
-- instead of storing them again: copy-to 8 folders of a 1 MiB message stored 8 MiB more, and 8 more
-- index rows of its text body.
--
-- message_raw is now keyed by a raw id: the id of the message that first stored the bytes. Every
-- message row names its bytes in messages.raw_id; a copy takes its original's raw_id (and
-- search_rowid). Rows before this migration keep their own bytes (raw_id = id), so nothing moves
-- and nothing is lost. Raw bytes are never changed or deleted while a message names them (wasmail
-- deletes no message; deleting a tenant clears all of its rows).
--
-- Portable: RENAME COLUMN and ADD COLUMN ... NOT NULL DEFAULT are SQLite (3.25+) and PostgreSQL.

ALTER TABLE message_raw RENAME COLUMN message_id TO raw_id;

ALTER TABLE messages ADD COLUMN raw_id TEXT NOT NULL DEFAULT '';
UPDATE messages SET raw_id = id;

-- Which messages share a blob (for a later purge: bytes go when the last message naming them goes).
CREATE INDEX messages_by_raw ON messages (tenant_id, raw_id);

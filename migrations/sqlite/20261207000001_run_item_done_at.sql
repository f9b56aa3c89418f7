-- When each item of a run was processed (Unix ms; NULL while pending): the order in which a node
-- served tenants is visible afterwards (fairness), and so is how long each message waited.
ALTER TABLE run_items ADD COLUMN done_at BIGINT;

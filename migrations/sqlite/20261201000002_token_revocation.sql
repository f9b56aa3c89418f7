-- Tenant tokens can be revoked: one by one (by `jti`), or all of a tenant's tokens issued before a
-- time. Portable SQL; times are Unix milliseconds. Every request's tenant lookup joins both tables by
-- primary key, so the check costs no extra round trip.

-- The tokens minted (the token itself is never stored: only its id and times), so they can be listed
-- and revoked by id. Rows of expired tokens are pruned when the tenant's next token is minted.
CREATE TABLE tenant_tokens (
    tenant_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT,                   -- set once revoked by id; never cleared
    PRIMARY KEY (tenant_id, jti)
);

-- Per tenant: every token issued before `issued_before` is revoked (it only ever moves forward).
CREATE TABLE token_cutoffs (
    tenant_id     TEXT NOT NULL,
    issued_before BIGINT NOT NULL,
    set_at        BIGINT NOT NULL,
    PRIMARY KEY (tenant_id)
);

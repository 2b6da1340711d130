-- WebAuthn passkey credentials (challenges live in temp_verifications).
CREATE TABLE user_passkeys (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id bytea       NOT NULL,
    public_key    bytea       NOT NULL,
    sign_count    bigint      NOT NULL DEFAULT 0,
    transports    text[]      NOT NULL DEFAULT '{}',
    device_name   text,
    last_used_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_passkeys_credential_id_key UNIQUE (credential_id)
);
--> statement-breakpoint
CREATE INDEX user_passkeys_user_id_idx ON user_passkeys (user_id);

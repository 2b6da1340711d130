-- Short-lived email OTPs and passkey challenges (5-minute lifetime).
-- PostgreSQL has no TTL index (Mongo's TTL monitor ran every 60 s), so expired
-- rows are removed by purge_expired_temp_verifications(), called from a
-- scheduled job; the expires_at index keeps that DELETE cheap.
CREATE TABLE temp_verifications (
    id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid        REFERENCES users (id) ON DELETE CASCADE,
    email      text,
    purpose    text        NOT NULL,
    code_hash  text,
    challenge  text,
    attempts   smallint    NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL DEFAULT now() + interval '5 minutes',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT temp_verifications_purpose_check
        CHECK (purpose IN ('email_otp', 'password_reset', 'passkey_registration', 'passkey_authentication')),
    CONSTRAINT temp_verifications_target_check CHECK (user_id IS NOT NULL OR email IS NOT NULL)
);
--> statement-breakpoint
CREATE INDEX temp_verifications_expires_at_idx ON temp_verifications (expires_at);
--> statement-breakpoint
CREATE INDEX temp_verifications_email_purpose_idx ON temp_verifications (email, purpose);
--> statement-breakpoint
CREATE OR REPLACE FUNCTION purge_expired_temp_verifications() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    removed bigint;
BEGIN
    DELETE FROM temp_verifications WHERE expires_at < now();
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END;
$$;

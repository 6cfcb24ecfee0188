-- Failed logins, counted per account and per client address over a sliding window, so the
-- limit holds across API processes. Rows older than the window are deleted as new ones come.
CREATE TABLE login_failure (
    id        bigserial PRIMARY KEY,
    -- Lower-cased as typed: guesses at an address that has no account are counted too.
    email     text NOT NULL,
    address   text NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failure_email ON login_failure (email, failed_at);
CREATE INDEX login_failure_address ON login_failure (address, failed_at);
CREATE INDEX login_failure_failed_at ON login_failure (failed_at);

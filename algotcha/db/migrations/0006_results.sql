-- Trades of completed backtests stored apart from the job row, and read-only share links.

-- A result of 92,000 trades made the job's JSON about 10 MB, sent whole with every read of
-- the job. Its trades now sit here, 1,000 to a row in time order, each chunk an Arrow IPC
-- stream with LZ4-compressed columns (algotcha/services/trade_log.py); the job's result
-- keeps the first page and the count. EXTERNAL: the chunk is compressed already, so
-- PostgreSQL does not try again.
CREATE TABLE backtest_trade_chunk (
    job_id      bigint  NOT NULL REFERENCES backtest_job (id) ON DELETE CASCADE,
    first_trade integer NOT NULL CHECK (first_trade >= 1),  -- number of its first trade, from 1
    trade_count integer NOT NULL CHECK (trade_count >= 1),
    trades      bytea   NOT NULL,
    PRIMARY KEY (job_id, first_trade)
);
ALTER TABLE backtest_trade_chunk ALTER COLUMN trades SET STORAGE EXTERNAL;

-- One read-only link per result. Only the SHA-256 of the token is kept: the token itself is
-- in the URL the owner hands out. Revoking deletes the row; a new link replaces the old one.
CREATE TABLE result_share (
    job_id      bigint      PRIMARY KEY REFERENCES backtest_job (id) ON DELETE CASCADE,
    token_hash  bytea       NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz
);

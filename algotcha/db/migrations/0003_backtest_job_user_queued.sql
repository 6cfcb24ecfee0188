-- The per-user limit counts only queued jobs: a handful, however long the user's history.
-- This index was first added by editing 0001 after it had shipped, so databases created
-- from that edited file already have it; IF NOT EXISTS lets both kinds converge.
CREATE INDEX IF NOT EXISTS backtest_job_user_queued ON backtest_job (user_id)
    WHERE status = 'queued';

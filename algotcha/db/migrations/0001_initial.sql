-- Users, backtest jobs, notification deliveries, workers, and the "BacktestQueue" view.

CREATE TABLE app_user (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email            text        NOT NULL,
    name             text        NOT NULL DEFAULT '',
    password_hash    text        NOT NULL,
    notify_via       text        NOT NULL DEFAULT 'email'
                     CHECK (notify_via IN ('email', 'telegram', 'both', 'none')),
    telegram_chat_id bigint,
    telegram_blocked boolean     NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX app_user_email_key ON app_user (lower(email));

CREATE TABLE worker (
    id             text        PRIMARY KEY,
    hostname       text        NOT NULL,
    pid            integer     NOT NULL,
    started_at     timestamptz NOT NULL DEFAULT now(),
    heartbeat_at   timestamptz NOT NULL DEFAULT now(),
    stopped_at     timestamptz
);

CREATE TABLE backtest_job (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          bigint      NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    strategy_name    text        NOT NULL,
    payload          jsonb       NOT NULL,
    notify_via       text        NOT NULL
                     CHECK (notify_via IN ('email', 'telegram', 'both', 'none')),
    status           text        NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'cancelled')),
    priority         smallint    NOT NULL DEFAULT 0,
    progress         smallint    NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    attempt          integer     NOT NULL DEFAULT 0,
    cancel_requested boolean     NOT NULL DEFAULT false,
    worker_id        text        REFERENCES worker (id) ON DELETE SET NULL,
    published_at     timestamptz,
    heartbeat_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    completed_at     timestamptz,
    error            text,
    result           jsonb
);
-- Queue order is (priority DESC, created_at, id); the negated priority lets one
-- row comparison walk this index for a queue position.
CREATE INDEX backtest_job_queue_order ON backtest_job ((-priority), created_at, id)
    WHERE status = 'queued';
CREATE INDEX backtest_job_processing ON backtest_job (heartbeat_at) WHERE status = 'processing';
CREATE INDEX backtest_job_unpublished ON backtest_job (created_at)
    WHERE status = 'queued' AND published_at IS NULL;
CREATE INDEX backtest_job_user ON backtest_job (user_id, id DESC);
CREATE INDEX backtest_job_finished ON backtest_job (completed_at DESC)
    WHERE status = 'completed';
CREATE INDEX backtest_job_created ON backtest_job (created_at DESC);

CREATE TABLE notification_delivery (
    job_id      bigint      NOT NULL REFERENCES backtest_job (id) ON DELETE CASCADE,
    channel     text        NOT NULL CHECK (channel IN ('email', 'telegram')),
    status      text        NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts    integer     NOT NULL DEFAULT 0,
    last_error  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    PRIMARY KEY (job_id, channel)
);

-- The original system's table name, so its two monitoring queries run verbatim.
CREATE VIEW "BacktestQueue" AS
SELECT id,
       user_id        AS "userId",
       strategy_name  AS "strategyName",
       status,
       progress,
       notify_via     AS "notifyVia",
       payload,
       attempt,
       error,
       created_at     AS "createdAt",
       started_at     AS "startedAt",
       completed_at   AS "completedAt"
FROM backtest_job;

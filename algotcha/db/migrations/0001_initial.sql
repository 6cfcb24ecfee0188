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
    heartbeat_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    completed_at     timestamptz,
    error            text,
    result           jsonb
);
-- Queue order is (priority DESC, id): ids come from one sequence in creation order, so
-- they order jobs by creation time without ties. The negated priority lets one row
-- comparison walk this index.
CREATE INDEX backtest_job_queue_order ON backtest_job ((-priority), id)
    WHERE status = 'queued';
CREATE INDEX backtest_job_processing ON backtest_job (heartbeat_at) WHERE status = 'processing';
CREATE INDEX backtest_job_user ON backtest_job (user_id, id DESC);
CREATE INDEX backtest_job_finished ON backtest_job (completed_at DESC)
    WHERE status = 'completed';
CREATE INDEX backtest_job_created ON backtest_job (created_at DESC);

-- The transactional outbox: a row per wake-up message that is due but not yet confirmed
-- by RabbitMQ, written in the transaction that makes a job queued and deleted once the
-- message is sent. It is a table of its own so that publishing never locks the job row,
-- which a worker claiming the head of the queue with SKIP LOCKED would otherwise pass over.
CREATE TABLE job_outbox (
    job_id     bigint      PRIMARY KEY REFERENCES backtest_job (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Queued jobs counted per block of 1024 consecutive ids (per priority), kept by a
-- trigger in the same transaction as the status change. A queue position is then the
-- sum over the blocks ahead plus a count inside one block: a few hundred rows read
-- instead of one index entry per job ahead (100,000 of them at worst).
CREATE TABLE queue_block (
    neg_priority integer NOT NULL,
    block        bigint  NOT NULL,
    queued       integer NOT NULL,
    PRIMARY KEY (neg_priority, block)
);

CREATE FUNCTION count_queue_block() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status = 'queued'
       AND (TG_OP = 'DELETE' OR NEW.status <> 'queued') THEN
        UPDATE queue_block SET queued = queued - 1
        WHERE neg_priority = -OLD.priority AND block = OLD.id / 1024;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.status = 'queued'
       AND (TG_OP = 'INSERT' OR OLD.status <> 'queued') THEN
        INSERT INTO queue_block (neg_priority, block, queued)
        VALUES (-NEW.priority, NEW.id / 1024, 1)
        ON CONFLICT (neg_priority, block) DO UPDATE SET queued = queue_block.queued + 1;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER backtest_job_queue_block
    AFTER INSERT OR DELETE OR UPDATE OF status ON backtest_job
    FOR EACH ROW EXECUTE FUNCTION count_queue_block();

-- TRUNCATE fires no row trigger: empty the counts with the table.
CREATE FUNCTION empty_queue_blocks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM queue_block;
    RETURN NULL;
END $$;

CREATE TRIGGER backtest_job_truncated
    AFTER TRUNCATE ON backtest_job
    FOR EACH STATEMENT EXECUTE FUNCTION empty_queue_blocks();

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

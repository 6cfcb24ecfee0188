-- Jobs that run in chunks (sweeps; walk-forward next): API.md "Sweeps and walk-forward".
--
-- A chunked job is one row of the queue like a backtest (one position, one owner, one
-- notification). When a worker claims it, the claim cuts it into job_chunk rows in the same
-- transaction; every idle worker then claims the next undone chunk with a conditional UPDATE,
-- heartbeats it, and writes its chunk_row rows in the transaction that marks it done.
-- A unit is whatever a chunk is made of: a combination of a sweep, a fold of a walk-forward.

ALTER TABLE backtest_job
    ADD COLUMN kind text NOT NULL DEFAULT 'backtest'
        CHECK (kind IN ('backtest', 'sweep', 'walk_forward')),
    -- units of the whole job (NULL for a backtest), and how many are done
    ADD COLUMN units integer CHECK (units > 0),
    ADD COLUMN units_done integer NOT NULL DEFAULT 0,
    -- bars each unit runs over: units x bars x the measured seconds per unit-bar is its cost
    ADD COLUMN unit_bars bigint;

-- The per-user limit of running or queued sweeps, and the work ahead of a queued job.
CREATE INDEX backtest_job_chunked_active ON backtest_job (user_id)
    WHERE kind <> 'backtest' AND status IN ('queued', 'processing');

CREATE TABLE job_chunk (
    job_id       bigint      NOT NULL REFERENCES backtest_job (id) ON DELETE CASCADE,
    chunk        integer     NOT NULL CHECK (chunk >= 0),
    first_unit   integer     NOT NULL,
    end_unit     integer     NOT NULL,  -- exclusive
    status       text        NOT NULL DEFAULT 'undone'
                             CHECK (status IN ('undone', 'running', 'done')),
    attempt      integer     NOT NULL DEFAULT 0,
    worker_id    text        REFERENCES worker (id) ON DELETE SET NULL,
    -- the worker that completed it, kept after the worker row is gone
    done_by      text,
    units_done   integer     NOT NULL DEFAULT 0,
    heartbeat_at timestamptz,
    started_at   timestamptz,
    done_at      timestamptz,
    elapsed_ms   double precision,
    PRIMARY KEY (job_id, chunk),
    CHECK (first_unit >= 0 AND first_unit < end_unit)
);
CREATE INDEX job_chunk_undone ON job_chunk (job_id, chunk) WHERE status = 'undone';
CREATE INDEX job_chunk_running ON job_chunk (heartbeat_at) WHERE status = 'running';
CREATE INDEX job_chunk_done ON job_chunk (done_at DESC) WHERE status = 'done';

-- One row per unit, written once: the primary key makes "every combination exactly once" a
-- constraint, not a hope.
CREATE TABLE chunk_row (
    job_id bigint  NOT NULL,
    unit   integer NOT NULL,
    chunk  integer NOT NULL,
    data   jsonb   NOT NULL,
    -- a float64 series kept out of the JSON (a sweep row's in-sample daily returns)
    series bytea   NOT NULL,
    PRIMARY KEY (job_id, unit),
    FOREIGN KEY (job_id, chunk) REFERENCES job_chunk (job_id, chunk) ON DELETE CASCADE
);

-- Change notifications for the event streams (GET /api/backtest/queue/{id}/events).
--
-- A stream's state is (status, progress, queue position). Status and progress live in the
-- job row; a position changes when any job ahead enters or leaves the queue. So:
--   * backtest_job.revision counts the row's own visible changes (status, progress);
--   * queue_clock.tick counts entries into and exits from the queue, in commit order
--     (the row lock serialises them), so a snapshot's (revision, tick) names its state;
--   * NOTIFY algotcha_job '<id>' after a row change, NOTIFY algotcha_queue '' after a
--     queue change. The empty payload lets PostgreSQL fold the many queue notifications of
--     one transaction into one, and the listener coalesces the rest.
-- Triggers rather than NOTIFY calls in the services: every path that changes a job (claim,
-- progress, cancel, requeue, release, a manual UPDATE by an operator) is covered.

ALTER TABLE backtest_job ADD COLUMN revision bigint NOT NULL DEFAULT 0;

CREATE TABLE queue_clock (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    tick bigint  NOT NULL
);
INSERT INTO queue_clock (one, tick) VALUES (true, 0);

CREATE FUNCTION count_job_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status OR NEW.progress IS DISTINCT FROM OLD.progress THEN
        NEW.revision := OLD.revision + 1;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER backtest_job_revision
    BEFORE UPDATE OF status, progress ON backtest_job
    FOR EACH ROW EXECUTE FUNCTION count_job_revision();

CREATE FUNCTION notify_job_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP = 'INSERT' AND NEW.status = 'queued')
       OR (TG_OP = 'DELETE' AND OLD.status = 'queued')
       OR (TG_OP = 'UPDATE' AND (OLD.status = 'queued') <> (NEW.status = 'queued')) THEN
        UPDATE queue_clock SET tick = tick + 1;
        PERFORM pg_notify('algotcha_queue', '');
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.revision <> OLD.revision THEN
        PERFORM pg_notify('algotcha_job', NEW.id::text);
    END IF;
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('algotcha_job', OLD.id::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER backtest_job_notify
    AFTER INSERT OR DELETE OR UPDATE OF status, progress ON backtest_job
    FOR EACH ROW EXECUTE FUNCTION notify_job_change();

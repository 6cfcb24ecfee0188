-- Notification delivery bookkeeping (publish marker, send claim, provider reference) and
-- one-time Telegram link tokens.

ALTER TABLE notification_delivery
    -- When the notifier message was handed to RabbitMQ; NULL rows are published by the sweeper.
    ADD COLUMN published_at timestamptz,
    -- When the current attempt claimed the row (status 'sending'): the send starts only after
    -- this is committed, so a crash leaves the row 'sending' and it is never sent again.
    ADD COLUMN sending_at   timestamptz,
    -- Telegram's message_id or the email's Message-ID, for support questions.
    ADD COLUMN external_id  text;

CREATE INDEX notification_delivery_unpublished ON notification_delivery (created_at)
    WHERE status = 'pending' AND published_at IS NULL;
CREATE INDEX notification_delivery_sending ON notification_delivery (sending_at)
    WHERE status = 'sending';

-- Finished jobs that asked for a notification: the sweeper finds those whose deliveries were
-- never recorded (the worker died between storing the result and enqueueing them).
CREATE INDEX backtest_job_notify ON backtest_job (completed_at)
    WHERE status IN ('completed', 'failed') AND notify_via <> 'none';

CREATE INDEX app_user_telegram_chat ON app_user (telegram_chat_id)
    WHERE telegram_chat_id IS NOT NULL;

CREATE TABLE telegram_link (
    -- SHA-256 of the token: the token itself is only ever in the deep link the user opens.
    token_hash  bytea       PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX telegram_link_user ON telegram_link (user_id);

-- Scheduling (CONTRACT section 5): what the database itself guarantees, whatever the concurrency, and the
-- transactional outbox that carries every side effect (mail, rest-hooks, reminders).
-- btree_gist lets an exclusion constraint combine equality on a text key with overlap of time ranges
-- (https://www.postgresql.org/docs/current/btree-gist.html); PGlite loads it as a contrib extension.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Every live Slot (any status) of a Schedule, with its time: two Slots of one Schedule never overlap.
-- Kept by the Slot workflow in the transaction that writes the Slot; a deleted Slot has no row.
CREATE TABLE slot_period (
  slot_id text PRIMARY KEY,
  schedule_id text NOT NULL,
  period tstzrange NOT NULL,
  CONSTRAINT slot_period_no_overlap EXCLUDE USING gist (schedule_id WITH =, period WITH &&)
);

-- One row per live (pending or booked) Appointment and Slot it holds: a Slot has at most one live Appointment.
CREATE TABLE slot_hold (
  slot_id text PRIMARY KEY,
  appointment_id text NOT NULL
);
CREATE INDEX slot_hold_appointment ON slot_hold (appointment_id);

-- One row per live Appointment and participant ("Patient/<id>", "Practitioner/<id>"): nobody holds two live
-- Appointments that overlap in time.
CREATE TABLE appointment_hold (
  appointment_id text NOT NULL,
  actor text NOT NULL,
  period tstzrange NOT NULL,
  PRIMARY KEY (appointment_id, actor),
  CONSTRAINT appointment_hold_no_overlap EXCLUDE USING gist (actor WITH =, period WITH &&)
);

-- The transactional outbox (https://microservices.io/patterns/data/transactional-outbox.html): a row is written
-- in the transaction of the change that causes it, and a worker in every server process delivers it later,
-- outside any transaction. Workers claim due rows with FOR UPDATE SKIP LOCKED and a lease (due_at moves past
-- now while a delivery runs), so several servers share the work and a worker killed mid-delivery leaves a row
-- that is delivered again when its lease ends: at least once. Rows hold ids and kinds, never message content.
CREATE TABLE outbox (
  id bigserial PRIMARY KEY,
  -- What to deliver, e.g. 'mail.booking-requested', 'rest-hook'.
  kind text NOT NULL,
  payload jsonb NOT NULL,
  -- pending: to be delivered at due_at; done; dead: gave up after max_attempts.
  state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'dead')),
  due_at timestamptz NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 0,
  max_attempts integer NOT NULL DEFAULT 10,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  done_at timestamptz
);
CREATE INDEX outbox_due ON outbox (due_at) WHERE state = 'pending';

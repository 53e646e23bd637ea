-- FHIR R4 Subscriptions with a rest-hook channel (https://hl7.org/fhir/R4/subscription.html; issue 12). The
-- Subscription resource itself is stored like any other; these tables hold what the server keeps beside it.

-- Who created each Subscription, as their access was then (the token's caller and granted scopes): a notification
-- carries only what this owner may read, decided again at every delivery (src/workflows/subscriptions/notify.ts).
-- `secret` signs the notifications (Standard Webhooks, src/workflows/subscriptions/signing.ts): the server must be
-- able to compute HMACs with it, so it cannot be hashed; it is in no resource, history entry or answer but the
-- create's. Deleted with the Subscription.
CREATE TABLE subscription_owner (
  subscription_id text PRIMARY KEY,
  caller jsonb NOT NULL,
  scopes text[] NOT NULL,
  secret text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per Subscription that is requested or active, with the resource type of its criteria: the types whose
-- writes are events. Kept by the Subscription workflow in the transaction that writes the Subscription.
CREATE TABLE subscription_topic (
  subscription_id text PRIMARY KEY,
  resource_type text NOT NULL
);
CREATE INDEX subscription_topic_type ON subscription_topic (resource_type);

-- Every written version of a watched type is an event in the outbox, in the transaction of the write, whatever
-- wrote it: plain creates grouped into one statement (src/storage/insertBatcher.ts), transactions, updates,
-- patches. A statement-level trigger sees all rows of the statement at once (its transition table), so a grouped
-- create of 64 resources costs one query on subscription_topic, not 64. Deletes are not events: a deleted
-- resource matches no criteria. The event handler decides which Subscriptions the version matches.
-- (One line per statement inside the function body: the migration runner splits scripts at a semicolon that ends
-- a line.)
CREATE FUNCTION subscription_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO outbox (kind, payload)
  SELECT 'subscription.event', jsonb_build_object('type', n.resource_type, 'id', n.id, 'version', n.version_id)
    FROM new_rows n
   WHERE NOT n.deleted AND n.resource_type IN (SELECT t.resource_type FROM subscription_topic t); RETURN NULL; END
$$;

CREATE TRIGGER resource_history_subscription_event
  AFTER INSERT ON resource_history
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION subscription_event();

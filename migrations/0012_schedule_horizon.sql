-- The rolling window of Schedules written before the daily extension existed (issue 12): every live Schedule with
-- availability rules (the project extension) and no extension pending gets one, due now. It makes the Slots the
-- rules call for over the Schedule's planning horizon (idempotent: existing and overlapping Slots are kept) and
-- then comes back every day, as for a Schedule whose rules were written since.
INSERT INTO outbox (kind, payload)
SELECT 'schedule.extend-horizon', jsonb_build_object('schedule', r.id)
  FROM resources r
 WHERE r.resource_type = 'Schedule'
   AND NOT r.deleted
   AND r.content -> 'extension' @> '[{"url": "http://fhir.healthmed.com.br/StructureDefinition/availability"}]'
   AND NOT EXISTS (SELECT 1 FROM outbox o
                    WHERE o.kind = 'schedule.extend-horizon' AND o.state = 'pending' AND o.payload ->> 'schedule' = r.id);

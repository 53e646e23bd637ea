-- Sharing by Consent (CONTRACT section 6; issue 13): what each active Consent opens, flattened so that the access
-- condition of a practitioner's search (src/storage/searchSql.ts, kind 'consent') is one indexed lookup joined to the
-- documents' own index rows. Kept by the Consent workflow (src/workflows/records/consent.ts) in the transaction that
-- writes the Consent: a revocation commits with its rows gone, and every server sees it at once (no cache).
--
-- One row per provision (node, depth-first from 0 at the root) and practitioner it names as IRCP actor, with the
-- provision's criteria intersected with those of the provisions around it (https://hl7.org/fhir/R4/consent.html):
--   period_start/period_end  provision.period, [start, end) at their precision (end exclusive; open: -/+infinity)
--   data_start/data_end      provision.dataPeriod: the document's date must lie in it (NULL: no dataPeriod)
--   documents                provision.data instance ids (NULL: any document of the patient)
--   categories               provision.code, one JSON array of "system|code" per provision that states codes: the
--                            document's category must match one of each (NULL: any category)
-- A document is open to the practitioner when a permit row matches it and no deny row of the same Consent that
-- matches it is as deep or deeper (the most specific provision decides; on a tie, deny).
CREATE TABLE consent_grant (
  consent_id      text        NOT NULL,
  node            integer     NOT NULL,
  depth           integer     NOT NULL,
  permit          boolean     NOT NULL,
  patient_id      text        NOT NULL,
  practitioner_id text        NOT NULL,
  period_start    timestamptz NOT NULL,
  period_end      timestamptz NOT NULL,
  data_start      timestamptz,
  data_end        timestamptz,
  documents       text[],
  categories      jsonb,
  PRIMARY KEY (consent_id, node, practitioner_id)
);
-- A practitioner's search probes it per document, by the document's patient; a request reads the practitioner's rows.
CREATE INDEX consent_grant_practitioner ON consent_grant (practitioner_id, patient_id);

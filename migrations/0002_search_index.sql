-- Search index: one side table per SearchParameter type, one row per indexed value, written at write time
-- in the same statement as the resource (src/storage/repository.ts writeVersion, rows from src/storage/indexer.ts).
-- Every table carries (resource_type, resource_id, code) where code is the SearchParameter code.
-- https://hl7.org/fhir/R4/search.html

-- token: Coding/CodeableConcept/Identifier/ContactPoint/code/boolean/id.
-- text: lower-cased, accent-free display / CodeableConcept.text / Identifier.type.text, for :text.
-- type_system/type_code: Identifier.type coding, for :of-type.
ALTER TABLE search_token ADD COLUMN text text;
ALTER TABLE search_token ADD COLUMN type_system text;
ALTER TABLE search_token ADD COLUMN type_code text;
CREATE INDEX search_token_system ON search_token (resource_type, code, system);

-- string: value is lower-cased and accent-free (default and :contains search); exact is the original (:exact).
CREATE TABLE search_string (
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  code          text NOT NULL,
  value         text NOT NULL,
  exact         text NOT NULL
);
CREATE INDEX search_string_value ON search_string (resource_type, code, value text_pattern_ops);
CREATE INDEX search_string_resource ON search_string (resource_type, resource_id);

-- date/dateTime/instant/Period/Timing as the range [start_at, end_at) it covers at its precision (end exclusive;
-- an open Period end is +infinity, an open start -infinity). Dates without a zone are taken as UTC.
CREATE TABLE search_date (
  resource_type text        NOT NULL,
  resource_id   text        NOT NULL,
  code          text        NOT NULL,
  start_at      timestamptz NOT NULL,
  end_at        timestamptz NOT NULL
);
CREATE INDEX search_date_start ON search_date (resource_type, code, start_at);
CREATE INDEX search_date_end ON search_date (resource_type, code, end_at);
CREATE INDEX search_date_resource ON search_date (resource_type, resource_id);

-- number: the value and the range its precision implies [low, high].
CREATE TABLE search_number (
  resource_type text    NOT NULL,
  resource_id   text    NOT NULL,
  code          text    NOT NULL,
  value         numeric NOT NULL,
  low           numeric NOT NULL,
  high          numeric NOT NULL
);
CREATE INDEX search_number_value ON search_number (resource_type, code, value);
CREATE INDEX search_number_resource ON search_number (resource_type, resource_id);

-- quantity: value with system and code (UCUM) and unit.
CREATE TABLE search_quantity (
  resource_type text    NOT NULL,
  resource_id   text    NOT NULL,
  code          text    NOT NULL,
  system        text,
  unit_code     text,
  unit          text,
  value         numeric NOT NULL,
  low           numeric NOT NULL,
  high          numeric NOT NULL
);
CREATE INDEX search_quantity_value ON search_quantity (resource_type, code, value);
CREATE INDEX search_quantity_resource ON search_quantity (resource_type, resource_id);

-- reference: local targets as (target_type, target_id); anything else (absolute URL, canonical) in url.
-- identifier-only references keep their identifier for :identifier.
CREATE TABLE search_reference (
  resource_type     text NOT NULL,
  resource_id       text NOT NULL,
  code              text NOT NULL,
  target_type       text,
  target_id         text,
  url               text,
  identifier_system text,
  identifier_value  text
);
CREATE INDEX search_reference_target ON search_reference (target_type, target_id, resource_type, code);
CREATE INDEX search_reference_code ON search_reference (resource_type, code, target_id);
CREATE INDEX search_reference_url ON search_reference (resource_type, code, url);
CREATE INDEX search_reference_resource ON search_reference (resource_type, resource_id);

-- uri/url/canonical/oid/uuid values.
CREATE TABLE search_uri (
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  code          text NOT NULL,
  value         text NOT NULL
);
CREATE INDEX search_uri_value ON search_uri (resource_type, code, value);
CREATE INDEX search_uri_resource ON search_uri (resource_type, resource_id);

-- Location.position for `near` (degrees).
CREATE TABLE search_position (
  resource_type text             NOT NULL,
  resource_id   text             NOT NULL,
  latitude      double precision NOT NULL,
  longitude     double precision NOT NULL
);
CREATE INDEX search_position_lat_long ON search_position (latitude, longitude);
CREATE INDEX search_position_resource ON search_position (resource_type, resource_id);

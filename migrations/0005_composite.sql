-- Composite search parameters (https://hl7.org/fhir/R4/search.html#composite) match per element: the values of
-- each component are indexed under `<code>$<component index>` with the number of the element of the
-- composite's expression they came from (e.g. which Observation.component), so a search can require every
-- component to match within one element. NULL for the rows of ordinary parameters.
-- Resources written before this migration have no composite rows: run `npm run reindex` once after upgrading.
ALTER TABLE search_token ADD COLUMN element int;
ALTER TABLE search_string ADD COLUMN element int;
ALTER TABLE search_date ADD COLUMN element int;
ALTER TABLE search_number ADD COLUMN element int;
ALTER TABLE search_quantity ADD COLUMN element int;
ALTER TABLE search_reference ADD COLUMN element int;
ALTER TABLE search_uri ADD COLUMN element int;

-- Indexes the search queries of src/storage/searchPage.ts and searchSql.ts rely on.
-- https://hl7.org/fhir/R4/search.html

-- Live rows by (type, id): a search picks its page of ids index-only (no heap visit for the candidates it
-- rejects) and joins back to `resources` for the page's content only.
CREATE INDEX resources_live ON resources (resource_type, id) WHERE NOT deleted;

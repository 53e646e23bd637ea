-- String search values sort in one order everywhere: byte order of the normalized (lower-cased, accent-free)
-- value, whatever the database's collation. With `COLLATE "C"` the default btree operator class serves both
-- the prefix match (`value LIKE 'abc%'` becomes an index range) and `ORDER BY value`, so `_sort` on a string
-- parameter can read its page off the index in order (src/storage/searchPage.ts) instead of sorting every
-- resource of the type; the text_pattern_ops index of 0002 served the prefix match only.
-- https://www.postgresql.org/docs/current/indexes-opclass.html
DROP INDEX search_string_value;
ALTER TABLE search_string ALTER COLUMN value TYPE text COLLATE "C";
CREATE INDEX search_string_value ON search_string (resource_type, code, value);

-- Token conditions name (resource type, parameter code, value) together, and those columns are far from
-- independent: a specialty code is common among PractitionerRole specialties and rare in the whole table, so
-- per-column statistics estimate such a condition at one row and the planner drives the search from it even
-- when another condition is far more selective (`location.near` in a small area). A multi-column MCV list
-- (https://www.postgresql.org/docs/current/planner-stats.html#PLANNER-STATS-EXTENDED) gives the planner the
-- frequency of the common (type, code, value) combinations. The larger sample makes ANALYZE of search_token
-- read more rows (about 3 s for 2 million rows on the benchmark machine).
CREATE STATISTICS search_token_values (mcv) ON resource_type, code, value FROM search_token;
ALTER STATISTICS search_token_values SET STATISTICS 1000;

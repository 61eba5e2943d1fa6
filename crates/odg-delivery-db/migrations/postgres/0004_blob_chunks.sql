-- Nothing on PostgreSQL: blob content lives in large objects (`blob_store.ref` = the oid), as the
-- original keeps it. The migration exists so that both backends share version numbers.
SELECT 1;

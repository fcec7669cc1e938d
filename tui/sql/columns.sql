-- The store's tables and views with their columns, for the SQL console's schema list.
SELECT table_name, column_name, data_type
FROM information_schema.columns
WHERE table_schema = 'main'
ORDER BY table_name, ordinal_position

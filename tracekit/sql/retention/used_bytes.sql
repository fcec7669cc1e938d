-- Bytes of the store's blocks in use (the blocks of deleted rows are reused once a
-- checkpoint has folded the deletes in): of the store's own database, should the connection
-- have others attached.
SELECT (total_blocks - free_blocks) * block_size FROM pragma_database_size()
WHERE database_name = current_database();

-- Bytes of the store's blocks in use (the blocks of deleted rows are reused once a
-- checkpoint has folded the deletes in).
SELECT (total_blocks - free_blocks) * block_size FROM pragma_database_size();

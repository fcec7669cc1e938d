-- Bytes of the store's blocks in use (the blocks of deleted rows are reused once a
-- checkpoint has folded the deletes in). Not the collector's intake beside it (a second
-- database in the writer's connection), which holds at most a few seconds of exports.
SELECT (total_blocks - free_blocks) * block_size FROM pragma_database_size()
WHERE database_name = current_database();

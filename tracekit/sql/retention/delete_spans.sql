DELETE FROM span_rows WHERE batch_id > $after AND batch_id <= $through;

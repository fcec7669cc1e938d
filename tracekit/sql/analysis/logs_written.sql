-- Whether any log record at all (of any severity) was written in [$from_ns, $to_ns): a window
-- without logs says nothing about errors logged in it.
SELECT EXISTS (
    SELECT 1 FROM logs
    WHERE ("timestamp" >= make_timestamp_ns($from_ns) AND "timestamp" < make_timestamp_ns($to_ns))
       OR ("timestamp" IS NULL AND observed_timestamp >= make_timestamp_ns($from_ns)
           AND observed_timestamp < make_timestamp_ns($to_ns))
) AS logged

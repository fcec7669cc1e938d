-- The last of the next acknowledged exports to move into the store, oldest first, after
-- $moved_through: whole exports, at least one, up to about $max_items spans and logs.
SELECT coalesce(max(seq) FILTER (WHERE running <= $max_items), min(seq))
FROM (SELECT seq, sum(spans + logs) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) AS running
      FROM tracekit_intake.requests
      WHERE seq > $moved_through);

-- The recovery pass reads the open capture attempts last touched before a time, every few
-- seconds, from a table that only grows. Indexed by (state, created_at) over every attempt, a
-- planner that knows the table (after ANALYZE) sees one state in nearly every row, takes the
-- index for useless and visits every order instead, looking its attempts up: a pass that grew
-- with the order count (14-24 ms at 21,200 orders, against 0.5 ms). An index of the open
-- attempts (neither succeeded nor failed, as the settle's statements say it) stays as small
-- as the work in flight, whatever the statistics say, and a settled attempt leaves it instead
-- of being written into it again. The query states the same condition with literal values
-- (`attempts::OPEN_ATTEMPT`), so that both databases can prove it covers the index's rows.
DROP INDEX capture_attempts_by_state;
CREATE INDEX capture_attempts_open ON capture_attempts (updated_at)
    WHERE state <> 'succeeded' AND state <> 'failed';

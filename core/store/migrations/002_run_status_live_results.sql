-- Trace store schema v2 (migration 002): who writes a run and whether it is alive, and each live
-- question's result. A run's stored `status` stays 'running' | 'complete' | 'failed'; readers
-- derive 'interrupted' from a 'running' run whose writer process is gone (see
-- core/store/run_state.py and docs/schema.md).

ALTER TABLE runs ADD COLUMN writer_pid INTEGER;        -- process that last started/resumed the run
ALTER TABLE runs ADD COLUMN writer_host VARCHAR;       -- its host name
ALTER TABLE runs ADD COLUMN heartbeat_at TIMESTAMP;    -- last commit (or start) by that writer
ALTER TABLE runs ADD COLUMN finished_at TIMESTAMP;     -- when the status left 'running'
ALTER TABLE runs ADD COLUMN budget_s DOUBLE;           -- live runs: the competition budget

-- Live questions (kind 'solve'): what the solver answered and why it stopped. NULL for recordings,
-- imports and synthetic runs, which answer nothing themselves.
ALTER TABLE questions_done ADD COLUMN final_answer INTEGER;   -- 0..999 the solver submitted
ALTER TABLE questions_done ADD COLUMN stop_reason VARCHAR;    -- e.g. 'agreement', 'cutoff', 'after_cutoff'
ALTER TABLE questions_done ADD COLUMN level INTEGER;          -- speed level used
ALTER TABLE questions_done ADD COLUMN start_s DOUBLE;         -- competition clock at question start

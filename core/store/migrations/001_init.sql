-- Trace store schema v1 (migration 001): runs, problems, samples, chunks, answers, and the per-question commit marker.
-- Times are seconds since the question started (monotonic clock); token positions are cumulative
-- generated tokens of the sample (prompt excluded).

CREATE TABLE runs (
    run_id        VARCHAR PRIMARY KEY,
    kind          VARCHAR NOT NULL CHECK (kind IN ('record', 'solve', 'import', 'synthetic')),
    model         VARCHAR,
    backend       VARCHAR,
    quantization  VARCHAR,
    hardware      VARCHAR,
    gen_config    JSON,
    policy        JSON,
    created_at    TIMESTAMP NOT NULL DEFAULT current_timestamp,
    status        VARCHAR NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'complete', 'failed')),
    notes         VARCHAR
);

CREATE TABLE problems (
    run_id        VARCHAR NOT NULL,
    problem_id    VARCHAR NOT NULL,
    position      INTEGER NOT NULL,          -- order in which the run served the question
    question      VARCHAR,
    answer        INTEGER CHECK (answer BETWEEN 0 AND 999),  -- NULL when unknown
    PRIMARY KEY (run_id, problem_id)
);

CREATE TABLE samples (
    run_id        VARCHAR NOT NULL,
    problem_id    VARCHAR NOT NULL,
    sample_idx    INTEGER NOT NULL CHECK (sample_idx >= 0),
    kind          VARCHAR NOT NULL CHECK (kind IN ('cot', 'code')),
    prompt_tokens INTEGER NOT NULL DEFAULT 0 CHECK (prompt_tokens >= 0),
    start_s       DOUBLE,                    -- NULL when the source had no timestamps
    end_s         DOUBLE,
    n_tokens      INTEGER NOT NULL CHECK (n_tokens >= 0),
    finish_reason VARCHAR NOT NULL CHECK (finish_reason IN ('stop', 'length', 'abort', 'error')),
    PRIMARY KEY (run_id, problem_id, sample_idx)
);

CREATE TABLE chunks (
    run_id        VARCHAR NOT NULL,
    problem_id    VARCHAR NOT NULL,
    sample_idx    INTEGER NOT NULL,
    seq           INTEGER NOT NULL,          -- chunk number within the sample, from 0
    t_s           DOUBLE,                    -- arrival time since question start
    n_tokens      INTEGER NOT NULL,          -- cumulative generated tokens after this chunk
    -- text delta of this chunk; stored uncompressed: DuckDB's dictionary+FSST compression would
    -- make the file ~30% smaller but cost ~1/3 of the bulk-insert CPU time
    text          VARCHAR USING COMPRESSION uncompressed
);

CREATE TABLE answers (
    run_id        VARCHAR NOT NULL,
    problem_id    VARCHAR NOT NULL,
    sample_idx    INTEGER NOT NULL,
    token_pos     INTEGER NOT NULL,          -- cumulative tokens when the answer appeared
    t_s           DOUBLE,                    -- time since question start (code: when the run finished)
    source        VARCHAR NOT NULL CHECK (source IN ('boxed', 'code')),
    value         INTEGER CHECK (value BETWEEN 0 AND 999),  -- NULL when nothing parsed or the code failed
    code_ok       BOOLEAN,                   -- code answers: did the snippet run successfully
    exec_ms       DOUBLE,                    -- code answers: execution wall time
    error         VARCHAR                    -- code answers: error text (truncated)
);

-- A question's rows are written in one transaction that ends by inserting its marker here;
-- a resumed run skips questions that have a marker and deletes partial rows of those that do not.
CREATE TABLE questions_done (
    run_id        VARCHAR NOT NULL,
    problem_id    VARCHAR NOT NULL,
    wall_s        DOUBLE,                    -- wall time the question took in the run
    committed_at  TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (run_id, problem_id)
);

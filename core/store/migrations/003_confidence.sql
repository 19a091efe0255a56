-- Trace store migration 003: per-token confidence of samples, and the run's logprob setting.
-- One row per sample that has confidence; a sample without a row has none (older stores: no
-- table at all, readers treat that the same). Arrays are little-endian float16 blobs of exactly
-- n_tokens values (2 bytes a token): a 12k-token sample costs 24 KB per array, and a run loads
-- with one scan and one conversion.

-- {"top_k": k, "mode": "raw_logprobs", "backend": "pytorch"}; NULL: logprobs were not asked for
ALTER TABLE runs ADD COLUMN logprobs JSON;

CREATE TABLE sample_confidence (
    run_id        VARCHAR NOT NULL,
    problem_id    VARCHAR NOT NULL,
    sample_idx    INTEGER NOT NULL,
    n_tokens      INTEGER NOT NULL CHECK (n_tokens >= 0),  -- values per array (= samples.n_tokens)
    token_conf    BLOB NOT NULL,  -- float16[n_tokens]: -mean(top-k logprobs) at token i
    token_entropy BLOB,           -- float16[n_tokens]: entropy (nats) of the renormalised top-k
    PRIMARY KEY (run_id, problem_id, sample_idx)
);

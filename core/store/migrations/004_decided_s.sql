-- Trace store migration 004: when the live loop decided a question's stop.
-- Seconds on the question's stream clock (that of chunks.t_s and answers.t_s: since the batch was
-- submitted), before the aborts land and before the final read; NULL for questions that ended
-- with every sample (all_done), for recordings and imports, and for stores before v4. With the
-- chunk timestamps it measures the abort latency (the steps the engine decodes after the
-- decision) directly: `aimo validate` reads it.
ALTER TABLE questions_done ADD COLUMN decided_s DOUBLE;

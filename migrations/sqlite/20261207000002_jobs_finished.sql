-- Pruning finished jobs past their retention finds them by state and finish time.
CREATE INDEX jobs_finished ON jobs (state, finished_at);

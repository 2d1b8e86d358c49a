-- Incremental serving copies hold the rows a load is about to change in a held table per copy
-- (beside the target, created with it), and the copy is a view over the target and that
-- table: the keys recorded for the apply in sluice.serving_pending are no longer used.
DROP TABLE IF EXISTS sluice.serving_pending;

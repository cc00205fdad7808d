-- How far an interrupted no-transaction undo of version $1 got: the detail
-- of the last undo-step / undo-failed entry since anything else was logged
-- for the version (`N/M` or `N/M: error`, N statements done). Not keyed by
-- the undo file's checksum: fixing the failing statement changes it.
SELECT l.detail FROM {log} l
WHERE l.version = $1 AND l.action IN ('undo-step', 'undo-failed')
  AND l.id > coalesce((SELECT max(o.id) FROM {log} o
                       WHERE o.version = $1 AND o.action NOT IN ('undo-step', 'undo-failed')), 0)
ORDER BY l.id DESC LIMIT 1

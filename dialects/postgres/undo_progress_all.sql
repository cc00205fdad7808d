-- `status`: every applied migration whose no-transaction undo stopped part
-- way (the row stays applied until its undo ends): the version and the
-- detail of its last history log entry when that entry is an undo-step or
-- undo-failed (`N/M` or `N/M: error`, N statements done; undo_progress.sql
-- reads the same for one version). Anything logged after it (the undo's
-- end, a repair) ends the state.
SELECT l.version::text, l.detail FROM {log} l
WHERE l.action IN ('undo-step', 'undo-failed')
  AND l.id = (SELECT max(o.id) FROM {log} o WHERE o.version = l.version)
ORDER BY l.version

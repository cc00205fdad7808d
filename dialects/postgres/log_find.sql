-- When an adopt fix with this checksum ($1) was applied, from the history
-- log (an adopt fix has no history row: docs/adopt.md); no row if never.
SELECT done_at::text, done_by FROM {log}
WHERE action = 'adopt-fix' AND new_checksum = $1
ORDER BY id DESC LIMIT 1

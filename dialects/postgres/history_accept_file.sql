-- repair: the applied row takes the file's current checksum and name (an
-- edited or renamed file), keeping its other columns.
UPDATE {history} SET checksum = $2, name = $3 WHERE version = $1

-- repair: the row of a repeatable migration whose file is gone.
DELETE FROM {repeatable} WHERE name = $1

DELETE FROM {history} WHERE version = $1

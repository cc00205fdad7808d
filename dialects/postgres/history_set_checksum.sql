UPDATE {history} SET checksum = $2 WHERE version = $1

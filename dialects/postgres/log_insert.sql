INSERT INTO {log} (version, action, old_checksum, new_checksum, detail) VALUES ($1, $2, $3, $4, $5)

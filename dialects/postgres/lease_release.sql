DELETE FROM {lease} WHERE name = 'migrations' AND owner = $1

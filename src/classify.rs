//! What a server's SQLSTATE means to chatmigrate, as named predicates: the
//! one place the codes are spelled (PostgreSQL's errcodes, Appendix A). The
//! runner, the backends and the commands ask these instead of comparing
//! string literals; [`crate::retry`] turns the answers into retry classes.

/// 55P03 lock_not_available: `lock_timeout` ran out (or NOWAIT). The
/// transaction was rolled back; trying again later may work.
pub fn lock_not_available(code: &str) -> bool {
    code == "55P03"
}

/// 42P04 duplicate_database: CREATE DATABASE found it there already.
pub fn duplicate_database(code: &str) -> bool {
    code == "42P04"
}

/// 23505 unique_violation: a concurrent insert of the same key won (also
/// how two simultaneous CREATE DATABASE or CREATE TABLE of one name can
/// end, on the catalog's unique index).
pub fn unique_violation(code: &str) -> bool {
    code == "23505"
}

/// 55006 object_in_use: e.g. CREATE DATABASE while another session copies
/// the template.
pub fn object_in_use(code: &str) -> bool {
    code == "55006"
}

/// 57014 query_canceled: a cancel request or `statement_timeout`.
pub fn query_canceled(code: &str) -> bool {
    code == "57014"
}

/// 25006 read_only_sql_transaction: a write on a read-only session (a
/// writer that became a replica in a failover).
pub fn read_only_transaction(code: &str) -> bool {
    code == "25006"
}

/// 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now:
/// the server is stopping, crashed, or starting up.
pub fn server_going_away(code: &str) -> bool {
    matches!(code, "57P01" | "57P02" | "57P03")
}

/// 57P03 cannot_connect_now: the server is starting up (or resuming).
pub fn cannot_connect_now(code: &str) -> bool {
    code == "57P03"
}

/// Class 08, connection_exception: the connection failed or was lost.
pub fn connection_exception(code: &str) -> bool {
    code.starts_with("08")
}

/// 08001 sqlclient_unable_to_establish_sqlconnection, 08004
/// sqlserver_rejected_establishment_of_sqlconnection, 08006
/// connection_failure: no connection came about (the server may be starting).
pub fn connection_not_established(code: &str) -> bool {
    matches!(code, "08001" | "08004" | "08006")
}

/// 53300 too_many_connections.
pub fn too_many_connections(code: &str) -> bool {
    code == "53300"
}

/// 42P01 undefined_table or 3F000 invalid_schema_name: a table, or its
/// schema, is not there (yet).
pub fn undefined_table(code: &str) -> bool {
    matches!(code, "42P01" | "3F000")
}

/// 3D000 invalid_catalog_name: the database does not exist.
pub fn undefined_database(code: &str) -> bool {
    code == "3D000"
}

/// 28000 invalid_authorization_specification (pg_hba.conf refused it, or an
/// expired IAM token).
pub fn invalid_authorization(code: &str) -> bool {
    code == "28000"
}

/// 28P01 invalid_password (also an expired IAM token or a rotated secret).
pub fn invalid_password(code: &str) -> bool {
    code == "28P01"
}

/// 42P07 duplicate_table, 42710 duplicate_object (a type), 23505
/// unique_violation: a concurrent CREATE of the same table won.
pub fn lost_create_race(code: &str) -> bool {
    matches!(code, "42P07" | "42710") || unique_violation(code)
}

/// 42P06 duplicate_schema.
pub fn duplicate_schema(code: &str) -> bool {
    code == "42P06"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_by_name() {
        assert!(lock_not_available("55P03") && !lock_not_available("57014"));
        assert!(duplicate_database("42P04") && unique_violation("23505") && object_in_use("55006"));
        assert!(query_canceled("57014") && read_only_transaction("25006"));
        assert!(["57P01", "57P02", "57P03"].iter().all(|c| server_going_away(c)) && !server_going_away("57P04"));
        assert!(connection_exception("08006") && connection_exception("08P01") && !connection_exception("42P01"));
        assert!(undefined_table("42P01") && undefined_table("3F000") && !undefined_table("3D000"));
        assert!(["42P07", "42710", "23505"].iter().all(|c| lost_create_race(c)) && !lost_create_race("42P06"));
        assert!(duplicate_schema("42P06") && invalid_password("28P01") && invalid_authorization("28000"));
    }
}

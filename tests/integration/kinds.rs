//! Kinds of migration files besides `V`: refinery's `U` (unversioned)
//! files are refused with what to do instead (docs/migrations.md);
//! repeatable `R__` files are tests/integration/repeatable.rs's.

use crate::support::*;

#[test]
fn a_refinery_unversioned_file_is_refused_saying_what_to_do() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write("U2__backfill.sql", "CREATE TABLE b (id int);\n");
    let r = cm(&db, &dir, &["up"]);
    r.assert_error(&format!(
        "{}: not a migration file name: U is refinery's unversioned migration, which chatmigrate does not run (docs/migrations.md#refinerys-u-files) (expected V{{version}}__{{name}}.sql, e.g. V20250101120000__create_users.sql)",
        dir.shown("U2__backfill.sql")
    ));
    assert_eq!(
        r.hint(),
        "hint: rename it to V{n}__{name}.sql and apply it with `chatmigrate up --allow-out-of-order` (which applies a file below the highest applied version)"
    );
    assert!(!db.table_exists("a") && !db.table_exists("chatmigrate_history"));
}

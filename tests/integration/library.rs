//! The library API: `chatmigrate::Migrator` runs the same engine in-process.

use crate::support::*;

#[test]
fn migrator_applies_embedded_schema_and_reports_status() {
    let name = Db::fresh_name();
    let db = Db::adopt(&name);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let report = rt
        .block_on(async { chatmigrate::Migrator::from_url(&db.url)?.create_database(true).up().await })
        .unwrap();
    assert!(report.created_database);
    assert_eq!(report.applied.iter().map(|a| a.version).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    let status = rt
        .block_on(async { chatmigrate::Migrator::from_url(&db.url)?.status().await })
        .unwrap();
    assert!(status.iter().all(|e| e.state == chatmigrate::State::Applied));
    let again = rt.block_on(async { chatmigrate::Migrator::from_url(&db.url)?.up().await }).unwrap();
    assert!(again.applied.is_empty());
}

#[test]
fn migrator_with_directories_and_target() {
    let (db, dir) = (Db::new(), Dir::new());
    dir.write("V1__a.sql", "CREATE TABLE a (id int);\n");
    dir.write("V2__b.sql", "CREATE TABLE b (id int);\n");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let r = rt
        .block_on(async {
            chatmigrate::Migrator::from_url(&db.url)?
                .migrations([dir.path()])
                .target(1)
                .up()
                .await
        })
        .unwrap();
    assert_eq!(r.applied.len(), 1);
    let e = rt
        .block_on(async {
            chatmigrate::Migrator::from_url(&db.url)?
                .migrations([dir.path().join("nope")])
                .up()
                .await
        })
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{}: cannot read", dir.path().join("nope").display())),
        "{e}"
    );
}

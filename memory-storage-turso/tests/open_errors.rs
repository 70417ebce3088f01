//! Opening fails with a classified `memory_core::Error` (never a panic or a libsql type):
//! invalid options, a missing directory, a file that is not a database.

use std::time::Duration;

use memory_core::ErrorKind;
use memory_storage_turso::{TursoOptions, TursoStore};

#[tokio::test]
async fn open_errors_are_classified() {
    let dir = tempfile::tempdir().unwrap();

    let bad = TursoOptions {
        max_batch_delay: Duration::from_secs(60),
        ..TursoOptions::default()
    };
    let err = TursoStore::open_local(dir.path().join("a.db"), bad)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(err.violation().unwrap().field, "turso.max_batch_delay");
    assert!(!dir.path().join("a.db").exists(), "nothing created");

    let missing = dir.path().join("no/such/dir/memory.db");
    let err = TursoStore::open_local(&missing, TursoOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Storage, "{err}");
    assert!(!err.is_transient());
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept"
    );

    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 8192]).unwrap();
    let err = TursoStore::open_local(&garbage, TursoOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Corrupt, "{err}");
    assert_eq!(
        std::fs::read(&garbage).unwrap(),
        vec![0x5a; 8192],
        "untouched"
    );
}

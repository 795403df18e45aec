//! The conditional-writes probe against the store double, enforcing or not.

mod support;

use etl_protocol::probe::{PROBE_PREFIX, enforces_conditional_writes};
use support::{Fault, MemStore};

#[tokio::test]
async fn the_probe_tells_an_enforcing_store_from_one_that_ignores_conditions() {
    for enforce in [true, false] {
        let store = MemStore::new(enforce);
        store.put("b", "data.csv", "a,b\n");
        let enforced = enforces_conditional_writes(&store, "b").await.unwrap();
        assert_eq!(enforced, enforce);
        let left: Vec<_> = store
            .state()
            .objects
            .keys()
            .filter(|(_, key)| key.starts_with(PROBE_PREFIX))
            .cloned()
            .collect();
        assert!(left.is_empty(), "the scratch key is deleted: {left:?}");
        assert_eq!(
            store.state().calls,
            ["PutObject", "PutObject", "DeleteObject"]
        );
        assert!(store.object("b", "data.csv").is_some());
    }
}

#[tokio::test]
async fn a_failed_probe_is_an_error_not_an_answer() {
    for at in 0..2 {
        let store = MemStore::new(true);
        store.arm(at, Fault::Transient);
        let error = enforces_conditional_writes(&store, "b").await.unwrap_err();
        assert!(!error.is_precondition_failed(), "{error}");
    }
}

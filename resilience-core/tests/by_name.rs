//! Calls by name (`execute("c", "op", f)`) find their operation among the thread's recently
//! used handles: never another manager's, never an evicted or dropped operation's.

use resilience_core::RetryManager;

fn ok(m: &RetryManager, component: &str, operation: &str) {
    let _: Result<(), std::io::Error> = m.execute(component, operation, || Ok(()));
}

fn calls(m: &RetryManager, component: &str, operation: &str) -> u64 {
    m.metrics_for(component, operation).map_or(0, |s| s.calls)
}

#[test]
fn managers_with_the_same_names_keep_their_own_figures() {
    let (a, b) = (RetryManager::new(), RetryManager::new());
    for _ in 0..3 {
        ok(&a, "api", "get");
        ok(&b, "api", "get");
        ok(&a, "api", "get");
    }
    assert_eq!((calls(&a, "api", "get"), calls(&b, "api", "get")), (6, 3));
}

#[test]
fn a_new_manager_never_gets_a_dropped_ones_operation() {
    for round in 0..5 {
        let m = RetryManager::new();
        ok(&m, "api", "get");
        ok(&m, "api", "get");
        assert_eq!(calls(&m, "api", "get"), 2, "round {round}");
    }
}

#[test]
fn names_that_differ_find_different_operations() {
    let m = RetryManager::new();
    let names = [
        ("a", "bc"),
        ("ab", "c"),
        ("a", "b"),
        ("b", "a"),
        ("", "ab"),
        ("ab", ""),
    ];
    for (i, (c, o)) in names.iter().enumerate() {
        for _ in 0..=i {
            ok(&m, c, o);
        }
    }
    for (i, (c, o)) in names.iter().enumerate() {
        assert_eq!(calls(&m, c, o), i as u64 + 1, "{c:?} {o:?}");
    }
}

#[test]
fn an_evicted_operation_called_again_starts_anew() {
    let m = RetryManager::builder().max_operations(10).build().unwrap();
    ok(&m, "tenant", "first");
    ok(&m, "tenant", "first");
    for id in 0..200 {
        ok(&m, "tenant", &id.to_string());
    }
    assert!(m.metrics_for("tenant", "first").is_none(), "evicted");
    ok(&m, "tenant", "first");
    assert_eq!(calls(&m, "tenant", "first"), 1);
}

#[test]
fn an_operation_called_by_name_on_another_thread_is_evicted_once_that_thread_lets_go() {
    let m = std::sync::Arc::new(RetryManager::builder().max_operations(10).build().unwrap());
    // That thread ends, and with it its recent handles. Joined, not scoped: a scope may end
    // before the thread's thread-locals are dropped.
    let other = std::sync::Arc::clone(&m);
    std::thread::spawn(move || ok(&other, "tenant", "elsewhere"))
        .join()
        .unwrap();
    for id in 0..200 {
        ok(&m, "tenant", &id.to_string());
    }
    assert!(m.metrics_for("tenant", "elsewhere").is_none());
    assert!(m.metrics().operations.len() <= 11);
}

#[test]
fn nested_calls_of_one_operation_count_both() {
    let m = RetryManager::new();
    let outer: Result<(), std::io::Error> = m.execute("api", "get", || {
        ok(&m, "api", "get");
        Ok(())
    });
    outer.unwrap();
    ok(&m, "api", "get");
    assert_eq!(calls(&m, "api", "get"), 3);
}

#[test]
fn a_call_that_panics_leaves_the_operation_usable() {
    let m = RetryManager::new();
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Result<(), std::io::Error> = m.execute("api", "get", || panic!("boom"));
    }));
    assert!(panicked.is_err());
    ok(&m, "api", "get");
    let figures = m.metrics_for("api", "get").unwrap();
    assert_eq!((figures.calls, figures.successes), (2, 1));
}

#[test]
fn many_threads_calling_by_name_lose_nothing() {
    let m = RetryManager::new();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for i in 0..1_000 {
                    ok(&m, "api", ["a", "b", "c", "d", "e", "f"][i % 6]);
                }
            });
        }
    });
    let total: u64 = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .map(|o| calls(&m, "api", o))
        .sum();
    assert_eq!(total, 4_000);
}

#[test]
fn async_calls_by_name_share_the_recent_handle() {
    let m = RetryManager::new();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        ok(&m, "api", "get");
        let (x, y): (Result<u8, std::io::Error>, Result<u8, std::io::Error>) = tokio::join!(
            m.execute_async("api", "get", || async { Ok(1) }),
            m.execute_async("api", "get", || async { Ok(2) })
        );
        assert_eq!((x.unwrap(), y.unwrap()), (1, 2));
    });
    assert_eq!(calls(&m, "api", "get"), 3);
}

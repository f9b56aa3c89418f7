//! Hostile guests are contained: each ends in the right failure within its limit, and the next normal
//! call on the same runtime succeeds.

use crate::helpers::{TENANT, block_on, config, guest, message, plugin, runtime};
use wasmail::sandbox::{Action, Failure, FailureKind, LoadError, Outcome, PluginLimits};

const SAMPLE: &[u8] = b"From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n";

fn run_hostile(what: &str, limits: &PluginLimits) -> Result<Outcome, Failure> {
    runtime().run_blocking(
        &plugin("test_hostile"),
        message(SAMPLE),
        config(&format!(r#"{{"do": "{what}"}}"#)),
        limits,
    )
}

/// The well-behaved call that must work after every hostile one.
fn assert_next_call_succeeds() {
    let outcome =
        run_hostile("ok", &PluginLimits::default()).expect("a normal call after a hostile one");
    assert_eq!(
        outcome.actions,
        vec![Action::Tag(format!("size:{}", SAMPLE.len()))]
    );
}

fn expect_failure(what: &str, limits: &PluginLimits, kind: FailureKind) -> Failure {
    let failure = run_hostile(what, limits).expect_err(what);
    assert_eq!(failure.kind, kind, "{what}: {failure:?}");
    assert_next_call_succeeds();
    failure
}

#[test]
fn infinite_loop_hits_the_deadline() {
    let limits = PluginLimits {
        deadline_ms: 50,
        fuel_base: u64::MAX / 4,
        ..PluginLimits::default()
    };
    let failure = expect_failure("loop", &limits, FailureKind::Deadline);
    assert!(
        failure.duration.as_millis() >= 50,
        "stopped before its deadline: {:?}",
        failure.duration
    );
    assert!(failure.message.contains("50 ms"));
}

#[test]
fn infinite_loop_runs_out_of_fuel() {
    let limits = PluginLimits {
        fuel_base: 5_000_000,
        fuel_per_byte: 0,
        deadline_ms: 10_000,
        ..PluginLimits::default()
    };
    let failure = expect_failure("loop", &limits, FailureKind::Fuel);
    assert!(
        failure.fuel_used >= 5_000_000,
        "fuel used {}",
        failure.fuel_used
    );
}

#[test]
fn unbounded_memory_growth_hits_the_memory_limit() {
    let limits = PluginLimits {
        memory_bytes: 16 << 20,
        ..PluginLimits::default()
    };
    let failure = expect_failure("grow", &limits, FailureKind::Memory);
    assert!(
        failure.message.contains(&(16u64 << 20).to_string()),
        "{}",
        failure.message
    );
    assert!(
        failure.backtrace.iter().any(|f| f.contains("malloc")),
        "{:?}",
        failure.backtrace
    );
}

#[test]
fn deep_recursion_traps() {
    let failure = expect_failure("recurse", &PluginLimits::default(), FailureKind::Trap);
    // Named frames, with the repeated recursion folded into one line.
    assert!(
        failure
            .backtrace
            .iter()
            .any(|f| f.contains("test_hostile::recurse") && f.contains("(x")),
        "{:?}",
        failure.backtrace
    );
}

#[test]
fn panic_reports_its_message_and_location() {
    let failure = expect_failure("panic", &PluginLimits::default(), FailureKind::Trap);
    let panic = failure.panic.expect("panic message");
    assert!(
        panic.contains("hostile guest panicked on purpose"),
        "{panic}"
    );
    assert!(panic.contains("lib.rs:"), "{panic}");
    assert!(
        failure
            .logs
            .iter()
            .any(|l| l.message.contains("panicked at"))
    );
}

#[test]
fn process_exit_ends_only_the_call() {
    let failure = expect_failure("exit", &PluginLimits::default(), FailureKind::Trap);
    // WASI 0.2's `exit` carries success or failure, not the code: 3 arrives as a failure.
    assert_eq!(failure.message, "Exited with i32 exit status 1");
}

#[test]
fn huge_outputs_are_invalid_output() {
    let many = expect_failure(
        "many-actions",
        &PluginLimits::default(),
        FailureKind::InvalidOutput,
    );
    assert!(many.message.contains("100000 actions"), "{}", many.message);
    let long = expect_failure(
        "huge-tag",
        &PluginLimits::default(),
        FailureKind::InvalidOutput,
    );
    assert!(long.message.contains("8388608 bytes"), "{}", long.message);
}

#[test]
fn log_flood_is_capped_and_counted() {
    let limits = PluginLimits {
        log_bytes: 4096,
        ..PluginLimits::default()
    };
    let outcome = run_hostile("log-flood", &limits).expect("logging is not a failure");
    let kept: usize = outcome.logs.iter().map(|l| l.message.len()).sum();
    assert!(kept <= 4096, "kept {kept} bytes");
    assert!(
        outcome.logs_dropped > 1000,
        "dropped {}",
        outcome.logs_dropped
    );
    assert_next_call_succeeds();
}

#[test]
fn stderr_is_captured() {
    let outcome = run_hostile("stderr", &PluginLimits::default()).expect("ok");
    assert_eq!(outcome.stderr, "written to stderr\n");
}

#[test]
fn files_cannot_be_read() {
    let failure = expect_failure("open-file", &PluginLimits::default(), FailureKind::Plugin);
    assert!(
        failure.message.starts_with("open failed"),
        "{}",
        failure.message
    );
    assert!(!failure.message.contains("root:"));
}

#[test]
fn socket_use_is_refused_at_upload() {
    match block_on(runtime().load(TENANT, &guest("test_socket"), &PluginLimits::default())) {
        Err(LoadError::ForbiddenImport(name)) => {
            assert!(name.starts_with("wasi:sockets/"), "{name}")
        }
        other => panic!("expected a forbidden import, got {other:?}"),
    }
    assert_next_call_succeeds();
}

#[test]
fn imports_the_host_does_not_offer_are_refused() {
    match block_on(runtime().load(
        TENANT,
        &guest("test_forbidden_import"),
        &PluginLimits::default(),
    )) {
        Err(LoadError::ForbiddenImport(name)) => assert_eq!(name, "evil:net/raw"),
        other => panic!("expected a forbidden import, got {other:?}"),
    }
}

#[test]
fn a_core_module_is_not_a_component() {
    let module = wat::parse_str(r#"(module (func (export "filter")))"#).expect("wat");
    match block_on(runtime().load(TENANT, &module, &PluginLimits::default())) {
        Err(LoadError::NotComponent(why)) => {
            assert!(why.contains("core WebAssembly module"), "{why}")
        }
        other => panic!("expected NotComponent, got {other:?}"),
    }
}

#[test]
fn a_17_mib_upload_is_too_large() {
    let mut bytes = guest("rules");
    bytes.resize(17 << 20, 0);
    match block_on(runtime().load(TENANT, &bytes, &PluginLimits::default())) {
        Err(LoadError::TooLarge { size, limit }) => {
            assert_eq!(size, 17 << 20);
            assert_eq!(limit, 16 << 20);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

#[test]
fn a_corrupt_component_is_invalid() {
    let mut bytes = guest("rules");
    let len = bytes.len();
    bytes.truncate(len / 2);
    let error = block_on(runtime().load(TENANT, &bytes, &PluginLimits::default()))
        .expect_err("truncated component");
    assert!(
        matches!(error, LoadError::Invalid(_) | LoadError::Compile(_)),
        "{error:?}"
    );
}

#[test]
fn instantiation_failure_when_initial_memory_exceeds_the_limit() {
    // The SDK gives guests 2 MiB of initial memory; a 1 MiB limit refuses them before they run.
    let limits = PluginLimits {
        memory_bytes: 1 << 20,
        ..PluginLimits::default()
    };
    let failure = run_hostile("ok", &limits).expect_err("too little memory to instantiate");
    assert_eq!(failure.kind, FailureKind::Memory, "{failure:?}");
    assert_next_call_succeeds();
}

mod prepare {
    use crate::helpers::{guest, runtime};
    use wasmail::sandbox::{Keep, LoadError, PluginLimits};

    fn prepare(config: &str, limits: &PluginLimits) -> LoadError {
        runtime()
            .prepare_blocking("test", &guest("test_hostile"), config, limits, Keep::Cached)
            .expect_err(config)
    }

    #[test]
    fn a_looping_prepare_is_stopped() {
        let limits = PluginLimits {
            deadline_ms: 50,
            fuel_base: u64::MAX / 4,
            ..PluginLimits::default()
        };
        match prepare(r#"{"prepare": "loop"}"#, &limits) {
            LoadError::Prepare(why) => assert!(why.contains("interrupt"), "{why}"),
            other => panic!("expected Prepare, got {other:?}"),
        }
        let limits = PluginLimits {
            fuel_base: 1_000_000,
            ..PluginLimits::default()
        };
        match prepare(r#"{"prepare": "loop"}"#, &limits) {
            LoadError::Prepare(why) => assert!(why.contains("fuel"), "{why}"),
            other => panic!("expected Prepare, got {other:?}"),
        }
        super::assert_next_call_succeeds();
    }

    #[test]
    fn a_panicking_prepare_reports_the_panic() {
        match prepare(r#"{"prepare": "panic"}"#, &PluginLimits::default()) {
            LoadError::Prepare(why) => assert!(
                why.contains("hostile guest panicked while preparing"),
                "{why}"
            ),
            other => panic!("expected Prepare, got {other:?}"),
        }
    }

    #[test]
    fn a_rejected_configuration_fails_the_preparation() {
        match prepare(r#"{"prepare": "reject"}"#, &PluginLimits::default()) {
            LoadError::Rejected(why) => assert_eq!(why, "this configuration is refused"),
            other => panic!("expected Rejected, got {other:?}"),
        }
    }
}

//! `busbar connector new|inspect|test`, run as the built binary on components compiled from source during the
//! test run: `new --lang rust` scaffolds a project, cargo builds it for wasm32-wasip2, and the binary inspects and
//! tests the result. Variants of the scaffold (one that panics in `write`, a plain WASI command) and files that are
//! no component at all check that mistakes end with a clear error and the right exit code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// Runs `busbar` with `args`, compiled code cached under `cache`.
fn busbar(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_busbar"))
        .args(args)
        .env("BUSBAR_CACHE_DIR", cache)
        .env("BUSBAR_LOG", "info")
        .output()
        .expect("running busbar")
}

fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Where every guest of this test is built: shared so that wit-bindgen and serde are compiled once per checkout.
fn guest_target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("connector-cli-guests")
}

/// `cargo build --release --target wasm32-wasip2` in `project`; returns the path of `<crate>.wasm` (for a
/// library) or `<crate>.wasm` of the binary.
fn cargo_build_wasm(project: &Path, artifact: &str) -> PathBuf {
    // One build at a time: they share a target dir, and cargo's lock would only make the others wait anyway.
    static BUILD: Mutex<()> = Mutex::new(());
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir"])
        .arg(guest_target_dir())
        .current_dir(project);
    // The outer build's settings are for the host, not for the guest.
    for var in ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "RUSTC_WRAPPER"] {
        command.env_remove(var);
    }
    let output = command.output().expect("running cargo");
    assert!(
        output.status.success(),
        "cargo build --target wasm32-wasip2 in {} failed:\n{}",
        project.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let wasm = guest_target_dir().join("wasm32-wasip2/release").join(format!("{artifact}.wasm"));
    assert!(wasm.exists(), "cargo succeeded but {} is missing", wasm.display());
    wasm
}

struct Scaffold {
    /// Keeps the projects and the cache alive for the whole test binary.
    _root: tempfile::TempDir,
    cache: PathBuf,
    project: PathBuf,
    /// The scaffold, built unchanged.
    wasm: PathBuf,
    /// The scaffold with a `write` that panics on the second event.
    trapping: PathBuf,
}

/// `busbar connector new --lang rust my-sink`, built as scaffolded and as a trapping variant; once per test run.
fn scaffold() -> &'static Scaffold {
    static SCAFFOLD: OnceLock<Scaffold> = OnceLock::new();
    SCAFFOLD.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("cache");
        let project = root.path().join("my-sink");
        let out = busbar(&cache, &["connector", "new", "--lang", "rust", "my-sink", "--dir", project.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "connector new failed: {stdout}{stderr}");
        assert!(stdout.contains("created"), "{stdout}");
        for file in ["Cargo.toml", "src/lib.rs", "build.sh", "wit/connector.wit", "wit/deps/http.wit"] {
            assert!(project.join(file).is_file(), "connector new did not write {file}");
        }
        let wasm = cargo_build_wasm(&project, "my_sink");
        let wasm = std::fs::copy(&wasm, root.path().join("my-sink.wasm")).map(|_| root.path().join("my-sink.wasm")).unwrap();

        // The same project with a bug: `write` panics on the event of type order.updated (the harness's third
        // sample event).
        let trap_project = root.path().join("trap-sink");
        let out = busbar(&cache, &["connector", "new", "--lang", "rust", "trap-sink", "--dir", trap_project.to_str().unwrap()]);
        assert!(out.status.success(), "{:?}", text(&out));
        let lib = trap_project.join("src/lib.rs");
        let source = std::fs::read_to_string(&lib).unwrap();
        let buggy = source.replacen(
            "log(Level::Info, &line);",
            "log(Level::Info, &line);\n                    if event.detail_type == \"order.updated\" { panic!(\"bug in trap-sink at {}\", event.id) }",
            1,
        );
        assert_ne!(source, buggy, "the scaffold's write no longer logs each line; update this test's patch");
        std::fs::write(&lib, buggy).unwrap();
        let trapping = cargo_build_wasm(&trap_project, "trap_sink");

        Scaffold { cache, project, wasm, trapping, _root: root }
    })
}

#[test]
fn new_rust_connector_builds_and_passes_the_compliance_harness() {
    let s = scaffold();
    let out = busbar(&s.cache, &["connector", "test", s.wasm.to_str().unwrap(), "--config", r#"{"prefix": "hello"}"#]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "compliance failed:\n{stdout}\n{stderr}");
    for line in [
        "PASS describe is valid: my-sink 0.1.0 (sink, world sink)",
        "PASS a config that breaks the schema is rejected before open",
        "PASS open accepts the config",
        "PASS write returns one outcome per event: 3 events: 3 ok, 0 retryable, 0 fatal",
        "PASS restart opens a fresh instance",
        "PASS write works after a restart",
        "PASS close is clean",
        "PASS no failure within the limits",
        "all checks passed",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // The guest really ran: its log calls reach busbar's log with the prefix from the config.
    assert!(stderr.contains("hello order.created {\"id\":1,\"total\":12.5,\"customer\":\"ada\"}"), "{stderr}");

    // --json gives the same report, machine-readable.
    let out = busbar(&s.cache, &["connector", "test", s.wasm.to_str().unwrap(), "--config", r#"{"prefix": "x"}"#, "--json"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 8, "{report:#}");
    assert!(checks.iter().all(|c| c["passed"] == true), "{report:#}");
}

#[test]
fn test_writes_the_events_given_as_input() {
    let s = scaffold();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    std::fs::write(
        &input,
        "{\"detail-type\": \"user.signed-up\", \"detail\": {\"user\": \"grace\"}}\n\n{\"plain\": true}\n",
    )
    .unwrap();
    let out = busbar(
        &s.cache,
        &["connector", "test", s.wasm.to_str().unwrap(), "--config", r#"{"prefix": ">>"}"#, "--input", input.to_str().unwrap()],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("2 events: 2 ok, 0 retryable, 0 fatal"), "{stdout}");
    assert!(stderr.contains(">> user.signed-up {\"user\":\"grace\"}"), "{stderr}");
    assert!(stderr.contains(">>  {\"plain\": true}"), "{stderr}");

    // A line that is not JSON names the file and line.
    std::fs::write(&input, "{\"detail\": 1}\nnot json\n").unwrap();
    let out = busbar(&s.cache, &["connector", "test", s.wasm.to_str().unwrap(), "--config", r#"{"prefix": "x"}"#, "--input", input.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("{}:2: not a JSON value", input.display())), "{stderr}");
}

#[test]
fn inspect_prints_world_exports_imports_and_config_schema() {
    let s = scaffold();
    let wasm = s.wasm.to_str().unwrap();
    let out = busbar(&s.cache, &["connector", "inspect", wasm]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for line in [
        "my-sink 0.1.0 — logs each event with a prefix",
        "kind:    sink",
        "world:   busbar:connector/sink@0.1.0",
        "needs:   nothing",
        "exports:\n  busbar:connector/sink-connector@0.1.0: describe, open, write, close (types: description, error, event, outcome)\nimports:",
        "  busbar:connector/log@0.1.0: log (types: level)",
        "  wasi:cli/stderr@0.2.6 (1 functions, 1 types)",
        "config schema:",
        "\"prefix\"",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }

    let out = busbar(&s.cache, &["connector", "inspect", wasm, "--json"]);
    assert!(out.status.success(), "{:?}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["name"], "my-sink");
    assert_eq!(report["kind"], "sink");
    assert_eq!(report["world"], "busbar:connector/sink@0.1.0");
    assert_eq!(report["config_schema"]["required"], serde_json::json!(["prefix"]));
    assert_eq!(report["config_schema"]["additionalProperties"], false);
    let exports = report["exports"].as_array().unwrap();
    assert_eq!(exports.len(), 1, "{report:#}");
    assert_eq!(exports[0]["name"], "busbar:connector/sink-connector@0.1.0");
    assert_eq!(exports[0]["functions"], serde_json::json!(["describe", "open", "write", "close"]));
    assert_eq!(exports[0]["types"], serde_json::json!(["description", "error", "event", "outcome"]));
    let imports = report["imports"].as_array().unwrap();
    assert!(imports.iter().any(|i| i["name"] == "busbar:connector/log@0.1.0" && i["functions"] == serde_json::json!(["log"])), "{report:#}");
}

#[test]
fn a_trapping_connector_fails_the_harness_with_the_panic_message() {
    let s = scaffold();
    let out = busbar(&s.cache, &["connector", "test", s.trapping.to_str().unwrap(), "--config", r#"{"prefix": "p"}"#]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "a failed check exits 1:\n{stdout}\n{stderr}");
    assert!(stdout.contains("PASS open accepts the config"), "{stdout}");
    let failed = stdout.lines().find(|l| l.contains("FAIL write returns one outcome per event")).unwrap_or_else(|| {
        panic!("no failed write check in:\n{stdout}")
    });
    assert!(failed.contains("trap"), "{failed}");
    assert!(stdout.contains("bug in trap-sink at sample-order.updated"), "the guest's panic message is reported:\n{stdout}");
    assert!(stdout.contains("some checks FAILED"), "{stdout}");
}

#[test]
fn bad_input_is_a_clear_error_with_exit_code_2() {
    let s = scaffold();
    let dir = tempfile::tempdir().unwrap();
    let wasm = s.wasm.to_str().unwrap();
    let check = |args: &[&str], expected: &[&str]| {
        let out = busbar(&s.cache, args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "busbar {args:?}:\n{stdout}\n{stderr}");
        for e in expected {
            assert!(stderr.contains(e), "busbar {args:?}: expected {e:?} in:\n{stderr}");
        }
    };

    let missing = dir.path().join("nowhere.wasm");
    check(&["connector", "inspect", missing.to_str().unwrap()], &["reading connector", "nowhere.wasm", "No such file"]);
    check(&["connector", "test", missing.to_str().unwrap()], &["nowhere.wasm", "No such file"]);
    let out = busbar(&s.cache, &["connector", "inspect", missing.to_str().unwrap()]);
    assert_eq!(text(&out).1.matches("No such file").count(), 1, "the cause is said once: {:?}", text(&out).1);

    let not_wasm = dir.path().join("notes.wasm");
    std::fs::write(&not_wasm, "these are notes, not WebAssembly").unwrap();
    check(&["connector", "inspect", not_wasm.to_str().unwrap()], &["notes.wasm", "not a WebAssembly file"]);

    // A core module (what `--target wasm32-unknown-unknown` or wasip1 produce) is not a component.
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    check(
        &["connector", "test", core.to_str().unwrap()],
        &["core.wasm", "core WebAssembly module, not a component", "wasm32-wasip2"],
    );

    // A real component of another world: a WASI command built from source.
    let command = dir.path().join("hello-cmd");
    std::fs::create_dir_all(command.join("src")).unwrap();
    std::fs::write(
        command.join("Cargo.toml"),
        "[package]\nname = \"hello-cmd\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(command.join("src/main.rs"), "fn main() { println!(\"hello\"); }\n").unwrap();
    let command_wasm = cargo_build_wasm(&command, "hello-cmd");
    check(
        &["connector", "inspect", command_wasm.to_str().unwrap()],
        &["hello-cmd.wasm", "implements neither the `sink` world", "nor the `source` world"],
    );

    // Config: not JSON, or JSON that breaks the connector's schema (with the JSON path).
    check(&["connector", "test", wasm, "--config", "{prefix"], &["--config", "not valid JSON"]);
    check(&["connector", "test", wasm, "--config", r#"{"prefix": 7}"#], &["config rejected at /prefix", "string"]);
    check(&["connector", "test", wasm, "--config", r#"{}"#], &["config rejected at /", "prefix"]);
    check(&["connector", "test", wasm, "--grants", r#"{"http": "all"}"#], &["--grants"]);
    check(&["connector", "test", "builtin:nope"], &["unknown built-in connector \"nope\"", "built-ins are"]);

    // new: a bad name, and a directory that is not empty.
    check(&["connector", "new", "--lang", "rust", "My_Sink"], &["My_Sink", "lowercase letters"]);
    check(
        &["connector", "new", "--lang", "rust", "again", "--dir", s.project.to_str().unwrap()],
        &["already exists and is not empty"],
    );
}

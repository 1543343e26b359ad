//! Table-driven pipeline-file fixtures: every file in `fixtures/pipelines/bad/` must be rejected with exactly
//! the diagnostics in the `.errors` file beside it, and every file in `fixtures/pipelines/good/` must pass.
//! `BUSBAR_BLESS=1` rewrites the `.errors` files from the current output (review the diff before committing).

use std::fs;
use std::path::{Path, PathBuf};

use busbar_rules::PatternOptions;
use busbar_rules::pipeline::{self, LoadContext, SourceFile};

const BUILTINS: [&str; 7] = [
    "http-webhook",
    "http-poll",
    "sql-poll",
    "http",
    "sql",
    "topic",
    "log",
];
const FIXTURES: &str = "tests/fixtures/pipelines";

/// The environment the fixtures are checked in: two variables set, everything else unset.
fn env(name: &str) -> Option<String> {
    match name {
        "SHOP_DB_URL" => Some("postgres://shop:hunter2@127.0.0.1:5432/shop".to_owned()),
        "GH_SECRET" => Some("gh-webhook-secret".to_owned()),
        "BAD_URL" => Some("hunter2".to_owned()),
        _ => None,
    }
}

fn read_file(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|err| err.to_string())
}

fn check_connector_file(path: &Path) -> Result<(), String> {
    fs::metadata(path)
        .map(|_| ())
        .map_err(|err| err.to_string())
}

fn context() -> LoadContext<'static> {
    LoadContext {
        builtin_connectors: &BUILTINS,
        pattern_options: PatternOptions::default(),
        env: &env,
        read_file: &read_file,
        check_connector_file: &check_connector_file,
    }
}

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(Path::new(FIXTURES).join(kind))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {FIXTURES}/{kind}");
    files
}

/// Diagnostics for one file, one per line, with file names relative to the fixture folder.
fn diagnostics(files: &[&Path]) -> String {
    let texts: Vec<(String, String)> = files
        .iter()
        .map(|path| {
            (
                path.display().to_string(),
                fs::read_to_string(path).unwrap(),
            )
        })
        .collect();
    let sources: Vec<SourceFile<'_>> = texts
        .iter()
        .map(|(name, text)| SourceFile {
            name: name.as_str(),
            text: text.as_str(),
        })
        .collect();
    let checked = pipeline::check(&sources, &context());
    let mut out = String::new();
    for diagnostic in &checked.diagnostics {
        out.push_str(&diagnostic.to_string().replace(&format!("{FIXTURES}/"), ""));
        out.push('\n');
    }
    out
}

fn compare(actual: &str, expected_file: &Path) {
    if std::env::var_os("BUSBAR_BLESS").is_some() {
        fs::write(expected_file, actual).unwrap();
        return;
    }
    let expected = fs::read_to_string(expected_file).unwrap_or_else(|err| {
        panic!(
            "{}: {err} (run with BUSBAR_BLESS=1 to create it)",
            expected_file.display()
        )
    });
    assert_eq!(
        actual,
        expected,
        "diagnostics differ from {}",
        expected_file.display()
    );
}

#[test]
fn bad_fixtures_report_exactly_the_expected_errors() {
    for file in fixtures("bad") {
        let actual = diagnostics(&[&file]);
        assert!(!actual.is_empty(), "{} was accepted", file.display());
        compare(&actual, &file.with_extension("errors"));
    }
}

#[test]
fn good_fixtures_pass() {
    for file in fixtures("good") {
        let actual = diagnostics(&[&file]);
        assert_eq!(actual, "", "{} was rejected", file.display());
    }
}

#[test]
fn names_topics_and_webhook_paths_must_be_unique_across_files() {
    let dir = Path::new(FIXTURES).join("across");
    let files = [dir.join("first.json"), dir.join("second.json")];
    let actual = diagnostics(&[&files[0], &files[1]]);
    compare(&actual, &dir.join("expected.errors"));
}

#[test]
fn a_checked_pipeline_has_its_defaults_resolved_secrets_and_redacted_form() {
    use busbar_rules::pipeline::{ConnectorRef, Duration, Input, Ordering, Retention};

    let name = format!("{FIXTURES}/good/orders.json");
    let text = fs::read_to_string(&name).unwrap();
    let pipelines = pipeline::load(
        &[SourceFile {
            name: &name,
            text: &text,
        }],
        &context(),
    )
    .unwrap();
    let orders = &pipelines[0];
    assert_eq!(
        (
            orders.name.as_str(),
            orders.bus.topic.as_str(),
            orders.bus.partitions
        ),
        ("orders", "orders", 3)
    );
    assert_eq!(
        orders.bus.retention,
        Retention::For(Duration::from_secs(7 * 86_400))
    );

    // Connection URL: resolved from the environment, shown as written.
    let db = &orders.connections["shop-db"];
    assert_eq!(
        db.url.expose(),
        "postgres://shop:hunter2@127.0.0.1:5432/shop"
    );
    assert_eq!(db.url.redacted(), "${env:SHOP_DB_URL}");
    assert!(
        !format!("{orders:?}").contains("hunter2"),
        "Debug output leaks a secret"
    );

    let names: Vec<&str> = orders.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["github", "new-orders", "status"]);
    assert_eq!(
        orders.sources[0].connector,
        ConnectorRef::Builtin("http-webhook".to_owned())
    );
    assert_eq!(
        orders.sources[0].webhook_path.as_deref(),
        Some("/hooks/github")
    );
    assert_eq!(
        orders.sources[0].config.expose()["verify"]["secret"],
        "gh-webhook-secret"
    );
    assert_eq!(
        orders.sources[0].config.redacted()["verify"]["secret"],
        "${env:GH_SECRET}"
    );
    assert_eq!(orders.sources[1].webhook_path, None);
    // A webhook source without `config.path` answers on its default path.
    assert_eq!(
        orders.sources[2].webhook_path.as_deref(),
        Some("/hooks/orders/status")
    );

    let big = &orders.rules[0];
    assert!(big.enabled);
    assert!(!orders.rules[1].enabled);
    let notify = &big.targets[0];
    assert_eq!(
        notify.config.expose()["headers"]["Authorization"],
        "Bearer tok-123"
    );
    assert_eq!(
        notify.config.expose()["headers"]["X-Price"],
        "$$5 and ${literal}"
    );
    assert_eq!(
        notify.config.redacted()["headers"]["Authorization"],
        "Bearer ${file:secrets/api-token.txt}"
    );
    assert!(matches!(notify.input, Input::Transformer(_)));
    assert_eq!(
        (notify.retry.max_attempts, notify.retry.max_age),
        (20, Duration::from_secs(3600))
    );
    assert_eq!(
        (notify.retry.backoff.initial, notify.retry.backoff.max),
        (Duration::from_millis(500), Duration::from_secs(60))
    );
    assert_eq!(notify.dead_letter, "orders.dlq");
    assert_eq!(
        (notify.batch.max_records, notify.batch.max_wait),
        (10, Duration::from_millis(50))
    );
    assert_eq!(notify.ordering, Ordering::Key);

    // Defaults: EventBridge's retry budget, a dead-letter topic named after bus, rule and target.
    let audit = &big.targets[1];
    assert!(matches!(&audit.input, Input::Path(path) if path == "$.detail"));
    assert_eq!(
        (audit.retry.max_attempts, audit.retry.max_age),
        (185, Duration::from_secs(86_400))
    );
    assert_eq!(audit.dead_letter, "orders.big-orders.audit.dlq");
    assert_eq!(
        (
            audit.batch.max_records,
            audit.batch.max_wait,
            audit.batch.max_bytes
        ),
        (500, Duration::from_millis(0), 8 << 20)
    );
    assert_eq!(audit.ordering, Ordering::None);
    assert!(
        matches!(&orders.rules[1].targets[0].input, Input::Constant(value) if value["kind"] == "push")
    );
}

#[test]
fn the_schema_rejects_unknown_fields_and_describes_every_field() {
    let schema = pipeline::json_schema();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    // `deny_unknown_fields` everywhere, and a description on every property.
    let mut objects: Vec<(&str, &serde_json::Value)> = schema["$defs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, def)| (name.as_str(), def))
        .collect();
    objects.push(("PipelineSpec", &schema));
    for (name, def) in objects {
        if let Some(properties) = def.get("properties").and_then(|p| p.as_object()) {
            assert_eq!(
                def["additionalProperties"], false,
                "{name} accepts unknown fields"
            );
            for (field, property) in properties {
                assert!(
                    property.get("description").is_some(),
                    "{name}.{field} has no description: {property}"
                );
            }
        }
    }
}

#[test]
fn a_byte_order_mark_is_neither_an_error_nor_a_column() {
    let text = "\u{feff}{\"name\": \"bom\", \"bus\": {\"partitions\": 0}}";
    let checked = pipeline::check(
        &[SourceFile {
            name: "bom.json",
            text,
        }],
        &context(),
    );
    let lines: Vec<String> = checked
        .diagnostics
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        lines,
        ["bom.json:1:39: $.bus.partitions: partitions must be at least 1"]
    );
}

/// The published schema, run by a real JSON Schema validator as an editor would: it accepts every good fixture
/// and rejects the shape errors it can see (unknown fields, wrong types, arrays for objects, bad durations).
#[test]
fn a_json_schema_validator_accepts_the_good_fixtures_and_rejects_bad_shapes() {
    let schema = pipeline::json_schema();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let parse = |path: &Path| -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap()
    };
    for file in fixtures("good") {
        let errors: Vec<String> = validator
            .iter_errors(&parse(&file))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", file.display());
    }
    for name in [
        "shape.json",
        "arrays.json",
        "not-an-object.json",
        "partial.json",
    ] {
        let file = Path::new(FIXTURES).join("bad").join(name);
        assert!(
            !validator.is_valid(&parse(&file)),
            "the schema accepts {}",
            file.display()
        );
    }
}

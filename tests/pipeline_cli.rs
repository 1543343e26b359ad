//! `busbar validate` and `busbar schema pipeline`, run as a user runs them: the real binary, real files in a
//! scratch folder, real environment variables.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BUSBAR: &str = env!("CARGO_BIN_EXE_busbar");

/// A fresh scratch folder for one test, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("busbar-pipeline-cli-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.0.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn busbar(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BUSBAR);
    command
        .current_dir(dir)
        .args(args)
        .env_remove("BUSBAR_TEST_TOKEN")
        .env_remove("BUSBAR_TEST_DB");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

const PIPELINE: &str = r#"{
  "$schema": "../schema/pipeline.schema.json",
  "name": "shop",
  "connections": { "db": { "url": "${env:BUSBAR_TEST_DB}" } },
  "sources": {
    "orders": { "connector": "builtin:http-webhook", "config": { "secret": "${env:BUSBAR_TEST_TOKEN}" } },
    "custom": { "connector": "connectors/custom.wasm", "grants": { "sql": ["db"] } }
  },
  "rules": [
    {
      "name": "big",
      "pattern": { "detail": { "total": [{ "numeric": [">", 1000] }] } },
      "targets": [
        { "name": "log", "connector": "builtin:log" },
        { "name": "hook", "connector": "builtin:http", "grants": { "http": ["hooks.example.com"] },
          "config": { "token": "${file:token.txt}" } }
      ]
    }
  ]
}
"#;

#[test]
fn validate_accepts_a_good_pipeline_and_summarises_it() {
    let scratch = Scratch::new("good");
    scratch.write("connectors/custom.wasm", "\0asm");
    scratch.write("token.txt", "t0ken\n");
    scratch.write("shop.json", PIPELINE);
    let env = [
        ("BUSBAR_TEST_TOKEN", "s3cret"),
        ("BUSBAR_TEST_DB", "postgres://app@127.0.0.1/shop"),
    ];
    let out = busbar(&scratch.0, &["validate", "shop.json"], &env);
    assert_eq!(text(&out.stderr), "");
    assert_eq!(
        text(&out.stdout),
        "ok: shop.json (shop: 2 sources, 1 rules, 2 targets)\n"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn validate_reports_every_problem_with_its_place_and_exits_2() {
    let scratch = Scratch::new("bad");
    scratch.write("shop.json", PIPELINE);
    let out = busbar(
        &scratch.0,
        &["validate", "shop.json"],
        &[("BUSBAR_TEST_DB", "postgres://app@127.0.0.1/shop")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "");
    let expected = [
        "shop.json:6:76: $.sources.orders.config.secret: environment variable `BUSBAR_TEST_TOKEN` is not set (referenced as `${env:BUSBAR_TEST_TOKEN}`)",
        "shop.json:7:30: $.sources.custom.connector: connector component `connectors/custom.wasm` cannot be used: No such file or directory (os error 2)",
        "shop.json:16:32: $.rules[0].targets[1].config.token: secret file `token.txt` cannot be read: No such file or directory (os error 2)",
        "3 problem(s) in 1 file(s)",
    ];
    assert_eq!(
        text(&out.stderr),
        expected.map(|line| format!("{line}\n")).concat()
    );
}

#[test]
fn validate_checks_files_together_and_reports_unreadable_ones() {
    let scratch = Scratch::new("together");
    let minimal = r#"{"name": "a", "rules": [{"name": "r", "pattern": {"source": ["x"]},
        "targets": [{"name": "t", "connector": "builtin:log"}]}]}"#;
    scratch.write("a.json", minimal);
    scratch.write("b.json", minimal);
    let out = busbar(
        &scratch.0,
        &["validate", "a.json", "b.json", "missing.json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stdout),
        "ok: a.json (a: 0 sources, 1 rules, 1 targets)\n"
    );
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("missing.json: cannot read the file: "),
        "{stderr}"
    );
    assert!(stderr.contains("b.json:1:10: $.name: duplicate pipeline name `a`: it is already defined at a.json:1:10\n"), "{stderr}");
    assert!(
        stderr.contains(
            "b.json:1:10: $.name: bus topic `a` is already the bus of pipeline `a` at a.json:1:10"
        ),
        "{stderr}"
    );
}

#[test]
fn validate_strict_eventbridge_rejects_busbar_extensions() {
    let scratch = Scratch::new("strict");
    scratch.write(
        "p.json",
        r#"{"name": "p", "rules": [{"name": "r", "pattern": {"source": [{"regex": "^shop-[0-9]+$"}]},
            "targets": [{"name": "t", "connector": "builtin:log"}]}]}"#,
    );
    let out = busbar(&scratch.0, &["validate", "p.json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = busbar(
        &scratch.0,
        &["validate", "--strict-eventbridge", "p.json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr,
        "p.json:1:72: $.rules[0].pattern.source[0].regex: invalid event pattern: regex is a busbar extension, \
         rejected in strict EventBridge mode\n1 problem(s) in 1 file(s)\n"
    );
}

#[test]
fn validate_reports_json_syntax_errors_with_line_and_column() {
    let scratch = Scratch::new("syntax");
    scratch.write("p.json", "{\n  \"name\": \"p\",\n  \"rules\": [\n}\n");
    let out = busbar(&scratch.0, &["validate", "p.json"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "p.json:4:1: invalid JSON: expected value\n1 problem(s) in 1 file(s)\n"
    );
}

#[test]
fn the_published_schema_is_what_busbar_schema_pipeline_prints() {
    let out = Command::new(BUSBAR)
        .args(["schema", "pipeline"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let printed = text(&out.stdout);
    let schema: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        schema["properties"]["rules"]["items"]["$ref"],
        "#/$defs/RuleSpec"
    );
    let published = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/pipeline.schema.json");
    let committed = fs::read_to_string(&published).unwrap_or_default();
    assert!(
        committed == printed,
        "{} is out of date: run `cargo run -- schema pipeline > schema/pipeline.schema.json`",
        published.display()
    );
}

#[test]
fn every_example_pipeline_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = fs::read_dir(root.join("examples"))
        .unwrap()
        .map(|entry| entry.unwrap().path().join("pipeline.json"))
        .filter(|path| path.exists())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "quickstart and the three scenario examples: {files:?}");
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let mut args = vec!["validate"];
    args.extend(names.iter().map(String::as_str));
    let env = [
        ("GITHUB_WEBHOOK_SECRET", "s3cret"),
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"),
        ("PG_URL", "postgres://postgres@127.0.0.1:5432/test"),
        ("MARIADB_URL", "mysql://root@127.0.0.1:3306/test"),
    ];
    let output = busbar(root, &args, &env);
    assert!(output.status.success(), "{}{}", text(&output.stdout), text(&output.stderr));
}

//! Compiles the guest workspace (`connectors/`: SDK, built-ins, test guests) to wasm32-wasip2 components and
//! writes `guests.rs`, which embeds the built-ins and names the test guests' files.
//!
//! The inner cargo uses its own target dir (`<target>/wasm-guests`, shared by every profile of the host build), so
//! it never waits on the outer cargo's lock and rebuilds only what changed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let guests = manifest_dir.parent().expect("connectors/").to_path_buf();
    let wit = guests.parent().expect("repository root").join("wit");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR"));
    let target_dir = guest_target_dir(&out_dir);

    for path in ["Cargo.toml", "Cargo.lock", "sdk", "builtin", "test-guests"] {
        println!("cargo:rerun-if-changed={}", guests.join(path).display());
    }
    println!("cargo:rerun-if-changed={}", wit.display());

    ensure_wasm_target();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target=wasm32-wasip2")
        .arg("--manifest-path")
        .arg(guests.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--workspace");
    // The outer build's flags and wrappers are for the host target, not for the guests.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("running cargo for the wasm32-wasip2 guests");
    assert!(
        status.success(),
        "building the connector guests for wasm32-wasip2 failed (see the cargo output above); \
         `rustup target add wasm32-wasip2` if the target is missing"
    );

    let wasm_dir = target_dir.join("wasm32-wasip2").join("release");
    let mut src = String::from("/// Built-in connectors: (name, component bytes).\npub const BUILTINS: &[(&str, &[u8])] = &[\n");
    for name in crate_dirs(&guests.join("builtin")) {
        let file = wasm_dir.join(format!("busbar_builtin_{}.wasm", name.replace('-', "_")));
        assert!(file.exists(), "expected {} after the guest build", file.display());
        writeln!(src, "    ({name:?}, include_bytes!({:?})),", file.display().to_string()).unwrap();
    }
    src.push_str("];\n\n/// Test guests: (name, path of the component file).\npub const TEST_GUESTS: &[(&str, &str)] = &[\n");
    for name in crate_dirs(&guests.join("test-guests")) {
        let file = wasm_dir.join(format!("{}.wasm", name.replace('-', "_")));
        assert!(file.exists(), "expected {} after the guest build", file.display());
        writeln!(src, "    ({name:?}, {:?}),", file.display().to_string()).unwrap();
    }
    src.push_str("];\n");
    std::fs::write(out_dir.join("guests.rs"), src).expect("writing guests.rs");
}

/// rustup installs the targets `rust-toolchain.toml` names only when it installs the toolchain itself; a machine
/// whose stable toolchain was already there lacks wasm32-wasip2. Add it here, so `cargo build` and `cargo test`
/// work on such a machine without a manual step.
fn ensure_wasm_target() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    if libdir.is_some_and(|dir| dir.is_dir()) {
        return;
    }
    let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") else {
        return; // not under rustup: the guest build below fails with the hint to install the target
    };
    println!("cargo:warning=installing the wasm32-wasip2 target for {toolchain} (rustup target add)");
    let added = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2", "--toolchain", &toolchain])
        .status()
        .is_ok_and(|status| status.success());
    if !added {
        println!("cargo:warning=`rustup target add wasm32-wasip2` failed; the guest build needs that target");
    }
}

/// `<target>/wasm-guests`, where `<target>` is the outer build's target dir (OUT_DIR is
/// `<target>[/<triple>]/<profile>/build/<pkg>/out`).
fn guest_target_dir(out_dir: &Path) -> PathBuf {
    let build = out_dir.ancestors().find(|p| p.file_name().is_some_and(|n| n == "build")).expect("OUT_DIR under build/");
    let profile_parent = build.parent().and_then(Path::parent).expect("target dir above the profile dir");
    profile_parent.join("wasm-guests")
}

fn crate_dirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().join("Cargo.toml").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

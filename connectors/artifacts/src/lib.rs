//! busbar's connector components, compiled from `connectors/` by this crate's build script.
//!
//! - [`BUILTINS`]: the built-in connectors, embedded in the binary and referenced as `builtin:<name>`.
//! - [`TEST_GUESTS`]: purpose-built misbehaving guests for the host's tests, as files on disk.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The component bytes of the built-in connector `name`.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, bytes)| *bytes)
}

/// The path of the test guest `name`'s component file.
pub fn test_guest(name: &str) -> Option<&'static str> {
    TEST_GUESTS.iter().find(|(n, _)| *n == name).map(|(_, path)| *path)
}

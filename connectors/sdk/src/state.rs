//! The connector's private key-value store (granted as `state`).

pub use crate::bindings::busbar::connector::state::{StateError, delete, get, set};

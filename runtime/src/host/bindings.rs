//! Bindings generated from `wit/`. The `imports` world owns the shared types and host interfaces; the `sink` and
//! `source` worlds reuse them, so one `Linker` serves both.

pub mod imports {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "busbar:connector/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "busbar:connector/sql.connection": crate::host::sql::SqlConnection,
        },
    });
}

pub mod sink {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "busbar:connector/sink",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "busbar:connector/types": super::imports::busbar::connector::types,
            "busbar:connector/log": super::imports::busbar::connector::log,
            "busbar:connector/state": super::imports::busbar::connector::state,
            "busbar:connector/sql": super::imports::busbar::connector::sql,
            "busbar:connector/http-batch": super::imports::busbar::connector::http_batch,
        },
    });
}

pub mod source {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "busbar:connector/source",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "busbar:connector/types": super::imports::busbar::connector::types,
            "busbar:connector/log": super::imports::busbar::connector::log,
            "busbar:connector/state": super::imports::busbar::connector::state,
            "busbar:connector/sql": super::imports::busbar::connector::sql,
            "busbar:connector/http-batch": super::imports::busbar::connector::http_batch,
        },
    });
}

pub use imports::busbar::connector::{http_batch, log, sql, state, types};

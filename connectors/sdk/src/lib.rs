//! Write busbar connectors in Rust.
//!
//! A connector is a type implementing [`Sink`], [`PullSource`] or [`PushSource`], exported with
//! [`export_sink!`], [`export_pull_source!`] or [`export_push_source!`], and built with
//! `cargo build --release --target wasm32-wasip2`, which produces a component for the `busbar:connector` WIT
//! worlds directly.
//!
//! Module map:
//! - [`bindings`]: the generated types and host imports (`log`, `state`, `sql`, `http-batch`, `wasi:http`).
//! - [`log`], [`state`], [`sql`], [`http`]: small wrappers over those imports.
//! - [`sink`], [`source`]: the generated export glue for each world (used by the macros).
//! - `instance`: keeps the one connector value an instance holds between calls.

pub mod http;
pub mod instance;
pub mod log;
pub mod sql;
pub mod state;

/// Bindings generated from the `imports` world: every type and host import a connector may use.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "busbar:connector/imports",
        generate_all,
    });
}

/// Export glue for the `sink` world.
pub mod sink {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "busbar:connector/sink",
        pub_export_macro: true,
        export_macro_name: "__export_sink_world",
        with: {
            "busbar:connector/types@0.1.0": crate::bindings::busbar::connector::types,
            "busbar:connector/log@0.1.0": crate::bindings::busbar::connector::log,
            "busbar:connector/state@0.1.0": crate::bindings::busbar::connector::state,
            "busbar:connector/sql@0.1.0": crate::bindings::busbar::connector::sql,
            "busbar:connector/http-batch@0.1.0": crate::bindings::busbar::connector::http_batch,
            "wasi:http/outgoing-handler@0.2.12": crate::bindings::wasi::http::outgoing_handler,
            "wasi:http/types@0.2.12": crate::bindings::wasi::http::types,
            "wasi:io/error@0.2.12": crate::bindings::wasi::io::error,
            "wasi:io/poll@0.2.12": crate::bindings::wasi::io::poll,
            "wasi:io/streams@0.2.12": crate::bindings::wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": crate::bindings::wasi::clocks::monotonic_clock,
        },
    });
}

/// Export glue for the `source` world.
pub mod source {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "busbar:connector/source",
        pub_export_macro: true,
        export_macro_name: "__export_source_world",
        with: {
            "busbar:connector/types@0.1.0": crate::bindings::busbar::connector::types,
            "busbar:connector/log@0.1.0": crate::bindings::busbar::connector::log,
            "busbar:connector/state@0.1.0": crate::bindings::busbar::connector::state,
            "busbar:connector/sql@0.1.0": crate::bindings::busbar::connector::sql,
            "busbar:connector/http-batch@0.1.0": crate::bindings::busbar::connector::http_batch,
            "wasi:http/outgoing-handler@0.2.12": crate::bindings::wasi::http::outgoing_handler,
            "wasi:http/types@0.2.12": crate::bindings::wasi::http::types,
            "wasi:io/error@0.2.12": crate::bindings::wasi::io::error,
            "wasi:io/poll@0.2.12": crate::bindings::wasi::io::poll,
            "wasi:io/streams@0.2.12": crate::bindings::wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": crate::bindings::wasi::clocks::monotonic_clock,
        },
    });
}

pub use bindings::busbar::connector::types::{
    Capability, Description, Error, Event, Handled, Header, HttpRequest, HttpResponse, Kind,
    Outcome, PollResult,
};
pub use serde_json;

/// A connector that receives batches of events.
pub trait Sink: Sized + 'static {
    /// The config the pipeline passes; the host has already checked it against [`Sink::describe`]'s schema.
    type Config: serde::de::DeserializeOwned;
    fn describe() -> Description;
    fn open(config: Self::Config) -> Result<Self, Error>;
    /// One outcome per event, in order.
    fn write(&mut self, batch: Vec<Event>) -> Vec<Outcome>;
    fn close(&mut self) {}
}

/// A source the host polls.
pub trait PullSource: Sized + 'static {
    type Config: serde::de::DeserializeOwned;
    fn describe() -> Description;
    fn open(config: Self::Config) -> Result<Self, Error>;
    fn poll(&mut self, cursor: Option<String>, max: u32) -> Result<PollResult, Error>;
    fn close(&mut self) {}
}

/// A source the host calls with inbound HTTP requests (webhooks).
pub trait PushSource: Sized + 'static {
    type Config: serde::de::DeserializeOwned;
    fn describe() -> Description;
    fn open(config: Self::Config) -> Result<Self, Error>;
    fn handle(&mut self, request: HttpRequest) -> Result<Handled, Error>;
    fn close(&mut self) {}
}

impl Error {
    /// An error that may go away if the host tries again later.
    pub fn retryable(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            retryable: true,
        }
    }
    /// An error that will not go away by itself.
    pub fn fatal(message: impl Into<String>) -> Self {
        Error {
            message: message.into(),
            retryable: false,
        }
    }
}

impl Event {
    /// An event with the given detail-type and JSON detail; the host fills `id` and `time` when left empty.
    pub fn json(source: &str, detail_type: &str, detail: &serde_json::Value) -> Self {
        Event {
            id: String::new(),
            source: source.to_owned(),
            detail_type: detail_type.to_owned(),
            time: String::new(),
            key: None,
            headers: Vec::new(),
            payload: serde_json::to_vec(detail).unwrap_or_default(),
        }
    }
}

/// Parses the config JSON into `T`, naming the offending field on failure.
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, Error> {
    serde_json::from_str(config).map_err(|e| Error::fatal(format!("invalid config: {e}")))
}

/// Exports a [`Sink`] implementation as the component's `sink` world.
#[macro_export]
macro_rules! export_sink {
    ($ty:ty) => {
        struct __BusbarSinkExport;
        impl $crate::sink::exports::busbar::connector::sink_connector::Guest for __BusbarSinkExport {
            fn describe() -> $crate::Description {
                <$ty as $crate::Sink>::describe()
            }
            fn open(config: String) -> Result<(), $crate::Error> {
                let config = $crate::parse_config::<<$ty as $crate::Sink>::Config>(&config)?;
                $crate::instance::set(<$ty as $crate::Sink>::open(config)?);
                Ok(())
            }
            fn write(batch: Vec<$crate::Event>) -> Vec<$crate::Outcome> {
                let n = batch.len();
                $crate::instance::with::<$ty, _>(|s| <$ty as $crate::Sink>::write(s, batch))
                    .unwrap_or_else(|e| $crate::instance::not_open_outcomes(n, e))
            }
            fn close() {
                let _ = $crate::instance::with::<$ty, _>(|s| <$ty as $crate::Sink>::close(s));
                $crate::instance::clear();
            }
        }
        $crate::sink::__export_sink_world!(__BusbarSinkExport with_types_in $crate::sink);
    };
}

/// Exports a [`PullSource`] implementation as the component's `source` world (`handle` answers an error).
#[macro_export]
macro_rules! export_pull_source {
    ($ty:ty) => {
        struct __BusbarSourceExport;
        impl $crate::source::exports::busbar::connector::source_connector::Guest for __BusbarSourceExport {
            fn describe() -> $crate::Description {
                <$ty as $crate::PullSource>::describe()
            }
            fn open(config: String) -> Result<(), $crate::Error> {
                let config = $crate::parse_config::<<$ty as $crate::PullSource>::Config>(&config)?;
                $crate::instance::set(<$ty as $crate::PullSource>::open(config)?);
                Ok(())
            }
            fn poll(cursor: Option<String>, max: u32) -> Result<$crate::PollResult, $crate::Error> {
                $crate::instance::with::<$ty, _>(|s| <$ty as $crate::PullSource>::poll(s, cursor, max))?
            }
            fn handle(_request: $crate::HttpRequest) -> Result<$crate::Handled, $crate::Error> {
                Err($crate::Error::fatal("this connector is a pull source: it does not handle HTTP requests"))
            }
            fn close() {
                let _ = $crate::instance::with::<$ty, _>(|s| <$ty as $crate::PullSource>::close(s));
                $crate::instance::clear();
            }
        }
        $crate::source::__export_source_world!(__BusbarSourceExport with_types_in $crate::source);
    };
}

/// Exports a [`PushSource`] implementation as the component's `source` world (`poll` answers an error).
#[macro_export]
macro_rules! export_push_source {
    ($ty:ty) => {
        struct __BusbarSourceExport;
        impl $crate::source::exports::busbar::connector::source_connector::Guest for __BusbarSourceExport {
            fn describe() -> $crate::Description {
                <$ty as $crate::PushSource>::describe()
            }
            fn open(config: String) -> Result<(), $crate::Error> {
                let config = $crate::parse_config::<<$ty as $crate::PushSource>::Config>(&config)?;
                $crate::instance::set(<$ty as $crate::PushSource>::open(config)?);
                Ok(())
            }
            fn poll(_cursor: Option<String>, _max: u32) -> Result<$crate::PollResult, $crate::Error> {
                Err($crate::Error::fatal("this connector is a push source: it is not polled"))
            }
            fn handle(request: $crate::HttpRequest) -> Result<$crate::Handled, $crate::Error> {
                $crate::instance::with::<$ty, _>(|s| <$ty as $crate::PushSource>::handle(s, request))?
            }
            fn close() {
                let _ = $crate::instance::with::<$ty, _>(|s| <$ty as $crate::PushSource>::close(s));
                $crate::instance::clear();
            }
        }
        $crate::source::__export_source_world!(__BusbarSourceExport with_types_in $crate::source);
    };
}

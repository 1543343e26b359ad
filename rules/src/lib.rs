//! busbar-rules: EventBridge-style event patterns and input transformers, compiled into one matcher.
//!
//! A pure library: no async runtime, no I/O.
//!
//! - [`pattern`]: the pattern language, parsed and validated into [`Pattern`] ([`PatternOptions`] selects
//!   strict EventBridge mode); `Pattern::matches` is the direct, per-rule evaluator (`eval.rs`).
//! - [`matcher`]: [`MatcherBuilder`] compiles many patterns into one [`Matcher`] that reads each event once
//!   (`scan.rs` extracts only the fields some pattern names straight from the JSON bytes).
//! - [`transform`]: [`InputTransformer`] (InputPathsMap + InputTemplate) with EventBridge's quoting rules.
//! - Leaf helpers: `number.rs` (numbers compared as numbers), `wildcard.rs`, `cidr.rs`, `iregexp.rs`
//!   (the `regex` extension, RFC 9485).
//! - [`error`]: one error enum per failure moment: [`PatternError`], [`EventError`], [`TransformError`].

mod cidr;
pub mod error;
mod eval;
mod iregexp;
pub mod matcher;
mod number;
pub mod pattern;
pub mod pipeline;
mod scan;
pub mod transform;
mod wildcard;

pub use error::{EventError, PatternError, TransformError};
pub use matcher::{Event, MatchScratch, Matcher, MatcherBuilder, RuleId};
pub use pattern::{Pattern, PatternOptions};
pub use transform::{InputTransformer, TransformContext};

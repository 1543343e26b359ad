//! busbar-rules: EventBridge-style event patterns and input transformers.

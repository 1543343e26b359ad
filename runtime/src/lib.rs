//! busbar-runtime: the WebAssembly connector host.

//! Guest-side bindings for the ELASTIC TEE HAL, generated from the WIT package in
//! `wit/` (the single source of truth) by `wit-bindgen`.
//!
//! A workload built for `wasm32-wasip1` adds this crate and calls, for example,
//! `elastic_hal::clock::now()` or `elastic_hal::capabilities::list_support()`; the calls
//! become imports of core-wasm functions (module `elastic:hal/<interface>@0.1.0`) that
//! Halcyon's kernel implements with the component model's canonical ABI.

wit_bindgen::generate!({
    path: "..",
    world: "elastic:hal/workload",
    generate_all,
});

pub use elastic::hal::*;

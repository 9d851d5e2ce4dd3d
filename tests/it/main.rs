//! The integration tests, in one binary (one link of burn instead of one per file). Each module
//! is one former `tests/*.rs` file; `common` holds the shared helpers and `Cmd`, the builder for
//! runs of the `reconad` binary. The real-data checks in `real_data` are `#[ignore]`d and run by
//! `.ci/run` with `cargo test --test it real_data:: -- --ignored`, as is the headless-Chromium
//! check of the report in `browser`.

mod common;

mod browser;
mod compat;
mod corpus;

mod data_errors;
mod data_layer;
mod ensemble;
mod fuzz;
mod head;
mod layers;
mod real_data;
mod reliability;
mod report;
mod scoring;
mod synth;
mod training;

//! Outputs for people: anomaly heat maps, the names of per-image output files, evaluation
//! folders read back, the benchmark summary and the HTML report.

pub mod eval_dir;
pub mod gallery;
pub mod heatmap;
pub mod html;
pub mod names;
pub mod plots;
pub mod summary;

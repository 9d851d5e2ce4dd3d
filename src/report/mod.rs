//! Outputs for people: anomaly heat maps and the names of per-image output files.

pub mod heatmap;
pub mod names;

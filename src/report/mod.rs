//! Outputs for people: anomaly heat maps.

pub mod heatmap;

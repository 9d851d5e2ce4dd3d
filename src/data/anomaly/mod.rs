//! Synthetic anomalies made from normal images: the pseudo-defects that validation and
//! restoration training need because the training set has no real ones. Two families, so that
//! what selects a model is not what trained it:
//! - [`cutpaste`]: CutPaste patches and thin scars (SPEC §4), for validation;
//! - [`restoration`]: DRAEM-style Perlin-mask regions filled with an altered other normal image
//!   ([`perlin`] masks, [`texture`] ops), for restoration training.

pub mod cutpaste;
pub mod perlin;
pub mod restoration;
pub mod texture;

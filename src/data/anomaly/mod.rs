//! Synthetic anomalies made from normal images: the pseudo-defects that validation (and, for
//! restoration training, training) needs because the training set has no real ones.
//! [`cutpaste`]: CutPaste patches and thin scars (SPEC §4, CutPaste validation).

pub mod cutpaste;

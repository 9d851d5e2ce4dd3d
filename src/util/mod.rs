//! Small helpers every layer uses: atomic file writes ([`fs`]) and progress reporting
//! ([`progress`]).

pub mod fs;
pub mod progress;

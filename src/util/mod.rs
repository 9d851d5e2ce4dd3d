//! Small helpers every layer uses: atomic file writes ([`fs`]), directory locks ([`lock`]), memory
//! estimates ([`memory`]) and progress reporting ([`progress`]).

pub mod fs;
pub mod lock;
pub mod memory;
pub mod progress;

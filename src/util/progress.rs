//! Progress of long tasks (training epochs, calibration, scoring a test set), reported by the
//! library through a small trait; the command line draws it as bars, library users may ignore it
//! ([`NoProgress`]) or forward it anywhere.

/// Receives the progress of a long task. Calls may come from several threads.
pub trait Progress: Sync {
    /// A new stage named `what` with `total` steps (0 when not known yet).
    fn start(&self, what: &str, total: u64);
    /// `n` more steps of the current stage are done.
    fn advance(&self, n: u64);
    /// A short status shown beside the progress (e.g. the running loss).
    fn message(&self, text: &str);
    /// The current stage is over.
    fn finish(&self);
    /// A line of news between stages (e.g. which category is being trained).
    fn note(&self, text: &str);
    /// Progress over a whole job of `total` parts (e.g. the categories of a benchmark), shown
    /// beside the stages; `done` of them are over.
    fn overall(&self, _done: u64, _total: u64) {}
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _what: &str, _total: u64) {}
    fn advance(&self, _n: u64) {}
    fn message(&self, _text: &str) {}
    fn finish(&self) {}
    fn note(&self, _text: &str) {}
}

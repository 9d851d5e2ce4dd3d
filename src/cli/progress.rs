//! Progress bars on the terminal: the command line's implementation of the library's
//! [`Progress`] trait (indicatif), hidden with `--quiet`.

use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use reconad::Progress;

/// One bar per stage, above an overall bar for jobs of several parts; notes are printed as
/// lines above the bars.
pub struct Bars {
    show: bool,
    multi: MultiProgress,
    bar: Mutex<Option<ProgressBar>>,
    overall: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// Bars drawn when `show`, none otherwise.
    pub fn new(show: bool) -> Self {
        let multi = if show {
            MultiProgress::new()
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        };
        Self {
            show,
            multi,
            bar: Mutex::new(None),
            overall: Mutex::new(None),
        }
    }

    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            f(bar);
        }
    }
}

impl Progress for Bars {
    fn start(&self, what: &str, total: u64) {
        let bar = if self.show {
            let bar = ProgressBar::new(total);
            bar.set_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed})")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(what.to_string());
            // Stage bars go above the overall bar.
            match self.overall.lock().expect("progress lock").as_ref() {
                Some(overall) => self.multi.insert_before(overall, bar),
                None => self.multi.add(bar),
            }
        } else {
            ProgressBar::hidden()
        };
        if let Some(old) = self.bar.lock().expect("progress lock").replace(bar) {
            old.finish_and_clear();
            self.multi.remove(&old);
        }
    }

    fn advance(&self, n: u64) {
        self.with(|b| b.inc(n));
    }

    fn message(&self, text: &str) {
        self.with(|b| b.set_message(text.to_string()));
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    fn note(&self, text: &str) {
        let text = text.trim_end_matches('\n');
        self.multi.suspend(|| println!("{text}"));
    }

    fn overall(&self, done: u64, total: u64) {
        if !self.show {
            return;
        }
        let mut overall = self.overall.lock().expect("progress lock");
        let bar = overall.get_or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template(
                    "overall [{bar:30}] {pos}/{len} categories ({elapsed})",
                )
                .expect("valid template")
                .progress_chars("## "),
            );
            bar
        });
        bar.set_length(total);
        bar.set_position(done);
        if done >= total {
            bar.finish_and_clear();
            self.multi.remove(bar);
            *overall = None;
        }
    }
}

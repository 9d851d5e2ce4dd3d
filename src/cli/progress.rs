//! Progress bars on the terminal: the command line's implementation of the library's
//! [`Progress`] trait (indicatif), hidden with `--quiet`.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use reconad::Progress;

/// One bar per stage; notes are printed as lines.
pub struct Bars {
    show: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// Bars drawn when `show`, none otherwise.
    pub fn new(show: bool) -> Self {
        Self {
            show,
            bar: Mutex::new(None),
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
            bar
        } else {
            ProgressBar::hidden()
        };
        if let Some(old) = self.bar.lock().expect("progress lock").replace(bar) {
            old.finish_and_clear();
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
        }
    }

    fn note(&self, text: &str) {
        let text = text.trim_end_matches('\n');
        match self.bar.lock().expect("progress lock").as_ref() {
            Some(bar) => bar.suspend(|| println!("{text}")),
            None => println!("{text}"),
        }
    }
}

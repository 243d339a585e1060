//! Rebuild progress for people: a bar with events/s on a terminal, plain lines otherwise
//! (logs and CI keep them readable).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use projections::rebuild::Progress;

pub struct RebuildProgress {
    name: String,
    bar: Option<ProgressBar>,
    total: AtomicU64,
    last_line: AtomicU64,
    started: Instant,
}

/// Plain output prints a line every this many events.
const LINE_EVERY: u64 = 100_000;

impl RebuildProgress {
    pub fn new(name: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:40}] {pos}/{len} events, {per_sec}, eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(name.to_owned());
            bar
        });
        Self {
            name: name.to_owned(),
            bar,
            total: AtomicU64::new(0),
            last_line: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for RebuildProgress {
    fn started(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        match &self.bar {
            Some(bar) => bar.set_length(total),
            None => eprintln!("{}: rebuilding from {total} events", self.name),
        }
    }

    fn advanced(&self, done: u64) {
        match &self.bar {
            Some(bar) => bar.set_position(done),
            None => {
                let last = self.last_line.load(Ordering::Relaxed);
                if done >= last + LINE_EVERY {
                    self.last_line.store(done, Ordering::Relaxed);
                    let rate = done as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
                    eprintln!(
                        "{}: {done}/{} events ({rate:.0} events/s)",
                        self.name,
                        self.total.load(Ordering::Relaxed)
                    );
                }
            }
        }
    }
}

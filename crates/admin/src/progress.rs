//! A progress bar on stderr for long work; hidden for `--json` and when stderr is not a
//! terminal, so scripts and logs see none of it.

use billing_core::import::ImportStep;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    pub fn new(json: bool) -> Self {
        let target = if json {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        Self {
            bar: ProgressBar::with_draw_target(None, target),
        }
    }

    pub fn step(&self, step: ImportStep) {
        match step {
            ImportStep::Phase { name, total } => {
                self.bar.reset();
                match total {
                    Some(total) => {
                        self.bar.set_length(total as u64);
                        self.bar.set_style(
                            ProgressStyle::with_template(
                                "{msg:>10} {bar:40} {pos}/{len} {elapsed}",
                            )
                            .unwrap_or_else(|_| ProgressStyle::default_bar()),
                        );
                    }
                    None => self.bar.set_style(ProgressStyle::default_spinner()),
                }
                self.bar.set_message(format!("{name}s"));
            }
            ImportStep::Item => self.bar.inc(1),
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

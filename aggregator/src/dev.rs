//! Dev mode's label: once a command runs in dev mode (`--dev`: nothing is proven), every line
//! it prints and logs says so.
//!
//! [`enable`] is called once, before anything is printed; [`say!`](crate::say) prints a line
//! with the label, and the binary's log formatter adds it to every log line ([`LABEL`]).

use std::sync::atomic::{AtomicBool, Ordering};

/// What every line of a dev-mode run starts with.
pub const LABEL: &str = "[DEV MODE: nothing is proven] ";

static DEV_MODE: AtomicBool = AtomicBool::new(false);

/// Marks this process as running in dev mode, for good.
pub fn enable() {
    DEV_MODE.store(true, Ordering::SeqCst);
}

/// Whether this process runs in dev mode.
pub fn enabled() -> bool {
    DEV_MODE.load(Ordering::SeqCst)
}

/// The label when in dev mode, else nothing.
pub fn label() -> &'static str {
    if enabled() {
        LABEL
    } else {
        ""
    }
}

/// `println!` with the dev-mode label in front of every line when in dev mode.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        let text = format!($($arg)*);
        for line in text.lines() {
            println!("{}{}", $crate::dev::label(), line);
        }
    }};
}

//! What the executor, the step machine and the STF circuit share, defined once: the call depth
//! and the step machine's `next` register. (The apps' codes, methods and revert words are in
//! [`crate::abi`], the key spaces in [`crate::state`].)

use serde::{Deserialize, Serialize};

/// Frames open at most at once (a transaction's own call is depth 1).
pub const MAX_CALL_DEPTH: usize = 8;

/// What the next row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Next {
    /// Take the next tape step.
    #[default]
    Fetch = 0,
    /// [`crate::machine::Kind::Move`].
    Move = 1,
    /// [`crate::machine::Kind::Code`].
    Code = 2,
    /// [`crate::machine::Kind::App`].
    App = 3,
    /// [`crate::machine::Kind::Tokens`].
    Tokens = 4,
    /// [`crate::machine::Kind::Call`].
    Call = 5,
    /// [`crate::machine::Kind::Resume`].
    Resume = 6,
    /// End the frame: [`crate::machine::Kind::Mark`], [`crate::machine::Kind::Undo`] or [`crate::machine::Kind::Pop`].
    End = 7,
}

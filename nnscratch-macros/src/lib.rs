//! The `model!` compiler behind nnscratch (filled in by the compiler issue).

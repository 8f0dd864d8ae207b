//! The one error type of nnscratch.
//!
//! Every message says what was expected, what was found and where (which op or
//! layer), so a learner can fix the call without reading our source.

/// Shorthand for `std::result::Result<T, nnscratch::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong on user input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two operands whose shapes do not fit together.
    #[error("{op}: cannot combine shapes {lhs:?} and {rhs:?}: {expected}")]
    ShapeMismatch {
        /// The operation, e.g. `"matmul"`.
        op: &'static str,
        /// Shape of the left operand.
        lhs: Vec<usize>,
        /// Shape of the right operand.
        rhs: Vec<usize>,
        /// What the operation needs, in words.
        expected: String,
    },
    /// One operand whose shape is not what the operation accepts.
    #[error("{op}: expected {expected}, found shape {found:?}")]
    BadShape {
        /// The operation or layer, e.g. `"Linear(10, 30)"`.
        op: String,
        /// What was expected, in words.
        expected: String,
        /// The shape that was passed.
        found: Vec<usize>,
    },
    /// `backward()` called on a tensor with more than one element.
    #[error(
        "backward() needs a scalar, found a tensor of shape {shape:?}; reduce it first \
         (.sum() or .mean()) or pass the upstream gradient with backward_with_grad()"
    )]
    NonScalarBackward {
        /// Shape of the tensor `backward()` was called on.
        shape: Vec<usize>,
    },
    /// An axis argument past the tensor's dimensions.
    #[error("{op}: axis {axis} is out of range for a tensor of shape {shape:?}")]
    AxisOutOfRange {
        /// The operation.
        op: &'static str,
        /// The axis that was asked for.
        axis: usize,
        /// The tensor's shape.
        shape: Vec<usize>,
    },
    /// A class index not smaller than the number of classes.
    #[error(
        "{op}: target {target} at row {row} is out of range: expected a class index below {classes}"
    )]
    ClassOutOfRange {
        /// The loss, e.g. `"cross_entropy"`.
        op: &'static str,
        /// Row of the batch.
        row: usize,
        /// The offending class index.
        target: usize,
        /// Number of classes (width of the logits).
        classes: usize,
    },
    /// A number that must be finite (a loss, a learning rate) is not.
    #[error("{what}: expected a finite number, found {value}")]
    NotFinite {
        /// What was checked, e.g. `"loss"`.
        what: String,
        /// The value found, as text (`NaN`, `inf`).
        value: String,
    },
    /// An argument outside its valid range (a zero width, a negative learning rate, ...).
    #[error("{what}: expected {expected}, found {found}")]
    InvalidArgument {
        /// The argument and where it was passed.
        what: String,
        /// The valid range, in words.
        expected: String,
        /// What was passed.
        found: String,
    },
    /// A tensor too large to allocate: its element count overflows, or memory for it
    /// could not be reserved.
    #[error(
        "{what}: cannot allocate a tensor of shape {shape:?} ({}): {reason}",
        describe_bytes(*.bytes)
    )]
    TooLarge {
        /// What was being built, e.g. `"Linear(3, 1099511627776) weight"`.
        what: String,
        /// The shape requested.
        shape: Vec<usize>,
        /// Bytes requested, or `None` when the count overflows `usize`.
        bytes: Option<u128>,
        /// Why it failed, in words.
        reason: String,
    },
    /// Writing or reading a file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Checks that every class index is below `classes`; the error names the first row that
/// is not. Shared by the dynamic `cross_entropy` and compiled models.
pub(crate) fn check_class_indices(
    op: &'static str,
    targets: &[usize],
    classes: usize,
) -> Result<()> {
    match targets.iter().enumerate().find(|&(_, &t)| t >= classes) {
        Some((row, &target)) => Err(Error::ClassOutOfRange {
            op,
            row,
            target,
            classes,
        }),
        None => Ok(()),
    }
}

/// `"160.0 GiB"`-style text for a byte count (or "more bytes than `usize` holds").
fn describe_bytes(bytes: Option<u128>) -> String {
    match bytes {
        None => "more elements than a usize can count".into(),
        Some(b) if b >= 1 << 30 => format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30)),
        Some(b) if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        Some(b) => format!("{b} bytes"),
    }
}

//! MNIST's IDX format, plain or gzip-compressed.
//!
//! An IDX file is a 4-byte magic number (`0, 0`, a type code, the number of dimensions),
//! one big-endian `u32` per dimension, then the data in row-major order. MNIST uses type
//! `0x08` (unsigned bytes): images `[n, 28, 28]` and labels `[n]`. A file starting with
//! gzip's magic bytes `1f 8b` is decompressed first, so the `.gz` files work as they are.
//!
//! Every problem (a missing file, a bad magic number, a truncated file, a label out of
//! range, images and labels of different counts) is an `Err` naming the file and saying
//! what is wrong; nothing here panics on bad input.

use std::io::Read;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::Dataset;
use crate::{Error, Result};

/// An IDX file's dimensions and its bytes (type `0x08`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idx {
    /// The dimensions, e.g. `[60000, 28, 28]`.
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

fn error(path: &Path, message: impl Into<String>) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: message.into(),
    }
}

/// Reads an IDX file of unsigned bytes (plain or `.gz`).
pub fn read(path: impl AsRef<Path>) -> Result<Idx> {
    let path = path.as_ref();
    let raw = std::fs::read(path).map_err(|e| error(path, format!("cannot read: {e}")))?;
    parse(&raw, path)
}

/// Parses IDX bytes (gzip-compressed or not); `path` is only used in messages.
pub fn parse(raw: &[u8], path: &Path) -> Result<Idx> {
    let bytes: std::borrow::Cow<'_, [u8]> = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw)
            .read_to_end(&mut out)
            .map_err(|e| error(path, format!("corrupt gzip data: {e}")))?;
        out.into()
    } else {
        raw.into()
    };
    if bytes.len() < 4 {
        return Err(error(
            path,
            format!(
                "truncated: {} bytes, too short for the 4-byte IDX header",
                bytes.len()
            ),
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(error(
            path,
            format!(
                "not an IDX file: magic number starts {:02x} {:02x}, expected 00 00",
                bytes[0], bytes[1]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(error(
            path,
            format!(
                "IDX type 0x{:02x} is not supported; expected 0x08 (unsigned bytes)",
                bytes[2]
            ),
        ));
    }
    let ndims = usize::from(bytes[3]);
    let header = 4 + 4 * ndims;
    if ndims == 0 || bytes.len() < header {
        return Err(error(
            path,
            format!(
                "truncated header: {ndims} dimensions need {header} bytes, found {}",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| error(path, format!("dimensions {dims:?} overflow")))?;
    let body = &bytes[header..];
    if body.len() != count {
        return Err(error(
            path,
            format!(
                "data length {} does not match dimensions {dims:?} ({count} values): truncated or corrupt",
                body.len()
            ),
        ));
    }
    Ok(Idx {
        dims,
        data: body.to_vec(),
    })
}

/// Images `[n, rows, cols]` as `[n, rows·cols]` scaled to `0..1`.
pub fn read_images(path: impl AsRef<Path>) -> Result<Array2<f32>> {
    let path = path.as_ref();
    let idx = read(path)?;
    if idx.dims.len() != 3 {
        return Err(error(
            path,
            format!(
                "expected images with 3 dimensions [n, rows, cols], found {:?}",
                idx.dims
            ),
        ));
    }
    let (n, pixels) = (idx.dims[0], idx.dims[1] * idx.dims[2]);
    let values = idx.data.iter().map(|&b| f32::from(b) / 255.0).collect();
    Array2::from_shape_vec((n, pixels), values).map_err(|e| error(path, e.to_string()))
}

/// Labels `[n]`, each below `classes`.
pub fn read_labels(path: impl AsRef<Path>, classes: usize) -> Result<Vec<usize>> {
    let path = path.as_ref();
    let idx = read(path)?;
    if idx.dims.len() != 1 {
        return Err(error(
            path,
            format!("expected labels with 1 dimension [n], found {:?}", idx.dims),
        ));
    }
    let labels: Vec<usize> = idx.data.iter().map(|&b| usize::from(b)).collect();
    if let Some((i, l)) = labels.iter().enumerate().find(|&(_, &l)| l >= classes) {
        return Err(error(
            path,
            format!("label {l} at index {i} is out of range: expected below {classes}"),
        ));
    }
    Ok(labels)
}

/// The file `name` in `dir`, plain or `.gz`, under either of MNIST's naming conventions
/// (`train-images-idx3-ubyte` or `train-images.idx3-ubyte`).
fn find(dir: &Path, stem: &str, kind: &str) -> Result<PathBuf> {
    let names = [format!("{stem}-{kind}"), format!("{stem}.{kind}")];
    for name in &names {
        for candidate in [dir.join(name), dir.join(format!("{name}.gz"))] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(error(
        &dir.join(&names[1]),
        format!(
            "missing: expected {0} or {0}.gz (or {1}) in {2}",
            names[1],
            names[0],
            dir.display()
        ),
    ))
}

/// MNIST from a directory holding the four IDX files: (train, test).
pub fn mnist(dir: impl AsRef<Path>) -> Result<(Dataset, Dataset)> {
    let dir = dir.as_ref();
    let load = |prefix: &str| -> Result<Dataset> {
        let images_path = find(dir, &format!("{prefix}-images"), "idx3-ubyte")?;
        let labels_path = find(dir, &format!("{prefix}-labels"), "idx1-ubyte")?;
        let inputs = read_images(&images_path)?;
        let labels = read_labels(&labels_path, 10)?;
        if inputs.nrows() != labels.len() {
            return Err(error(
                &labels_path,
                format!(
                    "{} labels for {} images in {}",
                    labels.len(),
                    inputs.nrows(),
                    images_path.display()
                ),
            ));
        }
        Ok(Dataset { inputs, labels })
    };
    Ok((load("train")?, load("t10k")?))
}

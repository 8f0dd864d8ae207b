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

/// Deflate cannot expand data by more than this factor (its longest match, 258 bytes,
/// costs at least two bits), so a gzip file of `n` bytes holds at most about `1032·n`.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Reads an IDX file of unsigned bytes (plain or `.gz`).
///
/// The header is checked before the data is read, and the read is bounded by the size
/// the header implies and by what the file's length can hold (for gzip, its length
/// times deflate's largest expansion): a header that claims more data than the file
/// can hold is an error before any large allocation, and neither a device such as
/// `/dev/zero` nor a decompression bomb can make the reader run out of memory.
pub fn read(path: impl AsRef<Path>) -> Result<Idx> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| error(path, format!("cannot read: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| error(path, format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(error(path, "not a regular file: expected an IDX file"));
    }
    let mut reader = std::io::BufReader::new(file);
    let gzip = {
        let start = std::io::BufRead::fill_buf(&mut reader)
            .map_err(|e| error(path, format!("cannot read: {e}")))?;
        start.starts_with(&[0x1f, 0x8b])
    };
    if gzip {
        let limit = meta.len().saturating_mul(MAX_DEFLATE_RATIO);
        parse_reader(flate2::bufread::GzDecoder::new(reader), limit, true, path)
    } else {
        parse_reader(reader, meta.len(), false, path)
    }
}

/// Parses IDX bytes (gzip-compressed or not); `path` is only used in messages.
pub fn parse(raw: &[u8], path: &Path) -> Result<Idx> {
    let length = raw.len() as u64;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let decoder = flate2::read::GzDecoder::new(raw);
        parse_reader(
            decoder,
            length.saturating_mul(MAX_DEFLATE_RATIO),
            true,
            path,
        )
    } else {
        parse_reader(raw, length, false, path)
    }
}

/// Reads an IDX stream holding at most `limit` bytes: the header first, then exactly
/// the data it implies.
fn parse_reader(mut reader: impl Read, limit: u64, gzip: bool, path: &Path) -> Result<Idx> {
    let read_error = |e: std::io::Error| {
        if gzip {
            error(path, format!("corrupt gzip data: {e}"))
        } else {
            error(path, format!("cannot read: {e}"))
        }
    };
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut reader, &mut magic).map_err(read_error)?;
    if got < 4 {
        return Err(error(
            path,
            format!("truncated: {got} bytes, too short for the 4-byte IDX header"),
        ));
    }
    if magic[0] != 0 || magic[1] != 0 {
        return Err(error(
            path,
            format!(
                "not an IDX file: magic number starts {:02x} {:02x}, expected 00 00",
                magic[0], magic[1]
            ),
        ));
    }
    if magic[2] != 0x08 {
        return Err(error(
            path,
            format!(
                "IDX type 0x{:02x} is not supported; expected 0x08 (unsigned bytes)",
                magic[2]
            ),
        ));
    }
    let ndims = usize::from(magic[3]);
    let header = 4 + 4 * ndims;
    let mut dim_bytes = vec![0u8; 4 * ndims];
    let got = read_up_to(&mut reader, &mut dim_bytes).map_err(read_error)?;
    if ndims == 0 || got < dim_bytes.len() {
        return Err(error(
            path,
            format!(
                "truncated header: {ndims} dimensions need {header} bytes, found {}",
                4 + got
            ),
        ));
    }
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| error(path, format!("dimensions {dims:?} overflow")))?;
    let room = limit.saturating_sub(header as u64);
    if count as u64 > room {
        let message = if gzip {
            format!(
                "dimensions {dims:?} need {count} bytes of data, more than a gzip file of this \
                 size can hold ({room}): truncated or corrupt"
            )
        } else {
            format!(
                "data length {room} does not match dimensions {dims:?} ({count} values): truncated or corrupt"
            )
        };
        return Err(error(path, message));
    }
    // Plain files were just checked against their length, so reserving is safe; a gzip
    // stream grows its buffer as data actually arrives.
    let mut data = if gzip {
        Vec::new()
    } else {
        crate::alloc::try_with_capacity("IDX data", &dims, count)?
    };
    reader
        .take(count as u64 + 1)
        .read_to_end(&mut data)
        .map_err(read_error)?;
    if data.len() != count {
        let found = if data.len() > count {
            "more".to_string()
        } else {
            data.len().to_string()
        };
        return Err(error(
            path,
            format!(
                "data length {found} does not match dimensions {dims:?} ({count} values): truncated or corrupt"
            ),
        ));
    }
    Ok(Idx { dims, data })
}

/// Fills `buffer` as far as the stream allows; returns how many bytes were read.
fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
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

//! The embedded handwritten-digits data set.
//!
//! Source: the test set of the UCI "Optical Recognition of Handwritten Digits" data set
//! (E. Alpaydin, C. Kaynak, Department of Computer Engineering, Bogazici University,
//! 1998), as bundled with scikit-learn (`sklearn/datasets/data/digits.csv.gz`). 1797
//! samples of 8x8 pixels with values 0..16; each CSV row holds the 64 pixels in row order
//! and then the label 0..9. The file (57 KB) is compiled into the crate, so examples run
//! on a fresh machine without downloading anything.

use std::io::Read;

use ndarray::Array2;

use super::Dataset;
use crate::{Error, Result};

/// The gzip-compressed CSV, sha256 09f66e6d…e23aa22.
const DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// Pixels per image (8x8).
pub const PIXELS: usize = 64;

/// The 1797 digits: inputs `[1797, 64]` scaled from 0..16 to 0..1, labels 0..9.
pub fn digits() -> Result<Dataset> {
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut text)
        .map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
    parse_csv(&text)
}

/// Parses text in the embedded file's format (rows of 64 pixel values 0..16, then a
/// label 0..9); what [`digits`] uses, public so that any copy of the file (or a fuzzer)
/// can be read. A malformed row is an `Err` naming its line.
pub fn parse_digits_csv(text: &str) -> Result<Dataset> {
    parse_csv(text)
}

fn corrupt(message: String) -> Error {
    Error::Io {
        path: "embedded digits.csv.gz".into(),
        message,
    }
}

/// Parses `64 pixels, label` rows.
fn parse_csv(text: &str) -> Result<Dataset> {
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (line_number, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.len() != PIXELS + 1 {
            return Err(corrupt(format!(
                "line {}: expected {} columns, found {}",
                line_number + 1,
                PIXELS + 1,
                fields.len()
            )));
        }
        for field in &fields[..PIXELS] {
            let value: f32 = field
                .trim()
                .parse()
                .ok()
                .filter(|v: &f32| (0.0..=16.0).contains(v))
                .ok_or_else(|| {
                    corrupt(format!(
                        "line {}: `{field}` is not a pixel value from 0 to 16",
                        line_number + 1
                    ))
                })?;
            pixels.push(value / 16.0);
        }
        let label: usize = fields[PIXELS]
            .trim()
            .parse()
            .ok()
            .filter(|&l| l < 10)
            .ok_or_else(|| {
                corrupt(format!(
                    "line {}: label `{}` is not a digit from 0 to 9",
                    line_number + 1,
                    fields[PIXELS].trim()
                ))
            })?;
        labels.push(label);
    }
    let inputs = Array2::from_shape_vec((labels.len(), PIXELS), pixels)
        .map_err(|e| corrupt(e.to_string()))?;
    Ok(Dataset { inputs, labels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_digits_have_1797_samples_of_every_class() {
        let d = digits().unwrap();
        assert_eq!(d.inputs.dim(), (1797, 64));
        let mut counts = [0usize; 10];
        for &l in &d.labels {
            counts[l] += 1;
        }
        // The UCI test set has 174 to 183 samples of each digit.
        assert!(
            counts.iter().all(|&c| (170..=185).contains(&c)),
            "{counts:?}"
        );
        assert!(d.inputs.iter().all(|&v| (0.0..=1.0).contains(&v)));
        // First row of the file: a zero.
        assert_eq!(d.labels[0], 0);
        assert_eq!(d.inputs[[0, 2]], 5.0 / 16.0);
    }

    #[test]
    fn a_malformed_row_is_an_error_naming_the_line() {
        let error = parse_csv("1,2,3\n").unwrap_err().to_string();
        assert!(
            error.contains("line 1") && error.contains("65 columns"),
            "{error}"
        );
    }
}

//! Small helpers shared by the training examples: command-line flags, a progress bar,
//! accuracy and a confusion matrix. (Included with `#[path]`; not an example itself.)

#![allow(dead_code)]

use std::collections::HashMap;
use std::str::FromStr;

/// `--name value` flags and positional arguments, with a usage text for mistakes.
pub struct Args {
    flags: HashMap<String, String>,
    pub positional: Vec<String>,
    usage: &'static str,
}

impl Args {
    /// Parses `std::env::args()`; `known` lists the flags that take a value.
    pub fn parse(usage: &'static str, known: &[&str]) -> Result<Args, String> {
        let mut flags = HashMap::new();
        let mut positional = Vec::new();
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                println!("{usage}");
                std::process::exit(0);
            }
            if let Some(name) = arg.strip_prefix("--") {
                if !known.contains(&name) {
                    return Err(format!("unknown flag --{name}\n\n{usage}"));
                }
                let value = args
                    .next()
                    .ok_or_else(|| format!("--{name} needs a value\n\n{usage}"))?;
                flags.insert(name.to_string(), value);
            } else {
                positional.push(arg);
            }
        }
        Ok(Args {
            flags,
            positional,
            usage,
        })
    }

    /// The value of `--name`, parsed, or `default`.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.flags.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse()
                .map_err(|_| format!("--{name}: cannot read `{text}`\n\n{}", self.usage)),
        }
    }

    /// The value of `--name`, if given.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.flags.get(name).cloned()
    }
}

/// A progress bar over `len` steps (epochs or batches), drawn on stderr.
pub fn progress_bar(len: u64, unit: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    let template = format!(
        "{{bar:40.cyan/blue}} {{pos:>5}}/{{len}} {unit}  {{msg}}  [{{elapsed_precise}}<{{eta}}]"
    );
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Index of the largest value of each row: the predicted class.
pub fn predictions(scores: ndarray::ArrayView2<'_, f32>) -> Vec<usize> {
    scores
        .rows()
        .into_iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                })
                .0
        })
        .collect()
}

/// `matrix[true][predicted]` counts.
pub fn confusion_matrix(labels: &[usize], predicted: &[usize], classes: usize) -> Vec<Vec<usize>> {
    let mut matrix = vec![vec![0; classes]; classes];
    for (&truth, &guess) in labels.iter().zip(predicted) {
        matrix[truth][guess] += 1;
    }
    matrix
}

/// Prints a confusion matrix with row and column headers.
pub fn print_confusion_matrix(matrix: &[Vec<usize>]) {
    print!("true\\pred");
    for c in 0..matrix.len() {
        print!("{c:>5}");
    }
    println!();
    for (truth, row) in matrix.iter().enumerate() {
        print!("{truth:>9}");
        for count in row {
            print!("{count:>5}");
        }
        println!();
    }
}

/// `--export-onnx PATH`: writes the trained model as ONNX, in evaluation mode, for
/// onnxruntime, tract and the other ONNX engines.
pub fn export_onnx_if_asked<T: nnscratch::Float, M: nnscratch::compiled::CompiledModel<T>>(
    net: &M,
    args: &Args,
) -> Result<(), String> {
    if let Some(path) = args.optional("export-onnx") {
        net.export_onnx(&path).map_err(|e| e.to_string())?;
        println!(
            "exported the model to {path} (ONNX opset {})",
            nnscratch::onnx::OPSET
        );
    }
    Ok(())
}

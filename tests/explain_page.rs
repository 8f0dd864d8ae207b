//! The step-through page (`graph::explain`): its data against the engine, its size for
//! the MNIST MLP, and the page itself driven in headless Chromium.
//!
//! The browser is driven through its own command line (`--dump-dom`, `--screenshot`),
//! not a WebDriver or DevTools client: no async runtime or driver crate in the tree,
//! and nothing to keep in step with the browser's version. The page reads `#step=K` to
//! open step K, and `#selftest=keys` makes it press keys on itself through the same
//! `keydown` listener a real key press reaches, then writes what it saw into the DOM.
//!
//! Reliability on a slow, shared machine: `--virtual-time-budget` lets the page's
//! scripts run to completion in virtual time before the DOM is dumped (no sleeps, no
//! polling); every run has its own profile directory; a run gets 120 s and one retry,
//! since a browser that fails to start under load is not the page's failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use ndarray::ArrayD;
use nnscratch::nn::{Linear, Module, ReLU, Sequential};
use nnscratch::{Tensor, graph};
use rand::SeedableRng;
use serde_json::Value;

/// A small network with a loss in which one value (`h`) is used twice, so that its
/// gradient arrives in two contributions.
fn fan_out_graph() -> (Tensor<f64>, Vec<Tensor<f64>>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let layer = Linear::<f64>::new(3, 4, &mut rng).unwrap();
    let x = Tensor::from([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]).with_label("x");
    let h = layer.forward(&x).unwrap().tanh().with_label("h");
    let y = (&h * &h + &h).with_label("y");
    let loss = y.mean().with_label("loss");
    let params = vec![
        layer.weight.clone(),
        layer.bias.clone().expect("Linear::new has a bias"),
    ];
    (loss, params)
}

/// The JSON the page embeds.
fn page_data(html: &str) -> Value {
    let start = html
        .find(r#"<script type="application/json" id="data">"#)
        .expect("the page embeds its data");
    let rest = &html[start..];
    let body = &rest[rest.find('>').unwrap() + 1..rest.find("</script>").unwrap()];
    serde_json::from_str(&body.replace("<\\/", "</")).expect("valid JSON")
}

/// Decodes a tensor of the page (numbers, base64 bytes, or a reference).
fn decode(data: &Value, enc: &Value) -> Vec<f64> {
    if let Some(name) = enc.get("ref").and_then(Value::as_str) {
        let (head, field) = name.split_once('.').unwrap();
        let i: usize = head[1..].parse().unwrap();
        let target = match &head[..1] {
            "n" => &data["nodes"][i][field],
            "e" => &data["edges"][i]["local"],
            _ => &data["backward"][i]["sent"][field.parse::<usize>().unwrap()]["contribution"],
        };
        let values = decode(data, target);
        if enc.get("transpose").is_some() {
            let shape: Vec<usize> = serde_json::from_value(target["shape"].clone()).unwrap();
            let (r, c) = (shape[0], shape[1]);
            return (0..r * c).map(|k| values[(k % r) * c + k / r]).collect();
        }
        return values;
    }
    if let Some(b64) = enc.get("b64").and_then(Value::as_str) {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap();
        return if enc["dtype"] == "f32" {
            bytes
                .chunks_exact(4)
                .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
                .collect()
        } else {
            bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect()
        };
    }
    serde_json::from_value(enc["data"].clone()).unwrap()
}

fn values(a: &ArrayD<f64>) -> Vec<f64> {
    a.iter().copied().collect()
}

/// The order backward() finishes nodes in: reverse topological, those that need a
/// gradient (written independently of the engine's walk).
fn backward_order(loss: &Tensor<f64>) -> Vec<usize> {
    let order = loss.topological_order();
    (0..order.len())
        .rev()
        .filter(|&i| order[i].requires_grad())
        .collect()
}

#[test]
fn the_page_records_backward_exactly_as_the_engine_runs_it() {
    let (loss, params) = fan_out_graph();
    let html = graph::explain_html(&loss, "fan-out").unwrap();
    loss.backward().unwrap();
    let data = page_data(&html);
    let order = loss.topological_order();
    assert_eq!(data["nodes"].as_array().unwrap().len(), order.len());

    let steps: Vec<usize> = data["backward"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["node"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(steps, backward_order(&loss));
    for (n, tensor) in order.iter().enumerate() {
        let node = &data["nodes"][n];
        assert_eq!(decode(&data, &node["value"]), values(&tensor.to_array()));
        match tensor.grad() {
            Some(grad) => assert_eq!(decode(&data, &node["grad"]), values(&grad), "node {n}"),
            None => assert!(node["grad"].is_null()),
        }
    }
    // `h` is used three times (twice by `*`, once by `+`): three contributions, which
    // sum to its gradient.
    let h = order
        .iter()
        .position(|t| t.label().as_deref() == Some("h"))
        .unwrap();
    assert_eq!(data["nodes"][h]["uses"], 3);
    let mut sum = [0.0; 8];
    let mut nth = Vec::new();
    for step in data["backward"].as_array().unwrap() {
        for sent in step["sent"].as_array().unwrap() {
            if sent["parent"] == h {
                nth.push(sent["nth"].as_u64().unwrap());
                for (s, v) in sum.iter_mut().zip(decode(&data, &sent["contribution"])) {
                    *s += v;
                }
            }
        }
    }
    assert_eq!(nth, [1, 2, 3]);
    let h_grad = values(&order[h].grad().unwrap());
    for (s, g) in sum.iter().zip(&h_grad) {
        assert!((s - g).abs() <= 1e-15 * g.abs().max(1.0), "{s} vs {g}");
    }
    // One finite-difference check per parameter, all passing in f64.
    let checks = data["checks"].as_array().unwrap();
    assert_eq!(checks.len(), params.len());
    for check in checks {
        assert_eq!(check["status"], "ok", "{check}");
    }
    // Nothing is fetched: the only URL is the SVG namespace.
    let urls = html.matches("http").count();
    assert_eq!(urls, html.matches("http://www.w3.org/2000/svg").count());
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
}

#[test]
fn flags_name_dead_relu_units_and_saturated_tanh() {
    let x = Tensor::from([[-1.0, 2.0, -3.0], [-2.0, 1.0, -1.0]]);
    let w = Tensor::from([[4.0, 0.0, 0.0], [0.0, 4.0, 0.0], [0.0, 0.0, 1.0]]).requires_grad_();
    let z = x.matmul(&w).unwrap();
    let loss = (z.relu().sum() + z.tanh().sum()).with_label("loss");
    let data = page_data(&graph::explain_html(&loss, "flags").unwrap());
    let flags: Vec<String> = data["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["flags"].as_array().unwrap().clone())
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    // z = [[-4, 8, -3], [-8, 4, -1]]: columns 0 and 2 are negative for both examples;
    // |tanh z| > 0.99 where |z| >= 3 (5 of 6).
    assert!(
        flags.iter().any(|f| f.contains("dead ReLU: 2 of 3 units")),
        "{flags:?}"
    );
    assert!(
        flags.iter().any(|f| f.contains("saturated tanh: 5 of 6")),
        "{flags:?}"
    );
}

#[test]
fn the_mnist_mlp_page_at_batch_1_stays_under_5_mb() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let model = Sequential::<f32>::new(
        [
            nnscratch::nn::Linear(784, 256),
            ReLU,
            nnscratch::nn::Linear(256, 128),
            ReLU,
            nnscratch::nn::Linear(128, 10),
        ],
        &mut rng,
    )
    .unwrap();
    let x = Tensor::from(ndarray::Array2::from_shape_fn((1, 784), |(_, j)| {
        ((j * 37) % 255) as f32 / 255.0
    }));
    let loss = model.forward(&x).unwrap().cross_entropy(&[3]).unwrap();
    let started = Instant::now();
    let html = graph::explain_html(&loss, "mnist").unwrap();
    let bytes = html.len();
    println!(
        "MNIST MLP (784-256-128-10, f32) page at batch 1: {bytes} bytes, built in {:?}",
        started.elapsed()
    );
    assert!(bytes <= 5_000_000, "{bytes} bytes");
    if let Ok(dir) = std::env::var("NNSCRATCH_KEEP_PAGES") {
        std::fs::write(Path::new(&dir).join("mnist_mlp.html"), &html).unwrap();
    }
    // Its large tensors are stored exactly, as base64 of f32 bytes.
    let data = page_data(&html);
    let w = data["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["label"] == "0.weight")
        .unwrap();
    assert_eq!(w["value"]["dtype"], "f32");
    assert_eq!(
        decode(&data, &w["value"]).len(),
        784 * 256,
        "every weight is on the page"
    );
}

// ---------------------------------------------------------------- in a real browser

fn chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("NNSCRATCH_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(name))
                    .find(|p| p.is_file())
            })
        })
}

/// Runs headless Chromium on `url` with `mode` (`--dump-dom`, `--screenshot=..`) and
/// returns its standard output; one retry when the browser itself fails.
fn run_chromium(browser: &Path, mode: &str, url: &str) -> String {
    let mut last_error = String::new();
    for _attempt in 0..2 {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1400,900",
                "--virtual-time-budget=10000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg(mode)
            .arg(url)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            match child.try_wait().unwrap() {
                Some(status) => {
                    let mut out = String::new();
                    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out)
                        .unwrap();
                    if status.success() {
                        return out;
                    }
                    last_error = format!("exit status {status}");
                    break;
                }
                None if Instant::now() > deadline => {
                    let _ = child.kill();
                    last_error = "no answer within 120 s".into();
                    break;
                }
                None => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
    panic!("chromium failed twice on {url}: {last_error}");
}

/// The value of attribute `name` on the element with id `id` in dumped HTML.
fn attribute(dom: &str, id: &str, name: &str) -> Option<String> {
    let start = dom.find(&format!("id=\"{id}\""))?;
    let tag_start = dom[..start].rfind('<')?;
    let tag = &dom[tag_start..tag_start + dom[tag_start..].find('>')?];
    let key = format!("{name}=\"");
    let at = tag.find(&key)? + key.len();
    let value = &tag[at..at + tag[at..].find('"')?];
    Some(value.replace("&quot;", "\"").replace("&amp;", "&"))
}

#[test]
fn the_page_steps_through_in_headless_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var_os("CI").is_some() {
            panic!("chromium is not installed: .ci/run installs it (apt-get install chromium)");
        }
        eprintln!(
            "skipped: no chromium on PATH (set NNSCRATCH_CHROMIUM, or apt-get install chromium)"
        );
        return;
    };
    let (loss, _) = fan_out_graph();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("fan-out.html");
    graph::explain(&loss, &page).unwrap();
    loss.backward().unwrap();
    let url = format!("file://{}", page.display());
    let order = loss.topological_order();
    let forward_steps = order.len();
    let backward = backward_order(&loss);

    // Step k of the backward pass highlights the engine's k-th node and shows its
    // gradient, exactly.
    for k in [0, 1, backward.len() / 2, backward.len() - 1] {
        let step = 1 + forward_steps + k;
        let dom = run_chromium(&browser, "--dump-dom", &format!("{url}#step={step}"));
        assert_eq!(
            attribute(&dom, "status", "data-step").as_deref(),
            Some(&*step.to_string())
        );
        assert_eq!(
            attribute(&dom, "status", "data-phase").as_deref(),
            Some("backward")
        );
        let node: usize = attribute(&dom, "status", "data-node")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(node, backward[k], "backward step {k}");
        // That node, and only that node, is highlighted.
        for n in 0..order.len() {
            let class = attribute(&dom, &format!("node-{n}"), "class").unwrap();
            let highlighted = class.split(' ').any(|c| c == "current");
            assert_eq!(highlighted, n == node, "node {n}: class {class}");
        }
        let shown: Vec<f64> =
            serde_json::from_str(&attribute(&dom, "grad-shown", "data-values").unwrap()).unwrap();
        assert_eq!(
            shown,
            values(&order[node].grad().unwrap()),
            "gradient at step {step}"
        );
    }
    // A forward step shows the value computed there.
    let dom = run_chromium(
        &browser,
        "--dump-dom",
        &format!("{url}#step={forward_steps}"),
    );
    let node: usize = attribute(&dom, "status", "data-node")
        .unwrap()
        .parse()
        .unwrap();
    let shown: Vec<f64> =
        serde_json::from_str(&attribute(&dom, "value-shown", "data-values").unwrap()).unwrap();
    assert_eq!(shown, values(&order[node].to_array()));

    // The keyboard: → → → ← End → Home ←.
    let dom = run_chromium(&browser, "--dump-dom", &format!("{url}#selftest=keys"));
    let seen: Vec<usize> =
        serde_json::from_str(&attribute(&dom, "selftest", "data-seen").unwrap()).unwrap();
    let last = forward_steps + backward.len();
    assert_eq!(seen, [1, 2, 3, 2, last, last, 0, 0]);

    // A screenshot mid-backward is not blank: many pixels are neither white nor one
    // colour.
    let shot = dir.path().join("shot.png");
    let middle = 1 + forward_steps + backward.len() / 2;
    run_chromium(
        &browser,
        &format!("--screenshot={}", shot.display()),
        &format!("{url}#step={middle}"),
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    let total = (info.width * info.height) as usize;
    let non_white = pixels[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| p[..3].iter().any(|&c| c < 240))
        .count();
    let colours: std::collections::HashSet<&[u8]> =
        pixels[..info.buffer_size()].chunks(channels).collect();
    println!(
        "screenshot {}x{}: {non_white} of {total} pixels not white, {} colours",
        info.width,
        info.height,
        colours.len()
    );
    assert!(
        non_white * 50 > total,
        "at least 2% of the screenshot is drawn"
    );
    assert!(colours.len() > 20, "more than a blank page's few colours");
}

nnscratch::model! {
    struct Skip {
        x = input(2);
        h = Tanh(Linear(x, 3));
        y = Linear(h, 2) + x;
        out = Linear(y, 1);
        loss = MSELoss(out);
    }
}

#[test]
fn a_compiled_model_page_shows_what_model_derived_beside_each_value() {
    use nnscratch::compiled::{self, CompiledModel, Target};
    let model = Skip::<f64>::new(&mut rand::rngs::StdRng::seed_from_u64(1));
    let (x, target) = (ndarray::arr2(&[[0.5, -1.0]]), ndarray::arr2(&[[0.25]]));
    let html = compiled::explain_html(&model, x.view(), Target::Values(target.view())).unwrap();
    let data = page_data(&html);
    let nodes = data["nodes"].as_array().unwrap();
    let by_label = |label: &str| {
        nodes
            .iter()
            .find(|n| n["label"] == label)
            .unwrap_or_else(|| panic!("a node labelled {label}"))
    };
    // Every derived equation appears beside its value, with the kernel calls.
    for d in <Skip<f64> as CompiledModel<f64>>::DERIVATION {
        let node = by_label(d.value);
        let equations: Vec<&str> = node["equations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.as_str().unwrap())
            .collect();
        assert_eq!(equations[0], d.forward);
        assert_eq!(&equations[1..], d.backward);
        for line in d.backward {
            assert!(
                Skip::<f64>::BACKWARD_EQUATIONS.contains(line),
                "{line} is one of the derived equations"
            );
        }
        let code = node["code"].as_array().unwrap();
        assert_eq!(
            code.len(),
            usize::from(!d.forward_code.is_empty()) + d.backward_code.len()
        );
    }
    let h_code = by_label("h")["code"].to_string();
    assert!(
        h_code.contains("kernels::tanh_forward(h_1.view(), h.view_mut());"),
        "{h_code}"
    );
    assert!(h_code.contains("kernels::tanh_backward("), "{h_code}");
    // The twin's gradients are the compiled model's (the page's checks pass too).
    for check in data["checks"].as_array().unwrap() {
        assert_eq!(check["status"], "ok", "{check}");
    }
}

//! Keeps the benchmark's interface working (`bench --steps 2`) without timing anything:
//! speed is measured by running the example, never by a test.

#[path = "../examples/bench.rs"]
mod bench;

fn args(text: &str) -> Vec<String> {
    text.split_whitespace().map(String::from).collect()
}

#[test]
fn every_workload_and_engine_runs_two_steps_and_prints_json() {
    for workload in ["w1", "w2", "w3", "seed-fit"] {
        for engine in ["compiled", "dynamic"] {
            let options = bench::parse(&args(&format!(
                "--workload {workload} --engine {engine} --steps 2 --json"
            )))
            .unwrap();
            let record = bench::run(&options).unwrap();
            let json = record.json();
            assert!(
                json.starts_with(&format!(
                    "{{\"workload\":\"{workload}\",\"engine\":\"{engine}\",\"threads\":1,"
                )),
                "{json}"
            );
            assert!(
                record.us_per_step > 0.0 && record.us_per_step.is_finite(),
                "{json}"
            );
            assert_eq!(record.gflops.is_some(), workload == "w3", "{json}");
            assert_eq!(
                record.total_seconds.is_some(),
                workload == "seed-fit",
                "{json}"
            );
        }
    }
}

#[test]
fn the_compiled_engine_runs_on_two_threads() {
    let options = bench::parse(&args("--workload w3 --threads 2 --steps 2")).unwrap();
    assert_eq!(bench::run(&options).unwrap().threads, 2);
}

#[test]
fn the_fma_peak_is_a_positive_rate_where_the_cpu_has_fma() {
    for threads in [1, 2] {
        if let Some(gflops) = bench::fma_peak(threads, 1000) {
            assert!(gflops.is_finite() && gflops > 0.0, "{gflops}");
        }
    }
}

#[test]
fn bad_flags_are_reported_with_the_usage() {
    for bad in [
        "",
        "--workload w9",
        "--workload w1 --engine jax",
        "--workload w1 --threads 0",
        "--workload w1 --steps x",
        "--frobnicate",
    ] {
        let message = bench::parse(&args(bad))
            .err()
            .unwrap_or_else(|| panic!("`{bad}` should be refused"));
        assert!(message.contains("usage: bench"), "{message}");
    }
}

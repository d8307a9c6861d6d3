//! The benchmark table. Every bench reports its figures through [`row`] (printed at once),
//! and `cargo bench --bench suite -- --scale 1m` runs every bench in one process and
//! prints all rows as one markdown table. Size knobs come from the suite's scale, else
//! from the environment, else the bench's default.
#![allow(dead_code)]

use std::sync::Mutex;

pub struct Row {
    pub bench: String,
    pub figure: String,
    pub value: String,
    pub baseline: String,
    pub ratio: f64,
    pub goal: String,
}

static ROWS: Mutex<Vec<Row>> = Mutex::new(Vec::new());
static KNOBS: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());
static BENCH: Mutex<String> = Mutex::new(String::new());

/// A size knob: the suite's setting, else the environment variable `name`, else
/// `default`.
pub fn knob(name: &str, default: usize) -> usize {
    let set = KNOBS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| *v);
    set.or_else(|| std::env::var(name).ok().and_then(|v| v.parse().ok()))
        .unwrap_or(default)
}

/// Sets a knob for the benches run after (the suite's scale).
pub fn set_knob(name: &str, value: usize) {
    let mut knobs = KNOBS.lock().unwrap_or_else(|e| e.into_inner());
    knobs.retain(|(k, _)| k != name);
    knobs.push((name.to_string(), value));
}

/// Names the bench whose rows follow.
pub fn bench(name: &str) {
    *BENCH.lock().unwrap_or_else(|e| e.into_inner()) = name.to_string();
}

/// Reports one figure with its baseline measured in the same run, their ratio and the
/// goal.
pub fn row(figure: &str, value: String, baseline: String, ratio: f64, goal: &str) {
    println!(
        "  [table] {figure}: {value} | baseline {baseline} | ratio {} | goal {goal}",
        ratio_text(ratio)
    );
    let bench = BENCH.lock().unwrap_or_else(|e| e.into_inner()).clone();
    ROWS.lock().unwrap_or_else(|e| e.into_inner()).push(Row {
        bench,
        figure: figure.to_string(),
        value,
        baseline,
        ratio,
        goal: goal.to_string(),
    });
}

/// Every row reported so far, as one markdown table.
pub fn markdown() -> String {
    let mut out = String::from(
        "| bench | figure | akte | baseline (same run) | ratio | goal |\n|---|---|---|---|---|---|\n",
    );
    for r in ROWS.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.bench,
            r.figure,
            r.value,
            r.baseline,
            ratio_text(r.ratio),
            r.goal
        ));
    }
    out
}

/// A ratio with two decimals, or a dash where there is no baseline.
fn ratio_text(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{ratio:.2}")
    } else {
        "—".into()
    }
}

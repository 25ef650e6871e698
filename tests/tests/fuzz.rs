//! A seeded mutation fuzz of the input checks: every shipped input
//! (`tests/inputs/*.inp`, `examples/*.inp`) is mutated (tokens and lines
//! deleted, duplicated, swapped or replaced, hostile tokens inserted: huge
//! numbers, `-1`, very long names, `%`, unicode dashes, empty values) and
//! checked by `mlmix_spec::load_source`, each case on its own thread, which
//! must
//! - not panic,
//! - finish within [`CASE_LIMIT`],
//! - say what it says in a bounded text (errors and warnings rendered in
//!   at most [`MAX_TEXT`] bytes),
//! - and, when it accepts the input, hand the engine a model it takes:
//!   `Plan::compile` succeeds, and the fixed values with the starting
//!   values prepare (`eval::prepare`) — what `fit` would refuse from the
//!   input alone, `check` must already have said.
//!
//! The mutations are drawn from a fixed seed, so a failure repeats; its
//! message prints the case number and the mutated text. Run with
//! `MLMIX_FUZZ_CASES=n` for more (or fewer) cases per input.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mlmix::spec::{Loaded, Source, load_source};
use mlmix::starts::{StartBuilder, param_map};
use mlmix_kernels::{Plan, prepare};
use mlmix_tests::tests_dir;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The longest one case may take (loading the largest shipped data file
/// takes well under a second).
const CASE_LIMIT: Duration = Duration::from_secs(20);

/// The most bytes the errors and warnings of one case may render to.
const MAX_TEXT: usize = 64 * 1024;

/// Cases per input by default: about 4,500 in all, some 10 s
/// in the debug test profile on 2 cores.
const DEFAULT_CASES: usize = 300;

/// Tokens that have broken parsers before: numbers that overflow or are
/// out of any parameter's domain, names longer than any line, markers,
/// dashes that look like `-`, empty values.
const HOSTILE: &[&str] = &[
    "1e308",
    "-1e308",
    "1e309",
    "1e-320",
    "-1",
    "0",
    "-0",
    "99999999999999999999999999",
    "NaN",
    "inf",
    "@-1",
    "@1e308",
    "@1e309",
    "*1e308",
    "*-1",
    "@0",
    "%",
    "%%",
    "%c#1%",
    "%BETWEEN%",
    "%WITHIN%",
    "%OVERALL%",
    "\u{2013}",
    "\u{2014}",
    "\u{2212}",
    "a\u{2013}b",
    "",
    ";",
    "=",
    "= ;",
    ":",
    "-",
    "$",
    "$0",
    "#",
    "#0",
    "(",
    ")",
    "|",
    "!",
    "\"",
    "ON",
    "WITH",
    "BY",
    "c#0",
    "y$0",
    "u1-u99999999",
    "x1-x1000000",
    "(1-100000000)",
    "MODEL:",
    "DATA:",
    "FILE = .;",
    "CATEGORICAL =",
    "CLASSES = c(0);",
    "CLASSES = c(100000);",
    "STARTS = 1e308 1;",
    "\t",
    "\r",
    "\u{feff}",
    "é",
];

/// The shipped inputs: `tests/inputs/*.inp` and `examples/*.inp`.
fn shipped_inputs() -> Vec<PathBuf> {
    let root = tests_dir();
    let mut out = Vec::new();
    for dir in [root.join("inputs"), root.join("../examples")] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "inp"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

/// Splits text into tokens that join back into it: runs of name
/// characters, runs of blanks, line ends, and single other characters.
fn tokens(text: &str) -> Vec<String> {
    let class = |c: char| {
        if c.is_alphanumeric() || matches!(c, '_' | '.' | '$' | '#') {
            0
        } else if c == ' ' || c == '\t' {
            1
        } else {
            2
        }
    };
    let mut out: Vec<String> = Vec::new();
    let mut last = None;
    for c in text.chars() {
        let k = class(c);
        match out.last_mut() {
            Some(t) if last == Some(k) && k != 2 => t.push(c),
            _ => out.push(c.to_string()),
        }
        last = Some(k);
    }
    out
}

/// A hostile token, or a very long name.
fn hostile(rng: &mut ChaCha8Rng) -> String {
    match rng.random_range(0..HOSTILE.len() + 2) {
        i if i < HOSTILE.len() => HOSTILE[i].to_string(),
        i if i == HOSTILE.len() => "v".repeat(rng.random_range(100..20_000)),
        _ => format!("{}1-{}9", "w".repeat(300), "w".repeat(300)),
    }
}

/// One mutation of `text`.
fn mutate_once(text: &str, rng: &mut ChaCha8Rng) -> String {
    if rng.random_range(0..4) == 0 {
        // a line
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.is_empty() {
            return hostile(rng);
        }
        let i = rng.random_range(0..lines.len());
        match rng.random_range(0..4) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                let n = if rng.random_range(0..8) == 0 { 200 } else { 1 };
                for _ in 0..n {
                    lines.insert(i, l.clone());
                }
            }
            2 => {
                let j = rng.random_range(0..lines.len());
                lines.swap(i, j);
            }
            _ => lines.insert(i, hostile(rng)),
        }
        return lines.join("\n") + "\n";
    }
    let mut toks = tokens(text);
    if toks.is_empty() {
        return hostile(rng);
    }
    let i = rng.random_range(0..toks.len());
    match rng.random_range(0..4) {
        0 => {
            toks.remove(i);
        }
        1 => {
            let t = toks[i].clone();
            toks.insert(i, t);
        }
        2 => toks[i] = hostile(rng),
        _ => {
            let t = hostile(rng);
            toks.insert(i, format!(" {t} "));
        }
    }
    toks.concat()
}

/// One to three mutations of `text`.
fn mutate(text: &str, rng: &mut ChaCha8Rng) -> String {
    let mut t = text.to_string();
    for _ in 0..rng.random_range(1..=3) {
        t = mutate_once(&t, rng);
    }
    t
}

/// What a case found wrong, if anything.
fn check_case(path: &Path, text: String) -> Result<(), String> {
    let src = Source::new(path, text);
    match load_source(src) {
        Err(e) => {
            let rendered = e.to_string();
            let warnings: usize = e.warnings.iter().map(|w| w.to_string().len()).sum();
            if rendered.is_empty() || e.errors.is_empty() {
                return Err("an error with no message".into());
            }
            if rendered.len() + warnings > MAX_TEXT {
                return Err(format!(
                    "{} bytes of errors and {warnings} of warnings",
                    rendered.len()
                ));
            }
            Ok(())
        }
        Ok(loaded) => {
            let warnings: usize = loaded.warnings.iter().map(|w| w.to_string().len()).sum();
            if warnings > MAX_TEXT {
                return Err(format!("{warnings} bytes of warnings"));
            }
            engine_takes(&loaded)
        }
    }
}

/// Whether the engine takes an accepted model: its plan compiles and its
/// fixed and starting values are in the parameters' domain.
fn engine_takes(loaded: &Loaded) -> Result<(), String> {
    let data = mlmix::fit::engine_data(loaded, true);
    let plan = Plan::compile(&loaded.model, &data)
        .map_err(|e| format!("accepted, but the plan does not compile: {e}"))?;
    let map = param_map(&loaded.model, &loaded.data);
    let theta = StartBuilder::new(&loaded.model, &loaded.data, &plan, &map).unperturbed();
    prepare(&plan, &map.phi(&theta))
        .map(|_| ())
        .map_err(|e| format!("accepted, but the starting values are refused: {e}"))
}

/// Runs one case on its own thread: a panic or a time over the limit is a
/// failure.
fn run_case(path: &Path, text: &str) -> Result<Duration, String> {
    let (tx, rx) = mpsc::channel();
    let (p, t) = (path.to_path_buf(), text.to_string());
    let start = Instant::now();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| check_case(&p, t));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(CASE_LIMIT) {
        Ok(Ok(Ok(()))) => Ok(start.elapsed()),
        Ok(Ok(Err(why))) => Err(why),
        Ok(Err(panic)) => Err(format!(
            "panic: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)")
        )),
        Err(_) => Err(format!("no answer within {CASE_LIMIT:?}")),
    }
}

/// The text of a failing case, cut to a readable length.
fn excerpt(text: &str) -> String {
    let cut: String = text.chars().take(3000).collect();
    if cut.len() < text.len() {
        format!("{cut}\n[... {} more bytes]", text.len() - cut.len())
    } else {
        cut
    }
}

#[test]
fn mutated_inputs_never_panic_hang_or_flood_and_accepted_ones_reach_the_engine() {
    let cases: usize = std::env::var("MLMIX_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let started = Instant::now();
    let mut failures: Vec<String> = Vec::new();
    let mut tried = 0;
    let mut slowest = Duration::ZERO;
    for (n, path) in shipped_inputs().iter().enumerate() {
        let text = std::fs::read_to_string(path).unwrap();
        // the shipped input itself first, then its mutations
        let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_0000 + n as u64);
        for case in 0..=cases {
            let mutated = if case == 0 {
                text.clone()
            } else {
                mutate(&text, &mut rng)
            };
            tried += 1;
            match run_case(path, &mutated) {
                Ok(t) => slowest = slowest.max(t),
                Err(why) => failures.push(format!(
                    "{} case {case}: {why}\n--- input ---\n{}",
                    path.display(),
                    excerpt(&mutated)
                )),
            }
        }
    }
    eprintln!(
        "fuzz: {tried} inputs in {:.1} s (slowest case {:.2} s)",
        started.elapsed().as_secs_f64(),
        slowest.as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {tried} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn the_mutations_change_the_text_and_tokens_join_back() {
    let text = "MODEL: %c#1%\n  [u1$1@-1] y ON x;\n";
    assert_eq!(tokens(text).concat(), text);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let changed = (0..50).filter(|_| mutate(text, &mut rng) != text).count();
    assert!(
        changed > 40,
        "only {changed} of 50 mutations changed the text"
    );
}

/// Many classes: the default class offsets of the thresholds stay inside
/// LOGLOW/LOGHIGH and distinct, so the starting values are taken (with 33
/// classes they once ran past ±15, two clamped thresholds became equal and
/// the fit failed with "no starting values gave a finite log-likelihood").
#[test]
fn many_classes_start_inside_the_logit_bounds() {
    let path = tests_dir().join("inputs/gss82_3.inp");
    let text = std::fs::read_to_string(&path).unwrap();
    for k in [8, 33] {
        let text = text.replace("CLASSES = k(3);", &format!("CLASSES = k({k});"));
        assert_ne!(text, std::fs::read_to_string(&path).unwrap());
        check_case(&path, text).unwrap_or_else(|e| panic!("{k} classes: {e}"));
    }
}

/// DATA WIDETOLONG and DEFINE under the same mutations: a reshape of two
/// sets, statements with every kind of expression, and the new variables
/// in the model.
#[test]
fn mutated_transformations_never_panic_hang_or_flood() {
    let scratch = mlmix_tests::Scratch::new("fuzz-transforms");
    let mut sim = mlmix_tests::Sim::new(7);
    let rows: Vec<Vec<f64>> = (0..40)
        .map(|_| {
            let x = sim.normal();
            let mut r = vec![x];
            r.extend((0..4).map(|_| f64::from(u8::from(sim.uniform() < 0.5))));
            r.extend((0..4).map(|_| {
                if sim.uniform() < 0.1 {
                    f64::NAN
                } else {
                    x + sim.normal()
                }
            }));
            r
        })
        .collect();
    scratch.write("w.dat", &mlmix_tests::free_format(&rows, "-99"));
    let text = "\
DATA: FILE = w.dat;
DATA WIDETOLONG: WIDE = u1-u4 | y1-y4; LONG = u | y;
  IDVARIABLE = person; REPETITION = time;
VARIABLE: NAMES = x u1-u4 y1-y4; MISSING = ALL(-99);
  USEVARIABLES = x u y time t2 z;
  CATEGORICAL = u; CLASSES = c(2);
ANALYSIS: TYPE = MIXTURE; STARTS = 0;
DEFINE: t2 = time**2 - 1;
  z = LOG(ABS(y) + 1) - x/2 + INTEGER(-y);
  IF (u EQ _MISSING OR y GT 1) THEN z = _MISSING;
  IF (NOT (x LE 0) AND time /= 3) THEN t2 = SQRT(t2 + 1);
MODEL: %OVERALL% c ON x;
";
    let path = scratch.write("m.inp", text);
    let base = load_source(Source::new(&path, text.to_string()));
    assert!(base.is_ok(), "the base input is refused: {:?}", base.err());
    let cases: usize = std::env::var("MLMIX_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_d3f1);
    let mut failures: Vec<String> = Vec::new();
    for case in 0..=cases {
        let mutated = if case == 0 {
            text.to_string()
        } else {
            mutate(text, &mut rng)
        };
        if let Err(why) = run_case(&path, &mutated) {
            failures.push(format!(
                "case {case}: {why}\n--- input ---\n{}",
                excerpt(&mutated)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases + 1,
        failures.join("\n\n")
    );
}

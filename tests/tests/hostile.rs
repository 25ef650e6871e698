//! A hostile user at the command line: outputs to a full disk or a closed
//! pipe, outputs that would overwrite the input or data file or each other,
//! FIFOs and devices as inputs, byte-order marks and old line ends, batch
//! jobs without a terminal, and runs stopped by SIGINT or SIGTERM. Every
//! case ends within [`LIMIT`] with exit status 0 or 1 (never a panic, never
//! a hang) and overwrites nothing it should not.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use mlmix_tests::{Scratch, tests_dir};

use crate::bad_input::mlmix_exe;

/// The longest any case may take.
const LIMIT: Duration = Duration::from_secs(20);

/// The example LCA's data (CSV with a header row).
fn carcinoma_csv() -> String {
    std::fs::read_to_string(tests_dir().join("../examples/carcinoma.csv")).unwrap()
}

/// An input file for `carcinoma.csv` with `extra` appended (e.g. SAVEDATA).
fn carcinoma_inp(extra: &str) -> String {
    format!(
        "DATA: FILE = carcinoma.csv;\nVARIABLE: USEVARIABLES = A-G; CATEGORICAL = A-G;\n  CLASSES = lc(2);\nANALYSIS: TYPE = MIXTURE; STARTS = 10 2;\n{extra}"
    )
}

/// A scratch folder holding `carcinoma.csv` and `model.inp` (`extra`
/// appended to the input).
fn scratch_with(tag: &str, extra: &str) -> Scratch {
    let s = Scratch::new(tag);
    s.write("carcinoma.csv", &carcinoma_csv());
    s.write("model.inp", &carcinoma_inp(extra));
    s
}

/// `mlmix` with `args`, run in `dir`, standard input closed.
fn mlmix(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(mlmix_exe());
    c.args(args).current_dir(dir).stdin(Stdio::null());
    c
}

/// Waits for `child` (reading whatever of its output is piped), killing it
/// and failing if it takes longer than [`LIMIT`].
fn finish(mut child: Child) -> Output {
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("mlmix took longer than {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Runs a command to the end with its output captured.
fn run(mut cmd: Command) -> Output {
    finish(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The run failed with status 1, an `error:` message containing each of
/// `parts`, and no panic.
fn assert_error(out: &Output, parts: &[&str]) {
    let e = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(!e.contains("panicked"), "{e}");
    assert!(e.contains("error:"), "{e}");
    for p in parts {
        assert!(e.contains(p), "no '{p}' in: {e}");
    }
}

/// The names in a folder, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A FIFO at `path` (with the system's `mkfifo`).
#[cfg(unix)]
fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(ok.success(), "mkfifo failed");
}

// ---------------------------------------------------------- writing

#[cfg(target_os = "linux")]
#[test]
fn full_standard_output_is_an_error_not_a_panic() {
    let s = scratch_with("stdout_full", "");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = finish(
        mlmix(s.path(), &["fit", "-q", "model.inp"])
            .stdout(full)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert_error(&out, &["writing to standard output", "No space left"]);
}

#[cfg(target_os = "linux")]
#[test]
fn full_standard_error_exits_non_zero_without_a_panic() {
    let s = scratch_with("stderr_full", "");
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = finish(
        mlmix(s.path(), &["fit", "model.inp"])
            .stdout(Stdio::piped())
            .stderr(full)
            .spawn()
            .unwrap(),
    );
    // the report is still written; the lost messages make the run fail
    assert_eq!(out.status.code(), Some(1));
    assert!(!out.stdout.is_empty());
}

#[test]
fn closed_standard_output_ends_quietly_with_status_1() {
    let s = scratch_with("stdout_closed", "");
    // a pipe whose reader is gone before mlmix starts; a process that
    // another test forks at that moment may hold the reader until it
    // execs, so the write can (rarely) succeed: a few tries
    let mut codes = Vec::new();
    for _ in 0..3 {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = finish(
            mlmix(s.path(), &["fit", "-q", "model.inp"])
                .stdout(writer)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let e = stderr(&out);
        assert!(e.is_empty(), "{e}");
        codes.push(out.status.code());
        if out.status.code() == Some(1) {
            break;
        }
    }
    assert!(codes.iter().all(|c| matches!(c, Some(0 | 1))), "{codes:?}");
    assert_eq!(codes.last(), Some(&Some(1)), "{codes:?}");
}

#[cfg(target_os = "linux")]
#[test]
fn savedata_to_a_full_disk_fails() {
    let s = scratch_with(
        "savedata_full",
        "SAVEDATA: FILE = /dev/full; SAVE = CPROBABILITIES;\n",
    );
    let out = run(mlmix(s.path(), &["fit", "-q", "model.inp"]));
    assert_error(&out, &["the SAVEDATA file '/dev/full'", "No space left"]);
}

#[test]
fn outputs_naming_the_input_or_data_file_are_refused_before_the_fit() {
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &["-o", "model.inp"],
            "",
            "the report (-o) 'model.inp' is the input file",
        ),
        (
            &["--json", "carcinoma.csv"],
            "",
            "the JSON file (--json) 'carcinoma.csv' is the data file",
        ),
        (&["--json", "./sub/../model.inp"], "", "is the input file"),
        (
            &[],
            "SAVEDATA: FILE = carcinoma.csv; SAVE = CPROBABILITIES;\n",
            "the SAVEDATA file",
        ),
    ];
    for (args, extra, message) in cases {
        let s = scratch_with("output_is_input", extra);
        std::fs::create_dir(s.path().join("sub")).unwrap();
        let before = (
            std::fs::read(s.path().join("model.inp")).unwrap(),
            std::fs::read(s.path().join("carcinoma.csv")).unwrap(),
        );
        let mut all = vec!["fit", "model.inp"];
        all.extend_from_slice(args);
        let out = run(mlmix(s.path(), &all));
        assert_error(&out, &[message, "nothing was fitted"]);
        assert!(out.stdout.is_empty());
        let after = (
            std::fs::read(s.path().join("model.inp")).unwrap(),
            std::fs::read(s.path().join("carcinoma.csv")).unwrap(),
        );
        assert!(before == after, "{args:?}: a file was overwritten");
        assert_eq!(listing(s.path()), ["carcinoma.csv", "model.inp", "sub"]);
    }
}

#[test]
fn two_outputs_naming_the_same_file_are_refused() {
    let s = scratch_with(
        "same_output",
        "SAVEDATA: FILE = out.txt; SAVE = CPROBABILITIES;\n",
    );
    let out = run(mlmix(
        s.path(),
        &["fit", "model.inp", "--json", "./out.txt"],
    ));
    assert_error(
        &out,
        &[
            "the JSON file (--json) './out.txt' and the SAVEDATA file",
            "are the same file",
        ],
    );
    assert_eq!(listing(s.path()), ["carcinoma.csv", "model.inp"]);
}

#[test]
fn output_paths_are_checked_before_the_fit() {
    let cases: [(&[&str], &str, &str); 3] = [
        (
            &["--json", "missing/fit.json"],
            "",
            "the folder 'missing' does not exist",
        ),
        (&["-o", "sub"], "", "'sub': it is a folder"),
        (
            &[],
            "SAVEDATA: FILE = sub; SAVE = CPROBABILITIES;\n",
            "it is a folder",
        ),
    ];
    for (args, extra, message) in cases {
        let s = scratch_with("output_checked", extra);
        std::fs::create_dir(s.path().join("sub")).unwrap();
        let mut all = vec!["fit", "model.inp"];
        all.extend_from_slice(args);
        let out = run(mlmix(s.path(), &all));
        assert_error(&out, &[message, "nothing was fitted"]);
        // the fit did not run: no summary line
        assert!(!stderr(&out).contains("logL"), "{}", stderr(&out));
    }
}

#[test]
fn outputs_of_a_previous_run_are_replaced_and_no_temporary_file_is_left() {
    let s = scratch_with(
        "overwrite",
        "SAVEDATA: FILE = cprob.dat; SAVE = CPROBABILITIES;\n",
    );
    for name in ["report.txt", "fit.json", "cprob.dat"] {
        s.write(name, "old\n");
    }
    let out = run(mlmix(
        s.path(),
        &[
            "fit",
            "-q",
            "model.inp",
            "-o",
            "report.txt",
            "--json",
            "fit.json",
        ],
    ));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let read = |n: &str| std::fs::read_to_string(s.path().join(n)).unwrap();
    assert!(read("report.txt").starts_with("mlmix "));
    let v: serde_json::Value = serde_json::from_str(&read("fit.json")).unwrap();
    assert_eq!(v["interrupted"], false);
    assert_eq!(read("cprob.dat").lines().count(), 118);
    assert_eq!(
        listing(s.path()),
        [
            "carcinoma.csv",
            "cprob.dat",
            "fit.json",
            "model.inp",
            "report.txt"
        ]
    );
}

// ---------------------------------------------------------- reading

#[cfg(unix)]
#[test]
fn fifos_and_devices_are_not_read() {
    let s = scratch_with("fifo", "");
    mkfifo(&s.path().join("pipe"));
    // the input file
    let out = run(mlmix(s.path(), &["fit", "pipe"]));
    assert_error(
        &out,
        &["input file 'pipe' is a named pipe (FIFO), not a regular file"],
    );
    let out = run(mlmix(s.path(), &["check", "pipe"]));
    assert_error(&out, &["input file 'pipe' is a named pipe (FIFO)"]);
    // as a Monte Carlo input or a shard's results
    let out = run(mlmix(s.path(), &["simulate", "pipe"]));
    assert_error(&out, &["input file 'pipe' is a named pipe (FIFO)"]);
    let out = run(mlmix(s.path(), &["merge", "pipe"]));
    assert_error(
        &out,
        &["partial-results file 'pipe' is a named pipe (FIFO)"],
    );
    // the library refuses it too, without opening it
    let err = match mlmix::spec::load(&s.path().join("pipe")) {
        Ok(_) => panic!("a FIFO was loaded as an input file"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("is a named pipe (FIFO), not a regular file"),
        "{err}"
    );
    // the data file
    s.write(
        "fifo.inp",
        &carcinoma_inp("").replace("carcinoma.csv", "pipe"),
    );
    let out = run(mlmix(s.path(), &["fit", "fifo.inp"]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("data file 'pipe'"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("is a named pipe (FIFO), not a regular file"));
    // the SAVEDATA file
    s.write(
        "save.inp",
        &carcinoma_inp("SAVEDATA: FILE = pipe; SAVE = CPROBABILITIES;\n"),
    );
    let out = run(mlmix(s.path(), &["fit", "save.inp"]));
    assert_error(&out, &["the SAVEDATA file", "it is a named pipe (FIFO)"]);
    // a device as data
    if Path::new("/dev/zero").exists() {
        s.write(
            "zero.inp",
            &carcinoma_inp("").replace("carcinoma.csv", "/dev/zero"),
        );
        let out = run(mlmix(s.path(), &["fit", "zero.inp"]));
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("is a device, not a regular file"),
            "{}",
            stderr(&out)
        );
    }
}

/// `text` with its line ends replaced by `eol`, after a byte-order mark if
/// `bom`.
fn with_line_ends(text: &str, eol: &str, bom: bool) -> String {
    let body = text.replace('\n', eol);
    if bom { format!("\u{feff}{body}") } else { body }
}

#[test]
fn byte_order_marks_and_line_ends_read_alike_in_every_layout() {
    let csv = carcinoma_csv();
    // the same data in free format, for NAMES
    let free: String = csv
        .lines()
        .skip(1)
        .map(|l| l.replace(',', " ") + "\n")
        .collect();
    let free_inp = carcinoma_inp("")
        .replace("carcinoma.csv", "carcinoma.dat")
        .replace("VARIABLE: ", "VARIABLE: NAMES = A B C D E F G;\n  ");
    let reference = {
        let s = scratch_with("line_ends_ref", "");
        mlmix::spec::load(&s.path().join("model.inp")).unwrap().data
    };
    for eol in ["\n", "\r\n", "\r"] {
        for bom in [false, true] {
            let s = Scratch::new("line_ends");
            s.write("carcinoma.csv", &with_line_ends(&csv, eol, bom));
            s.write("carcinoma.dat", &with_line_ends(&free, eol, bom));
            s.write("csv.inp", &with_line_ends(&carcinoma_inp(""), eol, bom));
            s.write("free.inp", &with_line_ends(&free_inp, eol, bom));
            for inp in ["csv.inp", "free.inp"] {
                let loaded = mlmix::spec::load(&s.path().join(inp))
                    .unwrap_or_else(|e| panic!("{eol:?} bom {bom} {inp}: {e}"));
                assert_eq!(loaded.data.n_rows(), 118, "{eol:?} bom {bom} {inp}");
                assert_eq!(
                    loaded.data.columns, reference.columns,
                    "{eol:?} bom {bom} {inp}"
                );
            }
        }
    }
    // a located error in a CR-only file names the right line
    let s = Scratch::new("line_ends_error");
    let bad = csv.replacen("1,1,1,1,1,1,1\n", "1,1,x,1,1,1,1\n", 1);
    s.write("carcinoma.csv", &with_line_ends(&bad, "\r", true));
    s.write("model.inp", &carcinoma_inp(""));
    let e = mlmix::spec::load(&s.path().join("model.inp")).unwrap_err();
    let loc = e.errors[0].location.as_ref().expect("located");
    assert_eq!(loc.line, 2, "{e}");
}

// ---------------------------------------------------------- progress

#[test]
fn progress_without_a_terminal_is_plain_lines_unless_quiet() {
    let s = scratch_with("progress", "");
    let out = run(mlmix(s.path(), &["fit", "model.inp"]));
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{e}");
    let lines: Vec<&str> = e.lines().filter(|l| l.starts_with("progress: ")).collect();
    assert!(!lines.is_empty(), "{e}");
    assert!(
        lines[0].contains("stage") && lines[0].contains("logL"),
        "{e}"
    );
    // no terminal control characters
    assert!(!e.contains('\u{1b}') && !e.contains('\r'), "{e:?}");
    let out = run(mlmix(s.path(), &["fit", "-q", "model.inp"]));
    assert_eq!(out.status.code(), Some(0));
    assert!(!stderr(&out).contains("progress"), "{}", stderr(&out));
}

#[test]
fn a_goms_progress_names_the_model_its_starting_values_come_from() {
    let s = Scratch::new("progress_gom");
    for f in ["gom.inp", "gom_wide.dat"] {
        let text = std::fs::read_to_string(tests_dir().join("../examples").join(f)).unwrap();
        // (two starts are enough to see whose progress it is)
        s.write(f, &text.replace("STARTS = 10 3;", "STARTS = 2 1;"));
    }
    let out = run(mlmix(s.path(), &["fit", "gom.inp"]));
    let e = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{e}");
    // the first event is the latent class model's first start, and its
    // line says whose start it is
    let first = e
        .lines()
        .find(|l| l.starts_with("progress: "))
        .unwrap_or_else(|| panic!("no progress line: {e}"));
    assert!(
        first.starts_with("progress: starting values (latent class model): initial stage, 1/"),
        "{e}"
    );
}

// ---------------------------------------------------------- interrupts

/// The lines of a child's standard error, as they come.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let err = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The lines of standard error up to the first that starts with `prefix`
/// (it included); kills the child and fails if none comes within
/// [`LIMIT`].
fn wait_for_line(child: &mut Child, lines: &mpsc::Receiver<String>, prefix: &str) -> String {
    let mut seen = String::new();
    let deadline = Instant::now() + LIMIT;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(wait) {
            Ok(line) => {
                seen += &line;
                seen.push('\n');
                if line.starts_with(prefix) {
                    return seen;
                }
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("no '{prefix}' line within {LIMIT:?}: {seen}");
            }
        }
    }
}

/// Sends `signal` (a name for `kill -s`) to a process.
#[cfg(unix)]
fn send(signal: &str, pid: u32) {
    let ok = Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill -s {signal} failed");
}

#[cfg(unix)]
/// Starts `cmd`, waits for a line of standard error beginning with
/// `line`, sends it `signal` and waits for it to end: its output, its
/// standard error, and how long it took to end after the signal.
fn interrupted(mut cmd: Command, line: &str, signal: &str) -> (Output, String, Duration) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    let seen = wait_for_line(&mut child, &lines, line);
    let started = Instant::now();
    send(signal, child.id());
    let out = finish(child);
    let took = started.elapsed();
    (
        out,
        seen + &lines.iter().collect::<Vec<_>>().join("\n"),
        took,
    )
}

#[test]
fn a_signal_stops_the_fit_and_writes_the_best_solution_marked_interrupted() {
    for signal in ["INT", "TERM"] {
        // far more starts than the test has time for
        let scratch = scratch_with("interrupt", "");
        scratch.write(
            "model.inp",
            &carcinoma_inp("").replace("STARTS = 10 2", "STARTS = 20000 5000"),
        );
        scratch.write("fit.json", "old\n");
        // signalled once the fit is under way (its first progress line)
        let (out, e, took) = interrupted(
            mlmix(scratch.path(), &["fit", "model.inp", "--json", "fit.json"]),
            "progress: ",
            signal,
        );
        assert_eq!(out.status.code(), Some(1), "SIG{signal}: {e}");
        assert!(took < LIMIT, "SIG{signal}: too slow to stop");
        assert!(e.contains("interrupted"), "{e}");
        assert!(e.contains("INTERRUPTED (best solution so far)"), "{e}");
        let report = String::from_utf8_lossy(&out.stdout);
        assert!(report.contains("*** INTERRUPTED"), "SIG{signal}: {report}");
        let json = std::fs::read_to_string(scratch.path().join("fit.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["interrupted"], true);
        assert!(v["loglikelihood"].as_f64().unwrap().is_finite());
        assert_eq!(
            listing(scratch.path()),
            ["carcinoma.csv", "fit.json", "model.inp"]
        );
    }
}

/// Asks the fit to stop once `after` iterations have been seen.
struct StopAfter {
    after: usize,
    seen: std::sync::atomic::AtomicUsize,
}

impl mlmix::Observer for StopAfter {
    fn iteration(&self, _start: usize, _iteration: usize, _loglik: f64) {
        self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    fn stop_requested(&self) -> bool {
        self.seen.load(std::sync::atomic::Ordering::Relaxed) >= self.after
    }
}

#[test]
fn a_stop_request_ends_the_fit_with_the_best_solution_so_far() {
    let s = scratch_with("stop_request", "");
    let loaded = mlmix::spec::load(&s.path().join("model.inp")).unwrap();
    let fit = |after| {
        let observer = StopAfter {
            after,
            seen: Default::default(),
        };
        let pool = mlmix_tests::Pool::new(1);
        pool.install(|| mlmix::fit(&loaded, &mlmix::FitOptions::default(), &observer))
            .unwrap()
    };
    let stopped = fit(3);
    assert!(stopped.interrupted && !stopped.converged);
    assert_eq!(
        stopped.termination,
        mlmix::results::Termination::Interrupted
    );
    assert!(stopped.loglikelihood.is_finite());
    assert!(stopped.parameters.iter().all(|p| p.se.is_none()));
    let report = mlmix::report::text(&stopped, &loaded.model);
    assert!(report.contains("*** INTERRUPTED"), "{report}");
    assert!(report.contains("the run was interrupted"), "{report}");
    // the unfinished final stage is the interruption's, not a finding
    for not in [
        "was not replicated",
        "final-stage start(s) did not converge",
    ] {
        assert!(
            !stopped.warnings.iter().any(|w| w.contains(not)),
            "{:?}",
            stopped.warnings
        );
    }
    let full = fit(usize::MAX);
    assert!(!full.interrupted && full.converged);
    assert!(full.loglikelihood > stopped.loglikelihood);
    assert!(!mlmix::report::text(&full, &loaded.model).contains("INTERRUPTED"));
}

/// Asks the fit to stop once the standard errors have begun.
#[derive(Default)]
struct StopDuringStandardErrors {
    begun: std::sync::atomic::AtomicBool,
}

impl mlmix::Observer for StopDuringStandardErrors {
    fn standard_errors(&self, _done: usize, _total: usize) {
        self.begun.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    fn stop_requested(&self) -> bool {
        self.begun.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A stop request while the standard errors are computed ends them: the
/// converged estimates are reported, marked interrupted, without standard
/// errors (the run once went on to the end and exited 0).
#[test]
fn a_stop_request_during_the_standard_errors_ends_them() {
    let s = scratch_with("stop_during_se", "");
    let loaded = mlmix::spec::load(&s.path().join("model.inp")).unwrap();
    let observer = StopDuringStandardErrors::default();
    let pool = mlmix_tests::Pool::new(1);
    let fit = pool
        .install(|| mlmix::fit(&loaded, &mlmix::FitOptions::default(), &observer))
        .unwrap();
    assert!(fit.interrupted && fit.converged, "{:?}", fit.termination);
    assert!(fit.parameters.iter().all(|p| p.se.is_none()));
    assert!(
        fit.warnings
            .iter()
            .any(|w| w.contains("interrupted while computing standard errors")),
        "{:?}",
        fit.warnings
    );
}

/// Asks the fit to stop once one final-stage start has finished.
#[derive(Default)]
struct StopAfterOneFinalStart {
    done: std::sync::atomic::AtomicBool,
}

impl mlmix::Observer for StopAfterOneFinalStart {
    fn start_done(&self, stage: mlmix::Stage, _done: usize, _total: usize, _loglik: f64) {
        if stage == mlmix::Stage::Final {
            self.done.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    fn stop_requested(&self) -> bool {
        self.done.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A stop request in the final stage, after one start has converged: the
/// report says the other starts were stopped (a higher maximum may
/// exist), not that the standard errors were being computed.
#[test]
fn a_stop_request_in_the_final_stage_says_starts_were_stopped() {
    let s = scratch_with("stop_in_final", "");
    let loaded = mlmix::spec::load(&s.path().join("model.inp")).unwrap();
    let observer = StopAfterOneFinalStart::default();
    let pool = mlmix_tests::Pool::new(1);
    let fit = pool
        .install(|| mlmix::fit(&loaded, &mlmix::FitOptions::default(), &observer))
        .unwrap();
    assert!(fit.interrupted && fit.converged, "{:?}", fit.termination);
    let said = |text: &str| fit.warnings.iter().any(|w| w.contains(text));
    assert!(
        said("interrupted during the final stage"),
        "{:?}",
        fit.warnings
    );
    assert!(
        !said("while computing standard errors"),
        "{:?}",
        fit.warnings
    );
}

/// INTEGRATION = 200 with three random effects is 8 million nodes per
/// cluster: refused at once with what to do, not started for hours.
#[test]
fn integration_grids_too_large_are_refused() {
    let s = Scratch::new("too_many_nodes");
    let rows: String = (0..40)
        .map(|i| {
            let (j, x, z) = (i / 4, (i % 5) as f64 - 2.0, (i % 3) as f64 - 1.0);
            format!("{j} {} {x} {z}\n", 0.1 * i as f64 - x + z)
        })
        .collect();
    s.write("tl.dat", &rows);
    s.write(
        "model.inp",
        "DATA: FILE = tl.dat;\n\
         VARIABLE: NAMES = clus y x z; USEVARIABLES = y x z;\n\
         \x20 WITHIN = x z; CLUSTER = clus;\n\
         ANALYSIS: TYPE = TWOLEVEL; INTEGRATION = 200;\n\
         MODEL: %WITHIN%\n  s1 | y ON x;\n  s2 | y ON z;\n\
         \x20 %BETWEEN%\n  y; s1; s2;\n",
    );
    for cmd in ["fit", "check"] {
        let out = run(mlmix(s.path(), &[cmd, "model.inp"]));
        assert_error(
            &out,
            &[
                "200 integration points in each of 3 dimensions",
                "more than 1000000",
                "MONTECARLO",
            ],
        );
    }
}

#[cfg(unix)]
#[test]
fn a_signal_stops_a_study_and_reports_the_replications_run() {
    // far more replications than the test has time for
    let scratch = Scratch::new("mc-interrupt");
    let study = std::fs::read_to_string(tests_dir().join("../examples/montecarlo_lca.inp"))
        .unwrap()
        .replace("NOBSERVATIONS = 4000;", "NOBSERVATIONS = 300;")
        .replace("NREPS = 500;", "NREPS = 1000000;");
    scratch.write("study.inp", &study);
    let (out, e, took) = interrupted(
        mlmix(scratch.path(), &["fit", "study.inp"]),
        "replications: ",
        "INT",
    );
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(took < LIMIT, "too slow to stop");
    assert!(e.contains("starting no more"), "{e}");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("*** INTERRUPTED"), "{report}");
    assert!(report.contains("Not in these results"), "{report}");
}

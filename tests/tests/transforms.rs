//! The data transformations: DEFINE's statements checked value by value
//! against the same arithmetic done here, DATA WIDETOLONG's long rows
//! checked row by row, and a model fitted to reshaped data equal to the
//! same model fitted to the same data written long by hand.

use mlmix::spec::{ExclusionReason, Loaded};
use mlmix_tests::{Scratch, Sim, fit_text, free_format};

/// Loads `input` (as `m.inp`) beside the data file `d.dat`.
fn load(data: &str, input: &str) -> Loaded {
    let s = Scratch::new("transforms");
    s.write("d.dat", data);
    let p = s.write("m.inp", input);
    mlmix::spec::load(&p).unwrap_or_else(|e| panic!("{e}"))
}

/// The analysed column of variable `name`.
fn column<'a>(l: &'a Loaded, name: &str) -> &'a [f64] {
    let v = l
        .model
        .variables
        .iter()
        .position(|v| v.name.eq_ignore_ascii_case(name))
        .unwrap_or_else(|| panic!("no variable {name}"));
    &l.data.columns[v]
}

/// `got` equals `want` row by row (NaN is missing; numbers to 1e-12).
#[track_caller]
fn same(name: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{name}: rows");
    for (r, (g, w)) in got.iter().zip(want).enumerate() {
        let ok = if w.is_nan() {
            g.is_nan()
        } else {
            (g - w).abs() <= 1e-12 * w.abs().max(1.0)
        };
        assert!(ok, "{name}, row {}: {g} instead of {w}", r + 1);
    }
}

/// Mplus's rule for an operation: missing if an operand is missing or the
/// result is not a finite number.
fn op(xs: &[f64], f: impl Fn(&[f64]) -> f64) -> f64 {
    if xs.iter().any(|x| x.is_nan()) {
        return f64::NAN;
    }
    let y = f(xs);
    if y.is_finite() { y } else { f64::NAN }
}

/// A condition: None (missing) if a value it compares is missing.
fn cond(xs: &[f64], f: impl Fn(&[f64]) -> bool) -> Option<bool> {
    if xs.iter().any(|x| x.is_nan()) {
        None
    } else {
        Some(f(xs))
    }
}

/// `IF (c) THEN y = v;` on a current value `y`.
fn if_then(c: Option<bool>, y: f64, v: f64) -> f64 {
    match c {
        Some(true) => v,
        Some(false) => y,
        None => f64::NAN,
    }
}

const NAN: f64 = f64::NAN;

/// a b c, with -99 missing.
const ABC: [[f64; 3]; 6] = [
    [1.0, 2.0, 3.0],
    [4.0, NAN, 0.0],
    [-2.0, 0.5, NAN],
    [0.0, 3.0, 1.0],
    [9.0, -1.0, 2.0],
    [0.25, 0.5, -0.5],
];

fn abc_file() -> String {
    let rows: Vec<Vec<f64>> = ABC.iter().map(|r| r.to_vec()).collect();
    free_format(&rows, "-99")
}

/// Every operator and function of DEFINE, and what it does with missing
/// values, against the same arithmetic in Rust.
#[test]
fn define_statements_compute_what_mplus_computes() {
    let input = "\
DATA: FILE = d.dat;
VARIABLE: NAMES = a b c; MISSING = ALL(-99);
  USEVARIABLES = a b c s p q e f g h i j k l m n o;
  CLASSES = k1(1);
ANALYSIS: TYPE = MIXTURE; STARTS = 0;
DEFINE:
  s = a + b*c - 1;              ! precedence
  p = (a - c)/c;                ! division by zero gives missing
  q = -a**2 + 2**3**0.5;        ! ** before unary minus, right to left
  e = LOG(a) + LOG10(b + 9);    ! missing outside the domain
  f = EXP(c) - SQRT(a) + ABS(b);
  g = SIN(a) + COS(b) + TAN(c);
  h = ASIN(c/2) + ACOS(b/2) + ATAN(a);
  i = INTEGER(a*b) + INTEGER(-2.7);
  j = 0;
  IF (a GT 0 AND b LT 2) THEN j = 1;
  IF (a EQ 0 OR c == 1) THEN j = 2;
  IF (NOT (a >= 4) AND a /= 1) THEN j = j + 10;
  k = _MISSING;
  IF (b EQ _MISSING) THEN k = 7;
  IF (c NE _MISSING) THEN k = c*10;
  l = a; IF (a LE 0 OR a < 0.5) THEN l = _MISSING;
  b = b*100;                    ! changes b itself
  m = b;                        ! reads the changed b
  n = a - 1; IF (b > 100) THEN n = 1 / (a - 1);
  o = 5; IF (c EQ 3) THEN o = c; IF (c EQ _MISSING) THEN o = -1;
";
    let l = load(&abc_file(), input);
    assert_eq!(l.data.n_rows(), ABC.len());
    let rows = || ABC.iter();
    let col = |f: &dyn Fn(&[f64; 3]) -> f64| -> Vec<f64> { rows().map(f).collect() };
    same("a", column(&l, "a"), &col(&|r| r[0]));
    same(
        "b",
        column(&l, "b"),
        &col(&|r| op(&[r[1]], |x| x[0] * 100.0)),
    );
    same("c", column(&l, "c"), &col(&|r| r[2]));
    same(
        "s",
        column(&l, "s"),
        &col(&|r| op(&r[..], |x| x[0] + x[1] * x[2] - 1.0)),
    );
    same(
        "p",
        column(&l, "p"),
        &col(&|r| op(&[r[0], r[2]], |x| (x[0] - x[1]) / x[1])),
    );
    same(
        "q",
        column(&l, "q"),
        &col(&|r| op(&[r[0]], |x| -(x[0].powi(2)) + 2f64.powf(3f64.powf(0.5)))),
    );
    same(
        "e",
        column(&l, "e"),
        &col(&|r| {
            let la = op(&[r[0]], |x| x[0].ln());
            let lb = op(&[r[1]], |x| (x[0] + 9.0).log10());
            op(&[la, lb], |x| x[0] + x[1])
        }),
    );
    same(
        "f",
        column(&l, "f"),
        &col(&|r| {
            let sa = op(&[r[0]], |x| x[0].sqrt());
            op(&[r[2], sa, r[1]], |x| x[0].exp() - x[1] + x[2].abs())
        }),
    );
    same(
        "g",
        column(&l, "g"),
        &col(&|r| op(&r[..], |x| x[0].sin() + x[1].cos() + x[2].tan())),
    );
    same(
        "h",
        column(&l, "h"),
        &col(&|r| {
            let a = op(&[r[2]], |x| (x[0] / 2.0).asin());
            let b = op(&[r[1]], |x| (x[0] / 2.0).acos());
            op(&[a, b, r[0]], |x| x[0] + x[1] + x[2].atan())
        }),
    );
    same(
        "i",
        column(&l, "i"),
        &col(&|r| op(&[r[0], r[1]], |x| (x[0] * x[1]).trunc() - 2.0)),
    );
    same(
        "j",
        column(&l, "j"),
        &col(&|r| {
            let mut j = 0.0;
            j = if_then(cond(&[r[0], r[1]], |x| x[0] > 0.0 && x[1] < 2.0), j, 1.0);
            j = if_then(cond(&[r[0], r[2]], |x| x[0] == 0.0 || x[1] == 1.0), j, 2.0);
            let c = cond(&[r[0]], |x| x[0] < 4.0 && x[0] != 1.0);
            if_then(c, j, op(&[j], |x| x[0] + 10.0))
        }),
    );
    same(
        "k",
        column(&l, "k"),
        &col(&|r| {
            let mut k = NAN;
            if r[1].is_nan() {
                k = 7.0;
            }
            if !r[2].is_nan() {
                k = r[2] * 10.0;
            }
            k
        }),
    );
    same(
        "l",
        column(&l, "l"),
        &col(&|r| if r[0] <= 0.0 || r[0] < 0.5 { NAN } else { r[0] }),
    );
    same("m", column(&l, "m"), column(&l, "b"));
    same(
        "n",
        column(&l, "n"),
        &col(&|r| {
            let n = r[0] - 1.0;
            let b = r[1] * 100.0;
            if_then(cond(&[b], |x| x[0] > 100.0), n, op(&[n], |x| 1.0 / x[0]))
        }),
    );
    same(
        "o",
        column(&l, "o"),
        &col(&|r| {
            let o = if_then(cond(&[r[2]], |x| x[0] == 3.0), 5.0, r[2]);
            if r[2].is_nan() { -1.0 } else { o }
        }),
    );
    // row 2 divides by c = 0, rows 3 and 4 take LOG(-2) and LOG(0):
    // missing, with warnings
    assert!(column(&l, "p")[1].is_nan() && column(&l, "e")[2].is_nan());
    let warned = |what: &str| {
        l.warnings
            .iter()
            .filter(|w| w.message.contains(what) && w.message.contains("where no value it uses"))
            .count()
    };
    assert_eq!(
        warned("sets p to missing in 1 row(s)"),
        1,
        "{:?}",
        l.warnings
    );
    assert_eq!(
        warned("sets e to missing in 2 row(s)"),
        1,
        "{:?}",
        l.warnings
    );
}

/// Without USEVARIABLES the variables DEFINE creates are not analysed
/// (Mplus's rule), with a warning; those it changes are.
#[test]
fn define_without_usevariables_changes_but_does_not_add() {
    let input = "\
DATA: FILE = d.dat;
VARIABLE: NAMES = a b c; MISSING = ALL(-99); CLASSES = k1(1);
ANALYSIS: TYPE = MIXTURE; STARTS = 0;
DEFINE: a = a + 1; z = a*2;
";
    let l = load(&abc_file(), input);
    let names: Vec<&str> = l.model.variables.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let want: Vec<f64> = ABC.iter().map(|r| r[0] + 1.0).collect();
    same("a", column(&l, "a"), &want);
    assert!(
        l.warnings
            .iter()
            .any(|w| w.message.contains("DEFINE creates (z) are not analysed")),
        "{:?}",
        l.warnings
    );
}

/// x u1-u3 y1-y3 (persons 1-4); -99 is missing. Person 3 has u and y
/// missing at the second repetition.
const WIDE: &str = "\
10 1 0 1 2.5 3.5 4.5
20 0 0 -99 1.0 -99 2.0
30 1 -99 0 0.5 -99 1.5
40 0 1 1 -1.0 0.0 1.0
";

fn wide_rows() -> Vec<Vec<f64>> {
    WIDE.lines()
        .map(|l| {
            l.split_whitespace()
                .map(|f| {
                    let x: f64 = f.parse().unwrap();
                    if x == -99.0 { NAN } else { x }
                })
                .collect()
        })
        .collect()
}

/// Each wide row becomes three long rows: x copied, u and y the
/// repetition's wide values (missing carried over), person the row
/// number, time the repetition from 0; DEFINE runs after the reshape.
#[test]
fn widetolong_makes_one_row_per_repetition() {
    let input = "\
DATA: FILE = d.dat;
DATA WIDETOLONG: WIDE = u1-u3 | y1-y3; LONG = u | y;
  IDVARIABLE = person; REPETITION = time;
VARIABLE: NAMES = x u1-u3 y1-y3; MISSING = ALL(-99);
  USEVARIABLES = x u y person time t2;
  CLASSES = k1(1);
ANALYSIS: TYPE = MIXTURE; STARTS = 0;
DEFINE: t2 = time**2 + u;
";
    let l = load(WIDE, input);
    let wide = wide_rows();
    assert_eq!(l.data.rows_read, 12);
    assert_eq!(l.data.n_rows(), 12, "{:?}", l.data.excluded);
    let mut want: [Vec<f64>; 6] = Default::default();
    let mut lines = Vec::new();
    for (r, w) in wide.iter().enumerate() {
        for t in 0..3 {
            let row = [
                w[0],
                w[1 + t],
                w[4 + t],
                (r + 1) as f64,
                t as f64,
                op(&[w[1 + t]], |u| (t * t) as f64 + u[0]),
            ];
            for (k, x) in row.into_iter().enumerate() {
                want[k].push(x);
            }
            lines.push(r + 1);
        }
    }
    for (k, name) in ["x", "u", "y", "person", "time", "t2"].iter().enumerate() {
        same(name, column(&l, name), &want[k]);
    }
    assert_eq!(l.data.lines, lines);
}

/// A long row whose long variables are all missing is kept by the
/// reshape and left out by the usual rule (every dependent variable
/// missing); the default names are ID and REP.
#[test]
fn widetolong_rows_missing_everything_are_left_out_as_usual() {
    let input = "\
DATA: FILE = d.dat;
DATA WIDETOLONG: WIDE = u1-u3 | y1-y3; LONG = u | y;
VARIABLE: NAMES = x u1-u3 y1-y3; MISSING = ALL(-99);
  USEVARIABLES = u y id rep;
  CLASSES = k1(1);
ANALYSIS: TYPE = MIXTURE; STARTS = 0;
MODEL: %OVERALL% u y ON id rep;
";
    let l = load(WIDE, input);
    assert_eq!(l.data.rows_read, 12);
    assert_eq!(l.data.n_rows(), 11);
    assert_eq!(l.data.excluded.len(), 1);
    assert_eq!(l.data.excluded[0].line, 3);
    assert_eq!(
        l.data.excluded[0].reason,
        ExclusionReason::AllDependentsMissing
    );
    let ids: Vec<f64> = [1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4]
        .iter()
        .map(|&i| i as f64)
        .collect();
    same("id", column(&l, "id"), &ids);
    let reps: Vec<f64> = [0, 1, 2, 0, 1, 2, 0, 2, 0, 1, 2]
        .iter()
        .map(|&t| t as f64)
        .collect();
    same("rep", column(&l, "rep"), &reps);
}

/// A two-level random-intercept logit with CLUSTER = the IDVARIABLE of
/// DATA WIDETOLONG has the same log-likelihood as the same model on the
/// same data written long by hand.
#[test]
fn a_fit_on_reshaped_data_equals_the_fit_on_long_data() {
    let mut sim = Sim::new(41);
    let (persons, items) = (60, 4);
    let mut wide: Vec<Vec<f64>> = Vec::new();
    let mut long: Vec<Vec<f64>> = Vec::new();
    for p in 0..persons {
        let x = sim.normal();
        let b = 1.2 * sim.normal();
        let mut row = vec![x];
        for t in 0..items {
            let eta = -0.5 + 0.4 * t as f64 + 0.8 * x + b;
            let u = if sim.uniform() < 0.1 {
                NAN
            } else {
                f64::from(u8::from(sim.logistic() < eta))
            };
            row.push(u);
            long.push(vec![(p + 1) as f64, t as f64, x, u]);
        }
        wide.push(row);
    }
    let model = "\
  CATEGORICAL = u; CLUSTER = person; WITHIN = time; BETWEEN = x;
ANALYSIS: TYPE = TWOLEVEL; ESTIMATOR = ML; INTEGRATION = 15;
MODEL: %WITHIN% u ON time;
  %BETWEEN% u ON x; u;
";
    let s = Scratch::new("w2l-fit");
    s.write("wide.dat", &free_format(&wide, "-99"));
    s.write("long.dat", &free_format(&long, "-99"));
    let reshaped = format!(
        "DATA: FILE = wide.dat;\n\
         DATA WIDETOLONG: WIDE = u1-u4; LONG = u; IDVARIABLE = person; REPETITION = time;\n\
         VARIABLE: NAMES = x u1-u4; MISSING = ALL(-99);\n  USEVARIABLES = x u time;\n{model}"
    );
    let by_hand = format!(
        "DATA: FILE = long.dat;\n\
         VARIABLE: NAMES = person time x u; MISSING = ALL(-99);\n  USEVARIABLES = x u time;\n{model}"
    );
    let (lw, fw) = fit_text(&s, "reshaped.inp", &reshaped).unwrap_or_else(|e| panic!("{e}"));
    let (ll, fl) = fit_text(&s, "by_hand.inp", &by_hand).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(lw.data.columns, ll.data.columns);
    assert_eq!(lw.data.clusters, ll.data.clusters);
    assert!(fw.converged && fl.converged);
    assert_eq!(fw.free_parameters, fl.free_parameters);
    assert!(
        (fw.loglikelihood - fl.loglikelihood).abs() < 1e-9,
        "{} vs {}",
        fw.loglikelihood,
        fl.loglikelihood
    );
}

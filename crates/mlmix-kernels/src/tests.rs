//! Property checks shared by every term: analytic scores equal central
//! differences of the log-density, the one-pass accumulation
//! (`term_accumulate`) equals the frequency-weighted sum of the scores and
//! the general information, and the expected information equals the
//! expected outer product of scores.
//!
//! The checks run per term kind, one module per kernel module of
//! [`crate::eval`] (`categorical`, `guessing`, `normal`, `block`, `logit`,
//! `nominal`), one test per property, each over the kind's cases (with and
//! without covariates); every assertion names the kind and the case.

use crate::EngineData;
use crate::eval::{self, InfoAcc, Scratch, Slots};
use crate::link::Link;
use crate::plan::{NONE, Plan, Term, TermKind};

/// One term alone in slot-major buffers of `n_rows` rows.
fn slots(n_rows: usize) -> Slots {
    Slots {
        stride: n_rows,
        offset: 0,
    }
}

fn plan_with(term: Term, n_phi: usize) -> Plan {
    Plan {
        n_phi,
        n_ext: n_phi,
        class_sizes: vec![term.n_states],
        between_cv: vec![false],
        n_combos: term.n_states,
        terms: vec![term],
        dims: 0,
        n_data_cols: 8,
        virtual_cols: Vec::new(),
        chol: Vec::new(),
        derived: Vec::new(),
        implied: Vec::new(),
        constants: Vec::new(),
        shifted: Vec::new(),
        within_cv: None,
        psi_shared: false,
    }
}

fn identity_term(kind: TermKind, n_states: usize, n_local: usize) -> Term {
    Term {
        kind,
        n_states,
        state_of_combo: (0..n_states as u32).collect(),
        n_sets: n_states,
        set_of_state: (0..n_states as u32).collect(),
        n_local,
        phi_index: (0..(n_states * n_local) as u32).collect(),
        cluster_level: false,
        uses_nodes: false,
        info_pairs: Vec::new(),
    }
}

/// Unclustered data: one row per cluster, frequency weights 1.
fn data_of(columns: Vec<Vec<f64>>) -> EngineData {
    let n = columns[0].len();
    EngineData::unclustered(columns, n)
}

/// One test case of a term kind: a plan with one term, phi and data.
struct Case {
    /// Kind and variant, for the assertion messages.
    name: String,
    plan: Plan,
    phi: Vec<f64>,
    data: EngineData,
}

/// Checks scores against central differences of values, per row and state.
fn check_scores(case: &Case) {
    let Case {
        name,
        plan,
        phi,
        data,
    } = case;
    let term = &plan.terms[0];
    let n = data.n_rows();
    let ns = term.n_states;
    let width = term.n_term_params();
    let prep = eval::prepare(plan, phi).expect("valid");
    let mut sc = Scratch::default();
    for s in 0..ns {
        // weight 1 on state s only
        let mut w = vec![0.0; n * ns];
        for r in 0..n {
            w[s * n + r] = 1.0;
        }
        let mut g = vec![0.0; n * width];
        eval::term_scores(
            term,
            &prep.terms[0],
            data,
            0,
            n,
            slots(n),
            &w,
            &mut sc,
            |r, slot, v| g[r * width + slot] += v,
        );
        for (t, &pi) in term.phi_index.iter().enumerate() {
            if pi == NONE {
                continue;
            }
            let h = 1e-6 * (1.0 + phi[pi as usize].abs());
            let mut vals = [vec![0.0; n * ns], vec![0.0; n * ns]];
            for (side, sign) in [(0, 1.0), (1, -1.0)] {
                let mut p2 = phi.to_vec();
                p2[pi as usize] += sign * h;
                let prep2 = eval::prepare(plan, &p2).expect("valid");
                eval::term_values(
                    term,
                    &prep2.terms[0],
                    data,
                    0,
                    n,
                    slots(n),
                    &mut sc,
                    &mut vals[side],
                );
            }
            for r in 0..n {
                // local score of state s wrt phi[pi]: the sum over the term
                // slots that map to pi, for the set of state s
                let set = term.set_of_state[s] as usize;
                let slot_set = t / term.n_local;
                if slot_set != set {
                    continue;
                }
                let fd = (vals[0][s * n + r] - vals[1][s * n + r]) / (2.0 * h);
                let an = g[r * width + t];
                assert!(
                    (fd - an).abs() < 1e-5 * (1.0 + fd.abs()),
                    "{name}: row {r} state {s} slot {t}: analytic {an} vs numeric {fd}"
                );
            }
        }
    }
}

/// Checks that `term_accumulate` (sufficient statistics where it has them)
/// gives the frequency-weighted sum of `term_scores` as gradient and
/// `term_info`'s information.
fn check_accumulate(case: &Case) {
    let Case {
        name,
        plan,
        phi,
        data,
    } = case;
    let term = &plan.terms[0];
    let n = data.n_rows();
    let ns = term.n_states;
    let width = term.n_term_params();
    let prep = eval::prepare(plan, phi).expect("valid");
    let mut sc = Scratch::default();
    let w: Vec<f64> = (0..n * ns)
        .map(|i| 0.1 + ((i * 7919) % 13) as f64 / 13.0)
        .collect();
    let freq: Vec<f64> = (0..n).map(|i| 1.0 + (i % 3) as f64).collect();
    let mut summed = vec![0.0; width];
    eval::term_scores(
        term,
        &prep.terms[0],
        data,
        0,
        n,
        slots(n),
        &w,
        &mut sc,
        |r, slot, v| summed[slot] += freq[r] * v,
    );
    let mut g = vec![0.0; width];
    let mut fast_info = InfoAcc::new(term);
    eval::term_accumulate(
        term,
        &prep.terms[0],
        data,
        0,
        n,
        slots(n),
        &w,
        &freq,
        (None, &mut sc),
        Some(&mut g),
        Some(&mut fast_info),
    );
    for (j, (a, b)) in g.iter().zip(&summed).enumerate() {
        assert!(
            (a - b).abs() < 1e-10 * (1.0 + b.abs()),
            "{name}: slot {j}: {a} vs {b}"
        );
    }
    // the information from the shared pass equals term_info's
    let mut info = InfoAcc::new(term);
    eval::term_info(
        term,
        &prep.terms[0],
        data,
        0,
        n,
        slots(n),
        &w,
        &freq,
        &mut sc,
        &mut info,
    );
    eval::finish_info(term, &prep.terms[0], &mut info);
    eval::finish_info(term, &prep.terms[0], &mut fast_info);
    for (j, (a, b)) in fast_info.mats.iter().zip(&info.mats).enumerate() {
        assert!(
            (a - b).abs() < 1e-10 * (1.0 + b.abs()),
            "{name}: information {j}: {a} vs {b}"
        );
    }
    // the states' probabilities are the exps of the values, and with them
    // at hand the gradient and information are the same
    let tp = &prep.terms[0];
    let (mut vals, mut probs) = (vec![0.0; n * ns], vec![0.0; n * ns]);
    eval::term_values(term, tp, data, 0, n, slots(n), &mut sc, &mut vals);
    eval::term_probs(term, tp, data, 0, n, slots(n), &mut sc, &mut probs);
    for (j, (v, p)) in vals.iter().zip(&probs).enumerate() {
        assert!(
            (v.exp() - p).abs() <= 1e-14 * v.exp(),
            "{name}: probability {j}: {p} vs exp {v}"
        );
    }
    let mut g2 = vec![0.0; width];
    let mut info2 = InfoAcc::new(term);
    let (g3, i3) = (Some(g2.as_mut_slice()), Some(&mut info2));
    eval::term_accumulate_given(
        term,
        tp,
        data,
        0,
        n,
        slots(n),
        &w,
        &freq,
        (Some(&probs), None),
        &mut sc,
        g3,
        i3,
    );
    eval::finish_info(term, tp, &mut info2);
    for (j, (a, b)) in g2.iter().zip(&g).enumerate() {
        assert!(
            (a - b).abs() < 1e-10 * (1.0 + b.abs()),
            "{name}: given, slot {j}: {a} vs {b}"
        );
    }
    for (j, (a, b)) in info2.mats.iter().zip(&fast_info.mats).enumerate() {
        let ok = (a - b).abs() < 1e-10 * (1.0 + b.abs());
        assert!(ok, "{name}: given, information {j}: {a} vs {b}");
    }
}

/// The information of `term_info` and `finish_info` with weight `w` and
/// frequency 1 on every row.
fn information(case: &Case, w: &[f64]) -> InfoAcc {
    let term = &case.plan.terms[0];
    let n = case.data.n_rows();
    let prep = eval::prepare(&case.plan, &case.phi).expect("valid");
    let mut sc = Scratch::default();
    let freq = vec![1.0; n];
    let mut acc = InfoAcc::new(term);
    eval::term_info(
        term,
        &prep.terms[0],
        &case.data,
        0,
        n,
        slots(n),
        w,
        &freq,
        &mut sc,
        &mut acc,
    );
    eval::finish_info(term, &prep.terms[0], &mut acc);
    acc
}

fn assert_information(name: &str, acc: &InfoAcc, expect: &[f64]) {
    for (i, (a, b)) in acc.mats.iter().zip(expect).enumerate() {
        assert!(
            (a - b).abs() < 1e-8 * (1.0 + b.abs()),
            "{name}: entry {i}: {a} vs {b}"
        );
    }
}

/// Checks expected information against E[s s'] for a categorical term by
/// enumerating the categories of each row.
fn check_cat_info(case: &Case, ncat: usize, col: usize) {
    let Case {
        name,
        plan,
        phi,
        data,
    } = case;
    let term = &plan.terms[0];
    let n = data.n_rows();
    let ns = term.n_states;
    let nl = term.n_local;
    let width = term.n_term_params();
    let prep = eval::prepare(plan, phi).expect("valid");
    let mut sc = Scratch::default();
    let w = vec![1.0; n * ns];
    let acc = information(case, &w);
    let mut expect = vec![0.0; ns * nl * nl];
    for c in 0..ncat {
        let mut d2 = data.clone();
        d2.columns[col] = vec![c as f64; n];
        let mut v = vec![0.0; n * ns];
        eval::term_values(term, &prep.terms[0], &d2, 0, n, slots(n), &mut sc, &mut v);
        let mut g = vec![0.0; n * width];
        eval::term_scores(
            term,
            &prep.terms[0],
            &d2,
            0,
            n,
            slots(n),
            &w,
            &mut sc,
            |r, slot, x| g[r * width + slot] += x,
        );
        for r in 0..n {
            for s in 0..ns {
                let p = v[s * n + r].exp();
                for a in 0..nl {
                    for b in 0..nl {
                        expect[s * nl * nl + a * nl + b] +=
                            p * g[r * width + s * nl + a] * g[r * width + s * nl + b];
                    }
                }
            }
        }
    }
    assert_information(name, &acc, &expect);
}

/// Checks expected information against E[s s'] for a class logit by
/// enumerating the classes of each set: with weight 1 on one class of
/// every set, each set counts once per row, and the expectation is over
/// the set's class probabilities.
fn check_logit_info(case: &Case, k_n: usize) {
    let Case {
        name,
        plan,
        phi,
        data,
    } = case;
    let term = &plan.terms[0];
    let n = data.n_rows();
    let ns = term.n_states;
    let nl = term.n_local;
    let width = term.n_term_params();
    let prep = eval::prepare(plan, phi).expect("valid");
    let mut sc = Scratch::default();
    // state set * k_n + k: weight on class 0 of every set
    let on_class = |k: usize| -> Vec<f64> {
        (0..n * ns)
            .map(|i| if (i / n) % k_n == k { 1.0 } else { 0.0 })
            .collect()
    };
    let acc = information(case, &on_class(0));
    let mut v = vec![0.0; n * ns];
    eval::term_values(term, &prep.terms[0], data, 0, n, slots(n), &mut sc, &mut v);
    let mut expect = vec![0.0; term.n_sets * nl * nl];
    for k in 0..k_n {
        let mut g = vec![0.0; n * width];
        eval::term_scores(
            term,
            &prep.terms[0],
            data,
            0,
            n,
            slots(n),
            &on_class(k),
            &mut sc,
            |r, slot, x| g[r * width + slot] += x,
        );
        for r in 0..n {
            for set in 0..term.n_sets {
                let p = v[(set * k_n + k) * n + r].exp();
                for a in 0..nl {
                    for b in 0..nl {
                        expect[set * nl * nl + a * nl + b] +=
                            p * g[r * width + set * nl + a] * g[r * width + set * nl + b];
                    }
                }
            }
        }
    }
    assert_information(name, &acc, &expect);
}

/// Gauss–Hermite nodes and weights (normalised to sum to 1) for E[f(Z)],
/// Z ~ N(0, 1): exact for polynomials of degree 5 and less, which covers
/// the products of two normal scores (degree 4 in y).
const GH3: [(f64, f64); 3] = [
    (-1.732_050_807_568_877_2, 1.0 / 6.0),
    (0.0, 2.0 / 3.0),
    (1.732_050_807_568_877_2, 1.0 / 6.0),
];

/// Checks expected information against E[s s'] for a term with normal
/// dependents by Gauss–Hermite quadrature: `points(s, r, local)` gives, for
/// state `s`, row `r` and the state's local parameters, the quadrature
/// points (weight, values of the dependent columns); no points for a row
/// with nothing observed.
fn check_normal_info(
    case: &Case,
    points: impl Fn(usize, usize, &[f64]) -> Vec<(f64, Vec<(usize, f64)>)>,
) {
    let Case {
        name,
        plan,
        phi,
        data,
    } = case;
    let term = &plan.terms[0];
    let n = data.n_rows();
    let ns = term.n_states;
    let nl = term.n_local;
    let width = term.n_term_params();
    let prep = eval::prepare(plan, phi).expect("valid");
    let mut sc = Scratch::default();
    let acc = information(case, &vec![1.0; n * ns]);
    let mut expect = vec![0.0; term.n_sets * nl * nl];
    for s in 0..ns {
        let set = term.set_of_state[s] as usize;
        let local = &phi[set * nl..(set + 1) * nl];
        let mut w = vec![0.0; ns];
        w[s] = 1.0;
        for r in 0..n {
            for (pw, vals) in points(s, r, local) {
                let mut d2 = data.clone();
                for (c, v) in vals {
                    d2.columns[c][r] = v;
                }
                let mut g = vec![0.0; width];
                eval::term_scores(
                    term,
                    &prep.terms[0],
                    &d2,
                    r,
                    r + 1,
                    slots(1),
                    &w,
                    &mut sc,
                    |_, slot, x| g[slot] += x,
                );
                for a in 0..nl {
                    for b in 0..nl {
                        expect[set * nl * nl + a * nl + b] +=
                            pw * g[set * nl + a] * g[set * nl + b];
                    }
                }
            }
        }
    }
    assert_information(name, &acc, &expect);
}

/// Values from a term's node-free part (`term_base`, then
/// `term_values_on_base`) equal its values computed whole, whichever of its
/// covariates (columns 1 and 2) are node columns: none, the second, both.
/// Where the kind takes its densities from the node-free part's
/// exponentials (`term_base_exps`), those too.
fn check_values_on_base(case: &Case) {
    let (name, data) = (&case.name, &case.data);
    let (prep, whole) = values_whole(case);
    let (term, tp) = (&case.plan.terms[0], &prep.terms[0]);
    let (n, ns) = (data.n_rows(), term.n_states);
    let mut sc = Scratch::default();
    for node_col in [3, 2, 1] {
        let mut base = vec![0.0; ns * n];
        assert!(
            eval::term_base(term, tp, node_col, data, 0, n, slots(n), &mut base),
            "{name}: no node-free part"
        );
        let mut exps = vec![f64::NAN; ns * n];
        let has_exps = eval::term_base_exps(term, slots(n), n, &base, &mut exps);
        for states in state_ranges(ns) {
            let mut v = vec![f64::NAN; ns * n];
            let (sl, st) = (slots(n), states.clone());
            let on = (&base[..], None, None);
            let out = eval::OnBase::Logs(&mut v[..]);
            eval::term_values_on_base(term, tp, st, node_col, data, 0, n, sl, on, &mut sc, out);
            for (i, (a, b)) in v.iter().zip(&whole).enumerate() {
                // (an item kind writes the states asked for alone)
                let asked = states.contains(&(i / n));
                assert!(
                    if asked {
                        (a - b).abs() <= 1e-14 * (1.0 + b.abs())
                    } else {
                        a.is_nan()
                    },
                    "{name}, node columns from {node_col}, states {states:?}, entry {i}: {a} against {b}"
                );
            }
            let at = (node_col, states.clone());
            check_densities_on_base(case, at.clone(), (&base, None), &v);
            if has_exps {
                check_densities_on_base(case, at, (&base, Some(&exps)), &v);
            }
        }
    }
}

/// With the densities asked for (`OnBase::ProbsElseLogs`, from the
/// node-free part `base` and, where given, its exponentials): where the
/// kind gives them, within rounding of the exponentials of its values `v`
/// (computed with `OnBase::Logs`), the logs' buffer untouched; elsewhere
/// the same values, bit for bit, and the densities' buffer untouched.
fn check_densities_on_base(
    case: &Case,
    (node_col, states): (usize, std::ops::Range<usize>),
    (base, exps): (&[f64], Option<&[f64]>),
    v: &[f64],
) {
    let (name, data) = (&case.name, &case.data);
    let prep = eval::prepare(&case.plan, &case.phi).expect("valid");
    let (term, tp) = (&case.plan.terms[0], &prep.terms[0]);
    let (n, ns) = (data.n_rows(), term.n_states);
    let mut sc = Scratch::default();
    let (mut v2, mut e) = (vec![f64::NAN; ns * n], vec![f64::NAN; ns * n]);
    let out = eval::OnBase::ProbsElseLogs {
        logs: &mut v2[..],
        probs: &mut e[..],
    };
    let (sl, st, on) = (slots(n), states.clone(), (base, exps, None));
    let gave = eval::term_values_on_base(term, tp, st, node_col, data, 0, n, sl, on, &mut sc, out);
    let untouched = |buf: &[f64]| buf.iter().all(|x| x.is_nan());
    let with = if exps.is_some() { "with" } else { "without" };
    if gave {
        assert!(untouched(&v2), "{name}: logs written with the densities");
    } else {
        assert_eq!(format!("{v:?}"), format!("{v2:?}"), "{name}: values");
        assert!(untouched(&e), "{name}: densities written without");
    }
    for (i, (x, y)) in e.iter().zip(v).enumerate() {
        let ok = match gave && states.contains(&(i / n)) {
            true => (x - y.exp()).abs() <= 1e-14 * (1.0 + y.exp()) * (1.0 + y.abs()),
            false => x.is_nan(),
        };
        assert!(
            ok,
            "{name}, node columns from {node_col}, {with} the base's exponentials: density entry {i}: {x} against e^{y}"
        );
    }
}

/// The case's prepared parameters, and its term's values computed whole.
fn values_whole(case: &Case) -> (eval::Prepared, Vec<f64>) {
    let prep = eval::prepare(&case.plan, &case.phi).expect("valid");
    let (term, data) = (&case.plan.terms[0], &case.data);
    let n = data.n_rows();
    let mut whole = vec![0.0; term.n_states * n];
    let mut sc = Scratch::default();
    eval::term_values(
        term,
        &prep.terms[0],
        data,
        0,
        n,
        slots(n),
        &mut sc,
        &mut whole,
    );
    (prep, whole)
}

/// Every state alone, the last two, and all of them.
fn state_ranges(ns: usize) -> Vec<std::ops::Range<usize>> {
    let mut r: Vec<_> = (0..ns).map(|s| s..s + 1).collect();
    r.push(ns.saturating_sub(2)..ns);
    r.push(0..ns);
    r
}

/// `term_values_of` a range of states writes those states' values, as
/// `term_values` computes them, and other states' slots either not at all
/// or with their values.
fn check_values_of_states(case: &Case) {
    let (name, data) = (&case.name, &case.data);
    let (prep, whole) = values_whole(case);
    let (term, tp) = (&case.plan.terms[0], &prep.terms[0]);
    let (n, ns) = (data.n_rows(), term.n_states);
    let mut sc = Scratch::default();
    // the item kinds write the states asked for alone
    let item = matches!(
        term.kind,
        TermKind::Categorical { .. } | TermKind::Guessing { .. } | TermKind::Normal { .. }
    );
    for states in state_ranges(ns) {
        let mut v = vec![f64::NAN; ns * n];
        let st = states.clone();
        eval::term_values_of(term, tp, st, data, 0, n, slots(n), &mut sc, &mut v);
        for (i, (a, b)) in v.iter().zip(&whole).enumerate() {
            let same = (a - b).abs() <= 1e-14 * (1.0 + b.abs()) || (a.is_infinite() && a == b);
            let ok = if states.contains(&(i / n)) {
                same
            } else if item {
                a.is_nan()
            } else {
                same || a.is_nan()
            };
            assert!(ok, "{name}, states {states:?}, entry {i}: {a} against {b}");
        }
    }
}

fn sample_x(n: usize, seed: u64) -> Vec<f64> {
    // a small deterministic sequence in [-2, 2]
    (0..n)
        .map(|i| {
            let v = ((i as u64 * 2654435761 + seed * 40503) % 1000) as f64 / 1000.0;
            4.0 * v - 2.0
        })
        .collect()
}

/// [`crate::eval`]'s `categorical` module: ordered categorical dependents.
mod categorical {
    use super::*;

    /// Binary items with two covariates, both links: values from the
    /// node-free part equal the values computed whole.
    #[test]
    fn values_on_the_node_free_part_are_the_values() {
        let n = 7;
        for link in [Link::Logit, Link::Probit] {
            let y: Vec<f64> = (0..n).map(|i| [0.0, 1.0, f64::NAN][i % 3]).collect();
            let kind = TermKind::Categorical {
                col: 0,
                ncat: 2,
                link,
                covs: vec![1, 2],
            };
            check_values_on_base(&Case {
                name: format!("binary ({link:?}, covariates [1, 2])"),
                plan: plan_with(identity_term(kind, 2, 3), 6),
                phi: vec![-0.4, 0.7, -1.1, 0.9, -0.3, 0.5],
                data: data_of(vec![y, sample_x(n, 3), sample_x(n, 4)]),
            });
        }
    }

    /// Binary items whose covariates have the same coefficients in both
    /// states (class-invariant loadings), so that the logit's densities
    /// share the node columns' exponentials across the states: the
    /// densities from the node-free part's exponentials are those of the
    /// values; with a node part or a node-free part beyond the split's
    /// range (covariates of ±1,500, a threshold of 800), the values' own.
    #[test]
    fn shared_node_coefficients_split_the_densities() {
        let n = 9;
        let y: Vec<f64> = (0..n).map(|i| [0.0, 1.0, f64::NAN][i % 3]).collect();
        let large: Vec<f64> = (0..n).map(|i| [1500.0, -1500.0][i % 2]).collect();
        for link in [Link::Logit, Link::Probit] {
            let kind = TermKind::Categorical {
                col: 0,
                ncat: 2,
                link,
                covs: vec![1, 2],
            };
            let cases = [
                ("", sample_x(n, 5), -0.4),
                (", a large node part", large.clone(), -0.4),
                (", a large threshold", sample_x(n, 5), 800.0),
            ];
            for (what, x, tau) in cases {
                check_values_on_base(&Case {
                    name: format!("binary ({link:?}, shared coefficients{what})"),
                    plan: plan_with(identity_term(kind.clone(), 2, 3), 6),
                    phi: vec![tau, 0.7, -1.1, 0.9, 0.7, -1.1],
                    data: data_of(vec![y.clone(), x, sample_x(n, 6)]),
                });
            }
        }
    }

    /// Logit and probit links; binary, 4 categories without covariates and
    /// 3 categories with one; two states.
    fn cases() -> Vec<(Case, usize)> {
        let mut out = Vec::new();
        for link in [Link::Logit, Link::Probit] {
            for (ncat, with_cov) in [(2, false), (4, false), (3, true), (2, true)] {
                let n = 7;
                let y: Vec<f64> = (0..n).map(|i| (i % ncat) as f64).collect();
                let x = sample_x(n, 3);
                let covs = if with_cov { vec![1] } else { vec![] };
                let nl = ncat - 1 + covs.len();
                let term = identity_term(
                    TermKind::Categorical {
                        col: 0,
                        ncat,
                        link,
                        covs: covs.clone(),
                    },
                    2,
                    nl,
                );
                let plan = plan_with(term, 2 * nl);
                let mut phi = Vec::new();
                for s in 0..2 {
                    for t in 0..ncat - 1 {
                        phi.push(-1.0 + 1.1 * t as f64 + 0.4 * s as f64);
                    }
                    if with_cov {
                        phi.push(0.7 - s as f64);
                    }
                }
                let name =
                    format!("categorical ({link:?}, {ncat} categories, covariates {covs:?})");
                let data = data_of(vec![y, x]);
                out.push((
                    Case {
                        name,
                        plan,
                        phi,
                        data,
                    },
                    ncat,
                ));
            }
        }
        out
    }

    #[test]
    fn scores_are_central_differences() {
        for (case, _) in cases() {
            check_scores(&case);
            check_values_of_states(&case);
        }
    }

    #[test]
    fn accumulate_sums_scores_and_information() {
        for (case, _) in cases() {
            check_accumulate(&case);
        }
    }

    #[test]
    fn information_is_expected_outer_product() {
        for (case, ncat) in cases() {
            check_cat_info(&case, ncat, 0);
        }
    }

    /// Long data: three item dummies and a node column (the node times
    /// the first dummy). A pattern of the rows' non-zero covariates fixed
    /// with the node column at a unit node accumulates, at a node where
    /// that column is zero and at another, what the rows' own pattern does
    /// there.
    #[test]
    fn a_fixed_pattern_accumulates_as_the_rows_own() {
        let n = 12;
        let y: Vec<f64> = (0..n).map(|i| f64::from(i % 5 < 2)).collect();
        let dummy = |q: usize| (0..n).map(|i| f64::from(i % 3 == q)).collect::<Vec<_>>();
        let at_node = |z: f64| dummy(0).iter().map(|d| z * d).collect::<Vec<_>>();
        let columns = |z: f64| vec![y.clone(), dummy(0), dummy(1), dummy(2), at_node(z)];
        let w: Vec<f64> = (0..2 * n).map(|i| 0.1 + (i % 7) as f64 / 7.0).collect();
        let freq: Vec<f64> = (0..n).map(|i| 1.0 + (i % 2) as f64).collect();
        for link in [Link::Logit, Link::Probit] {
            let covs = vec![1, 2, 3, 4];
            let kind = TermKind::Categorical {
                col: 0,
                ncat: 2,
                link,
                covs,
            };
            let mut term = identity_term(kind, 2, 5);
            term.info_pairs = (0..5u32)
                .flat_map(|a| (0..=a).map(move |b| (a, b)))
                .collect();
            let plan = plan_with(term, 10);
            let phi: Vec<f64> = (0..10).map(|i| 0.3 * i as f64 - 1.2).collect();
            let prep = eval::prepare(&plan, &phi).expect("valid");
            let term = &plan.terms[0];
            let unit = data_of(columns(1.0));
            let pat = eval::term_row_pattern(term, &unit, (0, n), 4).expect("a pattern");
            assert!(
                pat.is_sparse(),
                "{link:?}: one or two of four covariates per row"
            );
            for z in [0.0, 0.7] {
                let at = data_of(columns(z));
                let run = |pattern: Option<&eval::RowPattern>| {
                    let (mut sc, mut g, mut info) =
                        (Scratch::default(), vec![0.0; 10], InfoAcc::new(term));
                    let (tp, sl) = (&prep.terms[0], slots(n));
                    let both = (pattern, &mut sc);
                    eval::term_accumulate(
                        term,
                        tp,
                        &at,
                        0,
                        n,
                        sl,
                        &w,
                        &freq,
                        both,
                        Some(&mut g),
                        Some(&mut info),
                    );
                    (g, info.mats)
                };
                // the values from the node-free part (node columns from 4):
                // a row's own non-zero node columns alone, bit for bit
                let values = |pattern: Option<&eval::RowPattern>| {
                    let (tp, mut sc) = (&prep.terms[0], Scratch::default());
                    let (mut base, mut v) = (vec![0.0; 2 * n], vec![0.0; 2 * n]);
                    assert!(eval::term_base(term, tp, 4, &at, 0, n, slots(n), &mut base));
                    let on = (&base[..], None, pattern);
                    eval::term_values_on_base(
                        term,
                        tp,
                        0..2,
                        4,
                        &at,
                        0,
                        n,
                        slots(n),
                        on,
                        &mut sc,
                        eval::OnBase::Logs(&mut v),
                    );
                    v
                };
                assert_eq!(
                    values(None),
                    values(Some(&pat)),
                    "{link:?}, node {z}: values"
                );
                let (own, fixed) = (run(None), run(Some(&pat)));
                let pairs = own
                    .0
                    .iter()
                    .chain(&own.1)
                    .zip(fixed.0.iter().chain(&fixed.1));
                for (i, (a, b)) in pairs.enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-12 * (1.0 + a.abs()),
                        "{link:?}, node {z}: entry {i}: {a} (own pattern) against {b} (fixed)"
                    );
                }
                // the pattern is what the accumulation reads: one found at
                // a zero node misses the node column's entries at another
                if z != 0.0 {
                    let zero = data_of(columns(0.0));
                    let at_zero =
                        eval::term_row_pattern(term, &zero, (0, n), 4).expect("a pattern");
                    let missing = run(Some(&at_zero));
                    assert_ne!(values(Some(&at_zero)), values(None), "{link:?}: values");
                    assert!(
                        (missing.0[4] - own.0[4]).abs() > 1e-6,
                        "{link:?}: the node column's gradient {} with its entries missing, {} with them",
                        missing.0[4],
                        own.0[4]
                    );
                }
            }
        }
    }
}

/// [`crate::eval`]'s `guessing` module: binary items with a guessing
/// parameter (3PL).
mod guessing {
    use super::*;

    /// Logit and probit; without covariates and with two (one of them
    /// standing for a node column); two states; guessing on both sides
    /// of 1/2.
    fn cases() -> Vec<Case> {
        let mut out = Vec::new();
        for link in [Link::Logit, Link::Probit] {
            for covs in [vec![], vec![1, 2]] {
                let n = 9;
                let y: Vec<f64> = (0..n).map(|i| [0.0, 1.0, 1.0][i % 3]).collect();
                let nl = 2 + covs.len();
                let kind = TermKind::Guessing {
                    col: 0,
                    link,
                    covs: covs.clone(),
                };
                let plan = plan_with(identity_term(kind, 2, nl), 2 * nl);
                let mut phi = Vec::new();
                for s in 0..2 {
                    phi.push(-0.3 + 0.8 * s as f64);
                    for k in 0..covs.len() {
                        phi.push(0.9 - 0.5 * k as f64 - 0.4 * s as f64);
                    }
                    phi.push(-1.2 + 1.6 * s as f64);
                }
                out.push(Case {
                    name: format!("guessing ({link:?}, covariates {covs:?})"),
                    plan,
                    phi,
                    data: data_of(vec![y, sample_x(n, 5), sample_x(n, 6)]),
                });
            }
        }
        out
    }

    #[test]
    fn scores_are_central_differences() {
        for case in cases() {
            check_scores(&case);
            check_values_of_states(&case);
        }
    }

    #[test]
    fn accumulate_sums_scores_and_information() {
        for case in cases() {
            check_accumulate(&case);
        }
    }

    #[test]
    fn information_is_expected_outer_product() {
        for case in cases() {
            check_cat_info(&case, 2, 0);
        }
    }

    /// With the guessing logit at −40 the term is the 2PL's categorical
    /// term to within e^−40.
    #[test]
    fn no_guessing_is_the_two_parameter_model() {
        for link in [Link::Logit, Link::Probit] {
            let n = 9;
            let y: Vec<f64> = (0..n).map(|i| [0.0, 1.0, 1.0][i % 3]).collect();
            let data = data_of(vec![y, sample_x(n, 5)]);
            let g = plan_with(
                identity_term(
                    TermKind::Guessing {
                        col: 0,
                        link,
                        covs: vec![1],
                    },
                    1,
                    3,
                ),
                3,
            );
            let c = plan_with(
                identity_term(
                    TermKind::Categorical {
                        col: 0,
                        ncat: 2,
                        link,
                        covs: vec![1],
                    },
                    1,
                    2,
                ),
                2,
            );
            let values = |plan: &Plan, phi: &[f64]| {
                let prep = eval::prepare(plan, phi).expect("valid");
                let mut v = vec![0.0; n];
                let mut sc = Scratch::default();
                eval::term_values(
                    &plan.terms[0],
                    &prep.terms[0],
                    &data,
                    0,
                    n,
                    slots(n),
                    &mut sc,
                    &mut v,
                );
                v
            };
            let a = values(&g, &[0.4, 1.3, -40.0]);
            let b = values(&c, &[0.4, 1.3]);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-12, "{link:?}: {x} vs {y}");
            }
        }
    }
}

/// [`crate::eval`]'s `normal` module: normal dependents.
mod normal {
    use super::*;

    /// Without and with a covariate; two states; one missing value.
    fn cases() -> Vec<Case> {
        let n = 6;
        let y = vec![0.3, -1.2, 2.5, f64::NAN, 0.0, 1.1];
        let x = sample_x(n, 5);
        let mut out = Vec::new();
        for covs in [vec![], vec![1]] {
            let q = covs.len();
            let term = identity_term(
                TermKind::Normal {
                    col: 0,
                    covs: covs.clone(),
                },
                2,
                q + 2,
            );
            let plan = plan_with(term, 2 * (q + 2));
            let mut phi = Vec::new();
            for s in 0..2 {
                phi.push(0.5 - s as f64);
                if q > 0 {
                    phi.push(0.3);
                }
                phi.push(1.5 + s as f64);
            }
            out.push(Case {
                name: format!("normal (covariates {covs:?})"),
                plan,
                phi,
                data: data_of(vec![y.clone(), x.clone()]),
            });
        }
        out
    }

    #[test]
    fn scores_are_central_differences() {
        for case in cases() {
            check_scores(&case);
            check_values_of_states(&case);
        }
    }

    #[test]
    fn accumulate_sums_scores_and_information() {
        for case in cases() {
            check_accumulate(&case);
        }
    }

    /// Values from the node-free part equal the values computed whole.
    #[test]
    fn values_on_the_node_free_part_are_the_values() {
        let n = 6;
        let y = vec![0.3, -1.2, 2.5, f64::NAN, 0.0, 1.1];
        let term = identity_term(
            TermKind::Normal {
                col: 0,
                covs: vec![1, 2],
            },
            2,
            4,
        );
        check_values_on_base(&Case {
            name: "normal (covariates [1, 2])".into(),
            plan: plan_with(term, 8),
            phi: vec![0.5, 0.3, -0.7, 1.5, -0.5, 1.2, 0.4, 2.5],
            data: data_of(vec![y, sample_x(n, 5), sample_x(n, 9)]),
        });
    }

    #[test]
    fn information_is_expected_outer_product() {
        for case in cases() {
            let TermKind::Normal { col, covs } = case.plan.terms[0].kind.clone() else {
                unreachable!()
            };
            let q = covs.len();
            let data = case.data.clone();
            check_normal_info(&case, |_, r, p| {
                if data.columns[col][r].is_nan() {
                    return Vec::new();
                }
                let mut mu = p[0];
                for (k, &c) in covs.iter().enumerate() {
                    mu += p[1 + k] * data.columns[c][r];
                }
                let sd = p[q + 1].sqrt();
                GH3.iter()
                    .map(|&(z, pw)| (pw, vec![(col, mu + sd * z)]))
                    .collect()
            });
        }
    }
}

/// [`crate::eval`]'s `block` module: multivariate normal blocks.
mod block {
    use super::*;

    /// d = 2 with missing-data patterns (both, first, second, neither);
    /// without and with a covariate; one state.
    fn cases() -> Vec<Case> {
        let n = 6;
        let y1 = vec![0.3, -1.2, 2.5, f64::NAN, 0.4, f64::NAN];
        let y2 = vec![1.0, f64::NAN, 0.5, 0.9, -0.7, f64::NAN];
        let x = sample_x(n, 9);
        let patterns = vec![vec![0, 1], vec![0], vec![1]];
        let row_pattern = vec![0, 1, 0, 2, 0, u32::MAX];
        let mut out = Vec::new();
        for covs in [vec![], vec![2]] {
            let q = covs.len();
            // [nu1, nu2, (b11, b21,) s11, s21, s22]
            let nl = 2 + 2 * q + 3;
            let term = identity_term(
                TermKind::NormalBlock {
                    cols: vec![0, 1],
                    covs: covs.clone(),
                    patterns: patterns.clone(),
                    row_pattern: row_pattern.clone(),
                },
                1,
                nl,
            );
            let mut phi = vec![0.1, -0.2];
            if q > 0 {
                phi.extend([0.5, -0.3]);
            }
            phi.extend([1.3, 0.4, 0.9]);
            out.push(Case {
                name: format!("normal block (covariates {covs:?})"),
                plan: plan_with(term, nl),
                phi,
                data: data_of(vec![y1.clone(), y2.clone(), x.clone()]),
            });
        }
        out
    }

    #[test]
    fn scores_are_central_differences() {
        for case in cases() {
            check_scores(&case);
            check_values_of_states(&case);
        }
    }

    #[test]
    fn accumulate_sums_scores_and_information() {
        for case in cases() {
            check_accumulate(&case);
        }
    }

    #[test]
    fn information_is_expected_outer_product() {
        for case in cases() {
            let TermKind::NormalBlock {
                cols,
                covs,
                patterns,
                row_pattern,
            } = case.plan.terms[0].kind.clone()
            else {
                unreachable!()
            };
            let d = cols.len();
            let q = covs.len();
            let sig0 = d + d * q;
            let data = case.data.clone();
            check_normal_info(&case, |_, r, p| {
                let pat = row_pattern[r];
                if pat == u32::MAX {
                    return Vec::new();
                }
                let obs = &patterns[pat as usize];
                let m = obs.len();
                let mu: Vec<f64> = obs
                    .iter()
                    .map(|&v| {
                        let mut e = p[v];
                        for (c, &cc) in covs.iter().enumerate() {
                            e += p[d + v * q + c] * data.columns[cc][r];
                        }
                        e
                    })
                    .collect();
                // the observed covariance block, packed by rows, and its
                // Cholesky factor
                let mut packed = Vec::new();
                for (a, &i) in obs.iter().enumerate() {
                    for &j in &obs[..=a] {
                        let (i, j) = (i.max(j), i.min(j));
                        packed.push(p[sig0 + i * (i + 1) / 2 + j]);
                    }
                }
                let l = eval::cholesky_psd(&packed, m).expect("positive definite");
                // the product rule over the observed dimensions
                let mut pts = Vec::new();
                for idx in 0..GH3.len().pow(m as u32) {
                    let mut z = vec![0.0; m];
                    let mut pw = 1.0;
                    let mut rest = idx;
                    for za in z.iter_mut() {
                        let (node, weight) = GH3[rest % GH3.len()];
                        rest /= GH3.len();
                        *za = node;
                        pw *= weight;
                    }
                    let vals = (0..m)
                        .map(|a| {
                            let y = mu[a] + (0..=a).map(|b| l[a * m + b] * z[b]).sum::<f64>();
                            (cols[obs[a]], y)
                        })
                        .collect();
                    pts.push((pw, vals));
                }
                pts
            });
        }
    }
}

/// [`crate::eval`]'s `logit` module: class logits.
mod logit {
    use super::*;

    const K_N: usize = 3;

    /// 3 classes, one parent with 2 classes (2 sets): shared alpha (and
    /// beta) across sets, gamma only for parent class 0; with one
    /// covariate `x`, or without covariates.
    fn case(name: &str, x: Option<Vec<f64>>, n: usize) -> Case {
        let q = usize::from(x.is_some());
        let per = 1 + q + 1;
        let nl = K_N * per;
        let mut phi_index = vec![NONE; 2 * nl];
        let mut next = 0u32;
        for k in 0..K_N - 1 {
            for set in 0..2 {
                // alpha (and beta) shared across sets
                for j in 0..1 + q {
                    phi_index[set * nl + k * per + j] = (j * (K_N - 1) + k) as u32;
                }
            }
            // gamma only for parent class 0
            phi_index[k * per + 1 + q] = ((1 + q) * (K_N - 1) + k) as u32;
            next = ((2 + q) * (K_N - 1)) as u32;
        }
        let term = Term {
            kind: TermKind::ClassLogit {
                cv: 1,
                classes: K_N,
                covs: if q > 0 { vec![0] } else { vec![] },
                n_parents: 1,
            },
            n_states: 2 * K_N,
            state_of_combo: (0..6).collect(),
            n_sets: 2,
            set_of_state: vec![0, 0, 0, 1, 1, 1],
            n_local: nl,
            phi_index,
            cluster_level: false,
            uses_nodes: false,
            info_pairs: Vec::new(),
        };
        let plan = Plan {
            n_phi: next as usize,
            n_ext: next as usize,
            class_sizes: vec![2, 3],
            between_cv: vec![false, false],
            n_combos: 6,
            terms: vec![term],
            dims: 0,
            n_data_cols: 1,
            virtual_cols: Vec::new(),
            chol: Vec::new(),
            derived: Vec::new(),
            implied: Vec::new(),
            constants: Vec::new(),
            shifted: Vec::new(),
            within_cv: None,
            psi_shared: false,
        };
        let phi = if q > 0 {
            vec![0.3, -0.4, 0.8, -0.2, 1.1, 0.6]
        } else {
            vec![0.3, -0.4, 1.1, 0.6]
        };
        Case {
            name: format!("class logit ({name})"),
            plan,
            phi,
            data: data_of(vec![x.unwrap_or_else(|| sample_x(n, 2))]),
        }
    }

    /// A covariate with distinct rows; a covariate with repeated values (as
    /// the rows of a cluster share a node column), which the kernels take
    /// in runs of equal rows; no covariates.
    fn cases() -> Vec<Case> {
        vec![
            case("parent and covariate", Some(sample_x(4, 1)), 4),
            case(
                "parent and covariate, runs of equal rows",
                Some(vec![0.5, 0.5, 0.5, -1.0, -1.0, 0.5, 2.0, 2.0]),
                8,
            ),
            case("parent, no covariates", None, 5),
        ]
    }

    #[test]
    fn scores_are_central_differences() {
        for case in cases() {
            check_scores(&case);
            check_values_of_states(&case);
        }
    }

    #[test]
    fn accumulate_sums_scores_and_information() {
        for case in cases() {
            check_accumulate(&case);
        }
    }

    #[test]
    fn information_is_expected_outer_product() {
        for case in cases() {
            check_logit_info(&case, K_N);
        }
    }

    /// The kernels take runs of equal rows at once; values and information
    /// equal those of one row at a time.
    #[test]
    fn runs_of_equal_rows_match_one_row_at_a_time() {
        for case in cases() {
            let (name, data) = (&case.name, &case.data);
            let n = data.n_rows();
            // all rows in one call against one row per call (no reuse possible)
            let (prep, all) = values_whole(&case);
            let term = &case.plan.terms[0];
            let ns = term.n_states;
            let mut sc = Scratch::default();
            for r in 0..n {
                let mut one = vec![0.0; ns];
                eval::term_values(
                    term,
                    &prep.terms[0],
                    data,
                    r,
                    r + 1,
                    slots(1),
                    &mut sc,
                    &mut one,
                );
                for s in 0..ns {
                    assert_eq!(all[s * n + r], one[s], "{name}: row {r}, state {s}");
                }
            }
            // the expected information over runs of equal rows against one row
            // per call
            let w: Vec<f64> = (0..n * ns).map(|i| 0.1 + (i % 7) as f64 * 0.13).collect();
            let freq: Vec<f64> = (0..n).map(|r| 1.0 + (r % 3) as f64).collect();
            let mut acc = InfoAcc::new(term);
            eval::term_info(
                term,
                &prep.terms[0],
                data,
                0,
                n,
                slots(n),
                &w,
                &freq,
                &mut sc,
                &mut acc,
            );
            let mut by_row = InfoAcc::new(term);
            for r in 0..n {
                let wr: Vec<f64> = (0..ns).map(|s| w[s * n + r]).collect();
                let mut one = InfoAcc::new(term);
                eval::term_info(
                    term,
                    &prep.terms[0],
                    data,
                    r,
                    r + 1,
                    slots(1),
                    &wr,
                    &freq[r..r + 1],
                    &mut sc,
                    &mut one,
                );
                by_row.add(&one);
            }
            eval::finish_info(term, &prep.terms[0], &mut acc);
            eval::finish_info(term, &prep.terms[0], &mut by_row);
            for (a, b) in acc.mats.iter().zip(&by_row.mats) {
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                    "{name}: {a} vs {b}"
                );
            }
        }
    }
}

/// The chain rule of the random-effect Cholesky factors (`Prepared::jac`)
/// against central differences of the factor (`Prepared::ext`), in a block
/// with a zero pivot too.
mod random_effects {
    use super::*;
    use crate::plan::CholBlock;

    /// A 3 x 3 block: phi = [psi00, psi10, psi11, psi20, psi21, psi22],
    /// L in ext[6..12].
    fn plan() -> Plan {
        Plan {
            n_phi: 6,
            n_ext: 12,
            class_sizes: vec![1],
            between_cv: vec![false],
            n_combos: 1,
            terms: Vec::new(),
            dims: 3,
            n_data_cols: 1,
            virtual_cols: Vec::new(),
            chol: vec![CholBlock {
                dims: vec![0, 1, 2],
                psi: (0..6).collect(),
                l: (6..12).collect(),
                beta: Vec::new(),
                m: (6..12).collect(),
            }],
            derived: Vec::new(),
            implied: Vec::new(),
            constants: Vec::new(),
            shifted: Vec::new(),
            within_cv: None,
            psi_shared: false,
        }
    }

    fn check(phi: &[f64], zero_pivot: Option<usize>) {
        let plan = plan();
        let prep = eval::prepare(&plan, phi).expect("positive semi-definite");
        let mut analytic = [[0.0; 6]; 12];
        for &(e, p, d) in &prep.jac {
            analytic[e as usize][p as usize] += d;
        }
        for p in 0..6 {
            let packed_row = [0, 1, 1, 2, 2, 2][p];
            let packed_col = [0, 0, 1, 0, 1, 2][p];
            if zero_pivot.is_some_and(|z| z == packed_row || z == packed_col) {
                // no derivative at the boundary of the cone
                continue;
            }
            let h = 1e-6;
            let at = |x: f64| {
                let mut t = phi.to_vec();
                t[p] += x;
                eval::prepare(&plan, &t).expect("valid").ext
            };
            let (up, down) = (at(h), at(-h));
            for e in 6..12 {
                let fd = (up[e] - down[e]) / (2.0 * h);
                assert!(
                    (analytic[e][p] - fd).abs() < 1e-6,
                    "zero pivot {zero_pivot:?}: dL[{e}]/dpsi[{p}] = {} against {fd}",
                    analytic[e][p]
                );
            }
        }
    }

    #[test]
    fn cholesky_derivatives_are_central_differences() {
        check(&[1.3, 0.4, 0.9, -0.2, 0.1, 0.7], None);
    }

    /// The middle random effect has variance 0 (and no covariances): the
    /// other two keep their derivatives (they were all dropped before).
    #[test]
    fn a_zero_pivot_leaves_the_others_their_derivatives() {
        check(&[1.3, 0.0, 0.0, -0.2, 0.0, 0.7], Some(1));
    }
}

/// A binary item of long data: three one-hot item dummies (columns 1-3)
/// and a covariate non-zero on the first item's rows only (column 4, as a
/// random slope's node column is), logit and probit. The information's
/// entries of items never seen together are structural zeros
/// ([`Term::info_pairs`]), and the row-by-row accumulation over the rows'
/// non-zero covariates gives the column-wise sums.
mod long_binary {
    use super::*;

    fn cases() -> Vec<Case> {
        let n = 24;
        let item = |i: usize| i % 3;
        let y: Vec<f64> = (0..n).map(|i| [0.0, 1.0, 1.0, 0.0, 1.0][i % 5]).collect();
        let dummy = |q: usize| -> Vec<f64> { (0..n).map(|i| f64::from(item(i) == q)).collect() };
        let x = sample_x(n, 11);
        let node: Vec<f64> = (0..n)
            .map(|i| if item(i) == 0 { x[i] } else { 0.0 })
            .collect();
        let mut out = Vec::new();
        for link in [Link::Logit, Link::Probit] {
            let covs = vec![1, 2, 3, 4];
            let nl = 1 + covs.len();
            let kind = TermKind::Categorical {
                col: 0,
                ncat: 2,
                link,
                covs,
            };
            let data = data_of(vec![y.clone(), dummy(0), dummy(1), dummy(2), node.clone()]);
            let mut plan = plan_with(identity_term(kind, 2, nl), 2 * nl);
            plan.terms[0].info_pairs = crate::plan::info_pairs(&plan, 0, &data);
            // (1, 0) (1, 1) (2, 0) (2, 2) (3, 0) (3, 3) (4, 0) (4, 1) (4, 4) and (0, 0)
            assert_eq!(plan.terms[0].info_pairs.len(), 10);
            let phi = (0..2 * nl).map(|i| 0.7 - 0.3 * i as f64).collect();
            out.push(Case {
                name: format!("long binary ({link:?})"),
                plan,
                phi,
                data,
            });
        }
        out
    }

    #[test]
    fn accumulate_sums_scores_and_information() {
        for case in cases() {
            check_accumulate(&case);
        }
    }
}

/// [`crate::eval`]'s `nominal` module: nominal dependents, the multinomial
/// logit of an observed category with the last category the reference.
/// Each case has missing values of the dependent (every fifth row from the
/// fourth), and every state its own parameters (or its own intercepts and
/// slopes shared across states).
mod nominal {
    use super::*;

    /// A nominal term on column 0 with `ncat` categories, covariates `covs`
    /// and `ns` states: per state, per category `[a_k, b_k (q)]`, the last
    /// category's entries structural zeros ([`NONE`]); with
    /// `shared_slopes` the slopes are the same parameters in every state.
    fn case(
        name: &str,
        ncat: usize,
        covs: Vec<usize>,
        ns: usize,
        shared_slopes: bool,
        data: EngineData,
    ) -> Case {
        let q = covs.len();
        let per = 1 + q;
        let nl = ncat * per;
        let mut next = if shared_slopes { (ncat - 1) * q } else { 0 } as u32;
        let mut phi_index = vec![NONE; ns * nl];
        for s in 0..ns {
            for k in 0..ncat - 1 {
                let base = s * nl + k * per;
                phi_index[base] = next;
                next += 1;
                for j in 0..q {
                    phi_index[base + 1 + j] = if shared_slopes {
                        (k * q + j) as u32
                    } else {
                        next += 1;
                        next - 1
                    };
                }
            }
        }
        let n_phi = next as usize;
        let kind = TermKind::Nominal { col: 0, ncat, covs };
        let term = Term {
            phi_index,
            ..identity_term(kind, ns, nl)
        };
        Case {
            name: format!("nominal ({name})"),
            plan: plan_with(term, n_phi),
            phi: (0..n_phi)
                .map(|i| 1.3 * (0.9 * i as f64 + 0.4).sin())
                .collect(),
            data,
        }
    }

    /// Categories `0..ncat`, every one observed, missing on every fifth row
    /// from the fourth.
    fn y_of(n: usize, ncat: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                if i % 5 == 3 {
                    f64::NAN
                } else {
                    ((i * 7 + i / 3) % ncat) as f64
                }
            })
            .collect()
    }

    /// 3 and 4 categories; without covariates (the prepared log
    /// probabilities), with two, with one in a later column; 2 and 3
    /// states; and long data: two one-hot dummies and a covariate non-zero
    /// on the first dummy's rows only (as a random slope's node column is in
    /// a binary item's long data; a nominal term takes no random effects).
    fn cases() -> Vec<(Case, usize)> {
        let n = 11;
        let x = |seed| sample_x(n, seed);
        let long = {
            let n = 24;
            let item = |i: usize| i % 3;
            let dummy =
                |q: usize| -> Vec<f64> { (0..n).map(|i| f64::from(item(i) == q)).collect() };
            let x = sample_x(n, 11);
            let node = (0..n)
                .map(|i| if item(i) == 0 { x[i] } else { 0.0 })
                .collect();
            data_of(vec![y_of(n, 4), dummy(0), dummy(1), node])
        };
        vec![
            (
                case("3 categories, 2 states", 3, vec![], 2, false, {
                    data_of(vec![y_of(n, 3)])
                }),
                3,
            ),
            (
                case("4 categories, 3 states", 4, vec![], 3, false, {
                    data_of(vec![y_of(n, 4)])
                }),
                4,
            ),
            (
                case(
                    "3 categories, covariates [1, 2], 2 states",
                    3,
                    vec![1, 2],
                    2,
                    false,
                    data_of(vec![y_of(n, 3), x(5), x(6)]),
                ),
                3,
            ),
            (
                case(
                    "4 categories, covariate [2], 3 states, slopes shared",
                    4,
                    vec![2],
                    3,
                    true,
                    data_of(vec![y_of(n, 4), x(7), x(8)]),
                ),
                4,
            ),
            (
                case(
                    "long, 4 categories, covariates [1, 2, 3], 2 states",
                    4,
                    vec![1, 2, 3],
                    2,
                    false,
                    long,
                ),
                4,
            ),
        ]
    }

    /// Posterior weights varying over rows and states, and frequency
    /// weights 1, 2, 3.
    fn weights(n: usize, ns: usize) -> (Vec<f64>, Vec<f64>) {
        let w = (0..n * ns)
            .map(|i| 0.1 + ((i * 7919) % 13) as f64 / 13.0)
            .collect();
        let freq = (0..n).map(|i| 1.0 + (i % 3) as f64).collect();
        (w, freq)
    }

    /// The values are the log-softmax of `a_k + b_k'x` at the observed
    /// category, computed here from phi (the last category's predictor 0),
    /// and exactly 0 where `u` is missing.
    #[test]
    fn values_are_log_softmax() {
        for (case, ncat) in cases() {
            let Case {
                name,
                plan,
                phi,
                data,
            } = &case;
            let term = &plan.terms[0];
            let TermKind::Nominal { covs, .. } = &term.kind else {
                unreachable!()
            };
            let (n, ns, nl, per) = (data.n_rows(), term.n_states, term.n_local, 1 + covs.len());
            let prep = eval::prepare(plan, phi).expect("valid");
            let mut sc = Scratch::default();
            let mut v = vec![f64::NAN; n * ns];
            eval::term_values(term, &prep.terms[0], data, 0, n, slots(n), &mut sc, &mut v);
            let par = |t: usize| match term.phi_index[t] {
                NONE => 0.0,
                i => phi[i as usize],
            };
            for s in 0..ns {
                for r in 0..n {
                    let u = data.columns[0][r];
                    let got = v[s * n + r];
                    if u.is_nan() {
                        assert_eq!(got, 0.0, "{name}: missing row {r} state {s}");
                        continue;
                    }
                    let eta: Vec<f64> = (0..ncat)
                        .map(|k| {
                            let b = s * nl + k * per;
                            par(b)
                                + covs
                                    .iter()
                                    .enumerate()
                                    .map(|(j, &c)| par(b + 1 + j) * data.columns[c][r])
                                    .sum::<f64>()
                        })
                        .collect();
                    assert_eq!(eta[ncat - 1], 0.0, "{name}: reference category");
                    let lse = eta.iter().map(|e| e.exp()).sum::<f64>().ln();
                    let want = eta[u as usize] - lse;
                    assert!(
                        (got - want).abs() < 1e-12,
                        "{name}: row {r} state {s}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn scores_are_central_differences() {
        for (case, _) in cases() {
            check_scores(&case);
            check_values_of_states(&case);
        }
    }

    #[test]
    fn accumulate_sums_scores_and_information() {
        for (case, _) in cases() {
            check_accumulate(&case);
        }
    }

    /// The accumulated gradient with posterior and frequency weights,
    /// mapped to phi, equals central differences of the weighted
    /// log-likelihood `Σ_r freq_r Σ_s w[r, s] ℓ_s(r)`.
    #[test]
    fn weighted_gradient_is_central_differences() {
        for (case, _) in cases() {
            let Case {
                name,
                plan,
                phi,
                data,
            } = &case;
            let term = &plan.terms[0];
            let (n, ns) = (data.n_rows(), term.n_states);
            let (w, freq) = weights(n, ns);
            let mut sc = Scratch::default();
            let loglik = |p: &[f64], sc: &mut Scratch| {
                let prep = eval::prepare(plan, p).expect("valid");
                let mut v = vec![0.0; n * ns];
                eval::term_values(term, &prep.terms[0], data, 0, n, slots(n), sc, &mut v);
                (0..n * ns).map(|i| freq[i % n] * w[i] * v[i]).sum::<f64>()
            };
            let prep = eval::prepare(plan, phi).expect("valid");
            let mut g = vec![0.0; term.n_term_params()];
            eval::term_accumulate(
                term,
                &prep.terms[0],
                data,
                0,
                n,
                slots(n),
                &w,
                &freq,
                (None, &mut sc),
                Some(&mut g),
                None,
            );
            let mut by_phi = vec![0.0; phi.len()];
            for (t, &pi) in term.phi_index.iter().enumerate() {
                if pi != NONE {
                    by_phi[pi as usize] += g[t];
                }
            }
            for (i, &an) in by_phi.iter().enumerate() {
                let h = 1e-6 * (1.0 + phi[i].abs());
                let mut up = phi.clone();
                up[i] += h;
                let mut down = phi.clone();
                down[i] -= h;
                let fd = (loglik(&up, &mut sc) - loglik(&down, &mut sc)) / (2.0 * h);
                assert!(
                    (fd - an).abs() < 1e-6 * (1.0 + fd.abs()),
                    "{name}: phi {i}: analytic {an} vs numeric {fd}"
                );
            }
        }
    }

    /// The information with posterior and frequency weights equals
    /// `Σ_r freq_r Σ_s w[r, s] E[s s']` over the categories of each
    /// observed row (the scores at unit weight, the probabilities from the
    /// values); a missing row adds nothing.
    #[test]
    fn information_is_expected_outer_product() {
        for (case, ncat) in cases() {
            let Case {
                name,
                plan,
                phi,
                data,
            } = &case;
            let term = &plan.terms[0];
            let (n, ns, nl) = (data.n_rows(), term.n_states, term.n_local);
            let width = term.n_term_params();
            let (w, freq) = weights(n, ns);
            let prep = eval::prepare(plan, phi).expect("valid");
            let mut sc = Scratch::default();
            let mut acc = InfoAcc::new(term);
            eval::term_info(
                term,
                &prep.terms[0],
                data,
                0,
                n,
                slots(n),
                &w,
                &freq,
                &mut sc,
                &mut acc,
            );
            eval::finish_info(term, &prep.terms[0], &mut acc);
            let mut expect = vec![0.0; ns * nl * nl];
            for c in 0..ncat {
                // every observed row at category c, the missing ones kept
                let mut d2 = data.clone();
                for u in &mut d2.columns[0] {
                    if !u.is_nan() {
                        *u = c as f64;
                    }
                }
                let mut v = vec![0.0; n * ns];
                eval::term_values(term, &prep.terms[0], &d2, 0, n, slots(n), &mut sc, &mut v);
                let mut g = vec![0.0; n * width];
                eval::term_scores(
                    term,
                    &prep.terms[0],
                    &d2,
                    0,
                    n,
                    slots(n),
                    &vec![1.0; n * ns],
                    &mut sc,
                    |r, slot, x| g[r * width + slot] += x,
                );
                for r in 0..n {
                    if data.columns[0][r].is_nan() {
                        continue;
                    }
                    for s in 0..ns {
                        let pw = freq[r] * w[s * n + r] * v[s * n + r].exp();
                        for a in 0..nl {
                            for b in 0..nl {
                                expect[s * nl * nl + a * nl + b] +=
                                    pw * g[r * width + s * nl + a] * g[r * width + s * nl + b];
                            }
                        }
                    }
                }
            }
            assert_information(name, &acc, &expect);
        }
    }

    /// A missing `u` contributes nothing: its scores are 0 whatever the
    /// weights, and the information over all rows equals that over the
    /// observed rows alone, one row per call.
    #[test]
    fn missing_rows_contribute_nothing() {
        for (case, _) in cases() {
            let Case {
                name,
                plan,
                phi,
                data,
            } = &case;
            let term = &plan.terms[0];
            let (n, ns) = (data.n_rows(), term.n_states);
            let (w, freq) = weights(n, ns);
            let prep = eval::prepare(plan, phi).expect("valid");
            let mut sc = Scratch::default();
            let missing = |r: usize| data.columns[0][r].is_nan();
            assert!((0..n).any(missing), "{name}: no missing row");
            eval::term_scores(
                term,
                &prep.terms[0],
                data,
                0,
                n,
                slots(n),
                &w,
                &mut sc,
                |r, slot, x| {
                    assert!(
                        !missing(r) || x == 0.0,
                        "{name}: missing row {r}, slot {slot}: score {x}"
                    );
                },
            );
            let mut all = InfoAcc::new(term);
            eval::term_info(
                term,
                &prep.terms[0],
                data,
                0,
                n,
                slots(n),
                &w,
                &freq,
                &mut sc,
                &mut all,
            );
            let mut observed = InfoAcc::new(term);
            for r in (0..n).filter(|&r| !missing(r)) {
                let wr: Vec<f64> = (0..ns).map(|s| w[s * n + r]).collect();
                let mut one = InfoAcc::new(term);
                eval::term_info(
                    term,
                    &prep.terms[0],
                    data,
                    r,
                    r + 1,
                    slots(1),
                    &wr,
                    &freq[r..r + 1],
                    &mut sc,
                    &mut one,
                );
                observed.add(&one);
            }
            eval::finish_info(term, &prep.terms[0], &mut all);
            eval::finish_info(term, &prep.terms[0], &mut observed);
            for (i, (a, b)) in all.mats.iter().zip(&observed.mats).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                    "{name}: information {i}: {a} vs {b}"
                );
            }
        }
    }
}

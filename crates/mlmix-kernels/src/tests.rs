//! Property checks shared by every term: analytic scores equal central
//! differences of the log-density, and the expected information equals the
//! expected outer product of scores.

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
    }
}

/// Checks scores against central differences of values, per row and state.
fn check_scores(plan: &Plan, phi: &[f64], data: &EngineData) {
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
                    "row {r} state {s} slot {t}: analytic {an} vs numeric {fd}"
                );
            }
        }
    }
}

/// Checks that `term_accumulate` (sufficient statistics where it has them)
/// gives the frequency-weighted sum of `term_scores` as gradient and
/// `term_info`'s information.
fn check_gradient(plan: &Plan, phi: &[f64], data: &EngineData) {
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
        &mut sc,
        Some(&mut g),
        Some(&mut fast_info),
    );
    for (j, (a, b)) in g.iter().zip(&summed).enumerate() {
        assert!(
            (a - b).abs() < 1e-10 * (1.0 + b.abs()),
            "slot {j}: {a} vs {b}"
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
            "information {j}: {a} vs {b}"
        );
    }
}

/// Checks expected information against E[s s'] for a categorical term by
/// enumerating the categories of each row.
fn check_cat_info(plan: &Plan, phi: &[f64], data: &EngineData, ncat: usize, col: usize) {
    let term = &plan.terms[0];
    let n = data.n_rows();
    let ns = term.n_states;
    let nl = term.n_local;
    let width = term.n_term_params();
    let prep = eval::prepare(plan, phi).expect("valid");
    let mut sc = Scratch::default();
    let w = vec![1.0; n * ns];
    let freq = vec![1.0; n];
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
    for (i, (a, b)) in acc.mats.iter().zip(&expect).enumerate() {
        assert!(
            (a - b).abs() < 1e-8 * (1.0 + b.abs()),
            "entry {i}: {a} vs {b}"
        );
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

#[test]
fn categorical_scores_and_information() {
    for link in [Link::Logit, Link::Probit] {
        for (ncat, with_cov) in [(2, false), (4, false), (3, true)] {
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
            let data = EngineData {
                columns: vec![y, x],
                weights: vec![1.0; n],
                cluster_starts: (0..=n).collect(),
                engine_row: (0..n).collect(),
                row_offset: 0,
                clustered: false,
            };
            check_scores(&plan, &phi, &data);
            check_gradient(&plan, &phi, &data);
            check_cat_info(&plan, &phi, &data, ncat, 0);
        }
    }
}

#[test]
fn normal_scores() {
    let n = 6;
    let y = vec![0.3, -1.2, 2.5, f64::NAN, 0.0, 1.1];
    let x = sample_x(n, 5);
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
        let data = EngineData {
            columns: vec![y.clone(), x.clone()],
            weights: vec![1.0; n],
            cluster_starts: (0..=n).collect(),
            engine_row: (0..n).collect(),
            row_offset: 0,
            clustered: false,
        };
        check_scores(&plan, &phi, &data);
        check_gradient(&plan, &phi, &data);
    }
}

#[test]
fn normal_block_scores_with_missing_patterns() {
    let n = 5;
    let y1 = vec![0.3, -1.2, 2.5, f64::NAN, 0.4];
    let y2 = vec![1.0, f64::NAN, 0.5, 0.9, -0.7];
    let x = sample_x(n, 9);
    // d = 2, q = 1: [nu1, nu2, b11, b21, s11, s21, s22]
    let patterns = vec![vec![0, 1], vec![0], vec![1]];
    let row_pattern = vec![0, 1, 0, 2, 0];
    let term = identity_term(
        TermKind::NormalBlock {
            cols: vec![0, 1],
            covs: vec![2],
            patterns,
            row_pattern,
        },
        1,
        7,
    );
    let plan = plan_with(term, 7);
    let phi = vec![0.1, -0.2, 0.5, -0.3, 1.3, 0.4, 0.9];
    let data = EngineData {
        columns: vec![y1, y2, x],
        weights: vec![1.0; n],
        cluster_starts: (0..=n).collect(),
        engine_row: (0..n).collect(),
        row_offset: 0,
        clustered: false,
    };
    check_scores(&plan, &phi, &data);
    check_gradient(&plan, &phi, &data);
}

#[test]
fn class_logit_scores_with_parent_and_covariate() {
    let n = 4;
    class_logit_case(sample_x(n, 1));
}

/// Rows with repeated covariate values (as the rows of a cluster share a
/// node column): the kernels take runs of equal rows at once; scores,
/// gradient, values and information equal those of one row at a time.
#[test]
fn class_logit_reuses_probabilities_of_equal_rows() {
    class_logit_case(vec![0.5, 0.5, 0.5, -1.0, -1.0, 0.5, 2.0, 2.0]);
}

fn class_logit_case(x: Vec<f64>) {
    // 3 classes, one covariate, one parent with 2 classes: 2 sets
    let k_n = 3;
    let per = 1 + 1 + 1;
    let nl = k_n * per;
    let n = x.len();
    let mut phi_index = vec![NONE; 2 * nl];
    let mut next = 0u32;
    for set in 0..2 {
        for k in 0..k_n - 1 {
            // shared alpha and beta across sets, gamma only for parent class 0
            phi_index[set * nl + k * per] = k as u32;
            phi_index[set * nl + k * per + 1] = 2 + k as u32;
            if set == 0 {
                phi_index[set * nl + k * per + 2] = 4 + k as u32;
            }
            next = 6;
        }
    }
    let term = Term {
        kind: TermKind::ClassLogit {
            cv: 1,
            classes: k_n,
            covs: vec![0],
            n_parents: 1,
        },
        n_states: 2 * k_n,
        state_of_combo: (0..6).collect(),
        n_sets: 2,
        set_of_state: vec![0, 0, 0, 1, 1, 1],
        n_local: nl,
        phi_index,
        cluster_level: false,
        uses_nodes: false,
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
    };
    let phi = vec![0.3, -0.4, 0.8, -0.2, 1.1, 0.6];
    let data = EngineData {
        columns: vec![x],
        weights: vec![1.0; n],
        cluster_starts: (0..=n).collect(),
        engine_row: (0..n).collect(),
        row_offset: 0,
        clustered: false,
    };
    check_scores(&plan, &phi, &data);
    check_gradient(&plan, &phi, &data);
    // all rows in one call against one row per call (no reuse possible)
    let prep = eval::prepare(&plan, &phi).expect("valid");
    let term = &plan.terms[0];
    let ns = term.n_states;
    let mut sc = Scratch::default();
    let mut all = vec![0.0; n * ns];
    eval::term_values(
        term,
        &prep.terms[0],
        &data,
        0,
        n,
        slots(n),
        &mut sc,
        &mut all,
    );
    for r in 0..n {
        let mut one = vec![0.0; ns];
        eval::term_values(
            term,
            &prep.terms[0],
            &data,
            r,
            r + 1,
            slots(1),
            &mut sc,
            &mut one,
        );
        for s in 0..ns {
            assert_eq!(all[s * n + r], one[s], "row {r}, state {s}");
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
        &data,
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
            &data,
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
    for (a, b) in acc.mats.iter().zip(&by_row.mats) {
        assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

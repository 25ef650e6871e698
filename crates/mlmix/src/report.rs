//! The human-readable report, laid out like Mplus output so its readers find
//! their way: summary, random starts, fit information, class counts,
//! classification quality, model results, probability scale, transition
//! probabilities, TECH1 and SVALUES.

use std::fmt::Write;

use mlmix_spec::{Model, ParamKind, ParamValue, Role, Scale};

use crate::lta::TransitionDecomposition;
use crate::results::{
    DerivedValue, Fit, IntegrationSummary, IrtItem, ParameterEstimate, TransitionTable,
};

fn line(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "    {label:<44}{value:>14}");
}

fn heading(out: &mut String, h: &str) {
    let _ = writeln!(out, "\n\n{h}\n");
}

/// The report of a fit of `model`.
pub fn text(fit: &Fit, model: &Model) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "mlmix {}", env!("CARGO_PKG_VERSION"));
    if fit.interrupted {
        let _ = writeln!(
            o,
            "\n*** INTERRUPTED: the run was stopped before it finished; these are the best\n*** estimates found so far, not a maximum of the likelihood, and have no\n*** standard errors."
        );
    }
    let _ = writeln!(o, "\nINPUT FILE  {}", fit.input_file);
    if !fit.title.is_empty() {
        let _ = writeln!(o, "TITLE       {}", fit.title);
    }
    if !fit.input_warnings.is_empty() {
        heading(&mut o, "INPUT WARNINGS");
        for w in &fit.input_warnings {
            let _ = writeln!(o, "{w}");
        }
    }

    heading(&mut o, "SUMMARY OF ANALYSIS");
    let n_dep = model.dependents().count();
    let n_cov = model.covariates().count();
    line(&mut o, "Number of observations", fit.observations);
    if fit.rows_read != fit.observations {
        line(&mut o, "Rows read from the data file", fit.rows_read);
    }
    line(&mut o, "Number of dependent variables", n_dep);
    line(&mut o, "Number of independent variables", n_cov);
    let factors = crate::factors::factors(model);
    if !factors.is_empty() {
        line(
            &mut o,
            "Number of continuous latent variables",
            factors.len(),
        );
    }
    line(
        &mut o,
        "Number of categorical latent variables",
        model.class_vars.len(),
    );
    let _ = writeln!(o);
    // which dependents: continuous, ordered categorical or nominal
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Continuous,
        Ordered,
        Nominal,
    }
    let list = |role_dep: bool, kind: Option<Kind>| -> Vec<String> {
        model
            .variables
            .iter()
            .filter(|v| match (&v.role, role_dep) {
                (Role::Dependent(d), true) => {
                    let k = match d.scale {
                        Scale::Continuous => Kind::Continuous,
                        _ if d.nominal => Kind::Nominal,
                        _ => Kind::Ordered,
                    };
                    kind.is_none_or(|want| want == k)
                }
                (Role::Covariate, false) => true,
                _ => false,
            })
            .map(|v| v.name.to_ascii_uppercase())
            .collect()
    };
    let wrap = |o: &mut String, title: &str, names: Vec<String>| {
        if names.is_empty() {
            return;
        }
        let _ = writeln!(o, "{title}");
        for chunk in names.chunks(8) {
            let _ = writeln!(
                o,
                "   {}",
                chunk
                    .iter()
                    .map(|s| format!("{s:<9}"))
                    .collect::<String>()
                    .trim_end()
            );
        }
    };
    wrap(
        &mut o,
        "Observed dependent variables (continuous)",
        list(true, Some(Kind::Continuous)),
    );
    wrap(
        &mut o,
        "Observed dependent variables (binary and ordered categorical)",
        list(true, Some(Kind::Ordered)),
    );
    wrap(
        &mut o,
        "Observed dependent variables (unordered categorical, nominal)",
        list(true, Some(Kind::Nominal)),
    );
    wrap(&mut o, "Observed independent variables", list(false, None));
    wrap(
        &mut o,
        "Continuous latent variables",
        factors.iter().map(|&a| model.random_name(a)).collect(),
    );
    let _ = writeln!(o, "Categorical latent variables");
    for cv in &model.class_vars {
        let _ = writeln!(
            o,
            "   {} ({} classes)",
            cv.name.to_ascii_uppercase(),
            cv.classes
        );
    }
    let _ = writeln!(o);
    line(&mut o, "Estimator", &fit.estimator);
    if model
        .variables
        .iter()
        .any(|v| matches!(&v.role, Role::Dependent(d) if matches!(d.scale, Scale::Categorical{..})))
    {
        line(&mut o, "Link", &fit.link);
    }
    if let Some(s) = fit.starts.optseed {
        line(&mut o, "Optimization seed (OPTSEED), one start", s);
    } else if fit.starts.initial == 0 {
        line(&mut o, "Random starts", "none (STARTS = 0)");
    } else {
        line(&mut o, "Random starts, initial stage", fit.starts.initial);
        line(&mut o, "Random starts, final stage", fit.starts.final_stage);
        line(&mut o, "Initial stage iterations", fit.starts.stiterations);
        line(&mut o, "Random seed", fit.starts.seed);
    }
    if let Some(n) = fit.starts.coarse_initial_nodes {
        line(
            &mut o,
            "Initial stage integration points (coarse)",
            format!("{n}, adapted"),
        );
    }
    if let Some(n) = &fit.starts.nested {
        line(
            &mut o,
            "Starting values",
            format!(
                "from the {}{}, logL {:.3}{}",
                n.model,
                n.integration_points.map_or(String::new(), |p| format!(
                    " (integration points {p}, adapted)"
                )),
                n.loglikelihood,
                match (n.converged, n.iteration_limit) {
                    (true, _) => String::new(),
                    (false, Some(l)) => format!(
                        " (stopped by its limit of {l} quasi-Newton iterations per start, enough for starting values)"
                    ),
                    (false, None) => " (not converged)".to_string(),
                }
            ),
        );
    }
    line(&mut o, "Maximum EM iterations", model.analysis.miterations);
    line(
        &mut o,
        "Convergence criterion",
        format!("{:.3e}", model.analysis.convergence),
    );
    line(&mut o, "Backend", &fit.backend);
    let _ = writeln!(o, "\nInput data file   {}", fit.data_file);
    line(&mut o, "Distinct rows evaluated", fit.distinct_rows);
    if let Some(t) = &fit.two_level {
        let _ = writeln!(o);
        line(
            &mut o,
            "Cluster variable",
            t.cluster_variable.to_ascii_uppercase(),
        );
        line(&mut o, "Number of clusters", t.clusters);
        integration_lines(&mut o, &t.integration_summary(), "Clusters");
        if t.within_dimensions > 0 {
            line(
                &mut o,
                "Within-level dimensions (per row)",
                t.within_dimensions,
            );
            line(&mut o, "Within-level points per row", t.within_points);
        }
    }
    if let Some(t) = &fit.integration {
        let _ = writeln!(o);
        integration_lines(&mut o, t, "Distinct rows");
    }

    // univariate proportions
    let probs_cat: Vec<usize> = model
        .dependents()
        .filter(|&v| model.n_categories(v).is_some())
        .collect();
    if !probs_cat.is_empty() {
        heading(
            &mut o,
            "CATEGORIES OF CATEGORICAL VARIABLES (category: value in the data)",
        );
        for v in probs_cat {
            if let Some(Role::Dependent(d)) = model.variables.get(v).map(|x| &x.role)
                && let Scale::Categorical { categories } = &d.scale
            {
                let cats: Vec<String> = categories
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{}: {}", i + 1, c))
                    .collect();
                let _ = writeln!(
                    o,
                    "    {:<10} {}",
                    model.variables[v].name.to_ascii_uppercase(),
                    cats.join("   ")
                );
            }
        }
    }

    // random starts
    if fit.starts.final_logliks.len() > 1 || fit.starts.initial > 0 {
        heading(
            &mut o,
            "RANDOM STARTS RESULTS RANKED FROM THE BEST TO THE WORST LOGLIKELIHOOD VALUES",
        );
        let _ = writeln!(
            o,
            "Final stage loglikelihood values at local maxima, seeds, and initial stage start numbers:\n"
        );
        for s in &fit.starts.final_logliks {
            let _ = writeln!(
                o,
                "    {:>16.3}   {:>8}   {:>6}{}",
                s.loglikelihood,
                s.seed,
                s.start,
                if s.converged {
                    ""
                } else {
                    "   (not converged)"
                }
            );
        }
        let _ = writeln!(o);
        if fit.starts.final_logliks.len() > 1 {
            if fit.starts.best_replicated {
                let _ = writeln!(
                    o,
                    "THE BEST LOGLIKELIHOOD VALUE HAS BEEN REPLICATED ({} of {} final-stage starts).",
                    fit.starts.best_count,
                    fit.starts.final_logliks.len()
                );
            } else {
                let _ = writeln!(
                    o,
                    "WARNING: THE BEST LOGLIKELIHOOD VALUE WAS NOT REPLICATED. THE SOLUTION MAY NOT BE"
                );
                let _ = writeln!(
                    o,
                    "TRUSTWORTHY DUE TO LOCAL MAXIMA. INCREASE THE NUMBER OF RANDOM STARTS."
                );
            }
        }
    }

    heading(&mut o, "ESTIMATION");
    if fit.converged {
        let _ = writeln!(o, "THE MODEL ESTIMATION TERMINATED NORMALLY");
    } else {
        let _ = writeln!(
            o,
            "THE MODEL ESTIMATION DID NOT CONVERGE ({:?}).",
            fit.termination
        );
    }
    let _ = writeln!(
        o,
        "Iterations: {} EM, {} quasi-Newton.",
        fit.iterations.em, fit.iterations.quasi_newton
    );
    let _ = writeln!(o, "Standard errors: {}.", fit.standard_errors);
    if let Some(c) = fit.condition_number {
        let _ = writeln!(o, "Condition number of the information matrix: {c:.3e}");
    }
    for w in &fit.warnings {
        let _ = writeln!(o, "\nWARNING: {w}");
    }

    heading(&mut o, "MODEL FIT INFORMATION");
    line(&mut o, "Number of Free Parameters", fit.free_parameters);
    let _ = writeln!(o, "\nLoglikelihood\n");
    line(&mut o, "    H0 Value", format!("{:.3}", fit.loglikelihood));
    if let Some(s) = fit.scaling_correction {
        line(
            &mut o,
            "    H0 Scaling Correction Factor for MLR",
            format!("{s:.4}"),
        );
    }
    let _ = writeln!(o, "\nInformation Criteria\n");
    line(&mut o, "    Akaike (AIC)", format!("{:.3}", fit.aic));
    line(&mut o, "    Bayesian (BIC)", format!("{:.3}", fit.bic));
    line(
        &mut o,
        "    Sample-Size Adjusted BIC",
        format!("{:.3}", fit.abic),
    );
    let _ = writeln!(o, "          (n* = (n + 2) / 24)");

    if !model.class_vars.is_empty() {
        heading(
            &mut o,
            "FINAL CLASS COUNTS AND PROPORTIONS FOR THE LATENT CLASSES\nBASED ON THE ESTIMATED MODEL (SUMS OF POSTERIOR PROBABILITIES)",
        );
        class_table(&mut o, fit, false);
        heading(
            &mut o,
            "CLASSIFICATION OF INDIVIDUALS BASED ON THEIR MOST LIKELY LATENT CLASS MEMBERSHIP",
        );
        class_table(&mut o, fit, true);
    }
    if !fit.class_patterns.is_empty() {
        heading(&mut o, "LATENT CLASS PATTERNS (CLASSES IN CLASSES ORDER)");
        let _ = writeln!(o, "    Pattern          Count   Proportion   Most likely");
        for p in &fit.class_patterns {
            let cls: Vec<String> = p.classes.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                o,
                "    {:<10} {:>11.5} {:>12.5} {:>13.0}",
                cls.join(" "),
                p.count,
                p.proportion,
                p.most_likely_count
            );
        }
    }
    if let Some(e) = fit.entropy {
        heading(&mut o, "CLASSIFICATION QUALITY");
        line(&mut o, "Entropy", format!("{e:.3}"));
    }

    heading(&mut o, "MODEL RESULTS");
    value_header(&mut o);
    model_results(&mut o, fit, model);
    if let Some(t) = fit.two_level.as_ref().filter(|t| !t.icc.is_empty()) {
        heading(
            &mut o,
            "INTRACLASS CORRELATION OF THE CLASS LOGITS (Var / (Var + pi^2/3))",
        );
        for c in &t.icc {
            let _ = writeln!(
                o,
                "    {:<20}{:>10.3}{:>10.3}",
                format!("{}#{}", c.variable, c.class),
                c.variance,
                c.icc
            );
        }
    }

    if !fit.irt.is_empty() {
        irt_section(&mut o, fit);
    }

    if !fit.profiles.is_empty() {
        profiles_section(&mut o, fit);
    }

    if !fit.probabilities.is_empty() {
        heading(&mut o, "RESULTS IN PROBABILITY SCALE");
        let _ = writeln!(
            o,
            "{:<20}{:>10}{:>10}{:>11}",
            "", "Estimate", "S.E.", "Est./S.E."
        );
        let mut last_class = String::new();
        let mut last_var = String::new();
        for p in &fit.probabilities {
            if p.class != last_class {
                let _ = writeln!(
                    o,
                    "\nLatent Class {}\n",
                    if p.class.is_empty() {
                        "(all)"
                    } else {
                        &p.class
                    }
                );
                last_class = p.class.clone();
                last_var.clear();
            }
            if p.variable != last_var {
                let _ = writeln!(o, " {}", p.variable);
                last_var = p.variable.clone();
            }
            let (se, z) = match p.se {
                Some(s) if s > 0.0 => (format!("{s:.3}"), format!("{:.3}", p.probability / s)),
                Some(s) => (format!("{s:.3}"), "999.000".to_string()),
                None => ("n/a".to_string(), "n/a".to_string()),
            };
            let _ = writeln!(
                o,
                "    Category {:<8}{:>10.3}{:>10}{:>11}",
                p.category, p.probability, se, z
            );
        }
    }

    if !fit.transitions.is_empty() {
        heading(
            &mut o,
            "LATENT TRANSITION PROBABILITIES BASED ON THE ESTIMATED MODEL",
        );
        // a two-level LTA's table is at the means of its random logits
        let at_means = fit
            .latent_transition
            .as_ref()
            .is_some_and(|l| !l.transitions.is_empty());
        for t in &fit.transitions {
            let note = if t.at_zero_covariates {
                ", at covariate values 0"
            } else if at_means {
                ", at the means of the random class logits"
            } else {
                ""
            };
            transition_table(&mut o, t, note);
        }
    }
    if let Some(l) = &fit.latent_transition {
        latent_transition_section(&mut o, l);
    }

    if model.output.tech1 {
        heading(
            &mut o,
            "TECHNICAL 1 OUTPUT: FREE PARAMETERS AND STARTING VALUES",
        );
        let _ = writeln!(
            o,
            "  {:>4}  {:<52}{:>12}{:>12}",
            "No.", "Parameter", "Start", "Estimate"
        );
        for f in &fit.free {
            let _ = writeln!(
                o,
                "  {:>4}  {:<52}{:>12.4}{:>12.4}",
                f.number, f.name, f.start, f.estimate
            );
        }
    }
    if model.output.svalues {
        heading(
            &mut o,
            "MODEL COMMAND WITH FINAL ESTIMATES USED AS STARTING VALUES",
        );
        o.push_str(&svalues(fit, model));
    }
    if let Some(s) = &model.savedata
        && s.writes_file()
    {
        heading(&mut o, "SAVEDATA INFORMATION");
        let _ = writeln!(o, "  Save file    {}", s.file.display());
        let _ = writeln!(o, "  Missing flag {}", s.missflag);
        let _ = writeln!(o, "  Order of variables\n");
        for c in crate::savedata::columns(model) {
            let _ = writeln!(o, "    {c}");
        }
    }
    o
}

/// The integration lines of the summary (`unit`: what has its own
/// adapted grid, "Clusters" or "Distinct rows").
fn integration_lines(o: &mut String, t: &IntegrationSummary, unit: &str) {
    line(o, "Integration", &t.integration);
    if t.dimensions > 0 {
        line(o, "Dimensions of integration", t.dimensions);
        line(o, "Integration points (total)", t.points);
    }
    if let Some(a) = t.adapted {
        line(o, &format!("{unit} with an adapted grid"), a);
    }
}

/// IRT PARAMETERIZATION: the discriminations and difficulties of binary
/// items loading on one factor, class by class, as Mplus prints them.
fn irt_section(o: &mut String, fit: &Fit) {
    let (metric, scale) = if fit.link == "PROBIT" {
        ("PROBIT", "PROBIT")
    } else {
        ("LOGISTIC", "LOGIT")
    };
    heading(
        o,
        &format!(
            "IRT PARAMETERIZATION IN TWO-PARAMETER {metric} METRIC\nWHERE THE {scale} IS DISCRIMINATION*(THETA - DIFFICULTY)\n(THETA IS THE FACTOR STANDARDIZED IN EACH CLASS: (F - MEAN) / SQRT(VARIANCE))"
        ),
    );
    // (a two-level model's items are those of the GoM-FMA of Section 9)
    if fit.two_level.is_some() {
        let _ = writeln!(
            o,
            "THE 3PL OF THE GoM-FMA (PAPER'S SECTION 9, EQ 48-50): PER ITEM SLOPE,\n\
             G = EXPIT(GAMMA), A = LAMBDA*SQRT(PSI), B = (THRESHOLD - MEAN) / A\n"
        );
    }
    value_header(o);
    let mut classes: Vec<&Option<String>> = Vec::new();
    for i in &fit.irt {
        if !classes.contains(&&i.class) {
            classes.push(&i.class);
        }
    }
    for class in classes {
        if let Some(c) = class {
            let _ = writeln!(o, "\nLatent Class {c}");
        }
        let items: Vec<&IrtItem> = fit.irt.iter().filter(|i| &i.class == class).collect();
        let _ = writeln!(o, "\n Item Discriminations");
        let mut last = "";
        for i in &items {
            if i.factor != last {
                let _ = writeln!(o, "\n {} BY", i.factor);
                last = &i.factor;
            }
            derived_row(o, &i.item, &i.discrimination);
        }
        let _ = writeln!(o, "\n Item Difficulties");
        for i in &items {
            derived_row(o, &format!("{}$1", i.item), &i.difficulty);
        }
        // 3PL items: P(u = 1) = g + (1 - g) F(a (theta - b))
        if items.iter().any(|i| i.guessing.is_some()) {
            let _ = writeln!(o, "\n Item Guessing (probability)");
            for i in &items {
                if let Some(g) = &i.guessing {
                    derived_row(o, &i.item, g);
                }
            }
        }
    }
}

/// ITEM PROFILES: a grade of membership model's P(u = 1 | class, item),
/// one column per class, one row per item dummy.
fn profiles_section(o: &mut String, fit: &Fit) {
    let mut vars: Vec<&str> = Vec::new();
    for p in &fit.profiles {
        if !vars.contains(&p.variable.as_str()) {
            vars.push(&p.variable);
        }
    }
    for v in vars {
        heading(
            o,
            &format!("ITEM PROFILES (GRADE OF MEMBERSHIP): P({v} = 1 | CLASS, ITEM)"),
        );
        let rows: Vec<_> = fit.profiles.iter().filter(|p| p.variable == v).collect();
        let mut classes: Vec<&str> = Vec::new();
        let mut items: Vec<&str> = Vec::new();
        for p in &rows {
            if !classes.contains(&p.class.as_str()) {
                classes.push(&p.class);
            }
            if !items.contains(&p.item.as_str()) {
                items.push(&p.item);
            }
        }
        let _ = write!(o, "{:<20}", "");
        for c in &classes {
            let _ = write!(o, "{c:>10}");
        }
        let _ = writeln!(o);
        for item in items {
            let _ = write!(o, "    {item:<16}");
            for c in &classes {
                match rows.iter().find(|p| p.item == item && p.class == *c) {
                    Some(p) => {
                        let _ = write!(o, "{:>10.3}", p.probability);
                    }
                    None => {
                        let _ = write!(o, "{:>10}", "");
                    }
                }
            }
            let _ = writeln!(o);
        }
    }
}

fn transition_table(o: &mut String, t: &TransitionTable, note: &str) {
    let _ = writeln!(
        o,
        "  {} Classes (Rows) by {} Classes (Columns){note}\n",
        t.given.join("."),
        t.variable,
    );
    let k = t.rows.first().map_or(0, |r| r.probabilities.len());
    let _ = write!(o, "{:>12}", "");
    for c in 1..=k {
        let _ = write!(o, "{c:>10}");
    }
    let _ = writeln!(o);
    for r in &t.rows {
        let from: Vec<String> = r.from.iter().map(ToString::to_string).collect();
        let _ = write!(o, "{:>12}", from.join(" "));
        for p in &r.probabilities {
            let _ = write!(o, "{p:>10.3}");
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o);
}

/// Section 4's derived quantities of a latent transition model
/// ([`crate::lta`]).
fn latent_transition_section(o: &mut String, l: &TransitionDecomposition) {
    heading(
        o,
        "R-SQUARE OF THE CLASS VARIABLES (LATENT RESPONSE SCALE, EQ 14)\n\
         C* = LOGIT INTERCEPT + EFFECTS OF EARLIER CLASSES + LOGISTIC ERROR (VARIANCE PI^2/3);\n\
         SHARES OF VAR(C*) EXPLAINED BY: THE RANDOM LOGITS OF EARLIER CLASS VARIABLES,\n\
         THE EARLIER CLASSES BEYOND THEM, AND THE OWN RANDOM LOGIT BEYOND THEM",
    );
    value_header(o);
    for v in &l.variables {
        let _ = writeln!(o, "\n {}", v.variable);
        derived_row(o, &format!("P({}=1)", v.variable), &v.probability);
        // a class variable with a constant logit explains nothing
        if v.parents_alone.is_none() && v.r_square.estimate == 0.0 {
            continue;
        }
        derived_row(o, "R-square", &v.r_square);
        if let Some(e) = &v.earlier_random_logits {
            derived_row(o, "Earlier logits", e);
        }
        if let Some(e) = &v.earlier_classes {
            derived_row(o, "Earlier classes", e);
        }
        derived_row(o, "Own logit", &v.own_random_logit);
        if let Some(p) = &v.parents_alone {
            derived_row(o, "Parents alone", p);
        }
    }
    if !l.effects.is_empty() {
        heading(
            o,
            "EFFECTS OF THE RANDOM CLASS LOGITS ON LATER CLASS LOGITS\n\
             (AVERAGED OVER THE CLUSTERS; INDIRECT THROUGH THE RANDOM LOGITS' REGRESSIONS\n\
             AND THROUGH THE EARLIER CLASSES, AND TOTAL)",
        );
        value_header(o);
        for e in &l.effects {
            let _ = writeln!(o, "\n {} on {}", e.from, e.to);
            derived_row(o, "Via logits", &e.through_random_logits);
            derived_row(o, "Via classes", &e.through_classes);
            derived_row(o, "Total", &e.total);
        }
    }
    if !l.transitions.is_empty() {
        heading(
            o,
            "LATENT TRANSITION PROBABILITIES AVERAGED OVER THE RANDOM CLASS LOGITS",
        );
        for t in &l.transitions {
            transition_table(o, t, "");
        }
    }
}

/// The column heads of estimates with standard errors.
fn value_header(o: &mut String) {
    let _ = writeln!(o, "{:>58}", "Two-Tailed");
    let _ = writeln!(
        o,
        "{:<20}{:>10}{:>10}{:>11}{:>11}",
        "", "Estimate", "S.E.", "Est./S.E.", "P-Value"
    );
}

fn derived_row(o: &mut String, name: &str, v: &DerivedValue) {
    let fixed = v.se == Some(0.0);
    fmt_values(o, name, v.estimate, v.se, v.est_se, v.p_value, fixed);
}

fn class_table(o: &mut String, fit: &Fit, most_likely: bool) {
    let multi = fit
        .class_proportions
        .iter()
        .map(|c| &c.variable)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        > 1;
    let _ = writeln!(o, "    Latent Classes\n");
    let mut last = String::new();
    for c in &fit.class_proportions {
        if multi && c.variable != last {
            let _ = writeln!(o, "  {}", c.variable);
            last = c.variable.clone();
        }
        let (n, p) = if most_likely {
            (c.most_likely_count, c.most_likely_proportion)
        } else {
            (c.count, c.proportion)
        };
        if most_likely {
            let _ = writeln!(o, "    {:>8} {:>14.0} {:>14.5}", c.class, n, p);
        } else {
            let _ = writeln!(o, "    {:>8} {:>14.5} {:>14.5}", c.class, n, p);
        }
    }
}

fn fmt_row(o: &mut String, name: &str, p: &ParameterEstimate) {
    fmt_values(
        o,
        name,
        p.estimate,
        p.se,
        p.est_se,
        p.p_value,
        p.fixed || p.at_bound,
    );
}

fn fmt_values(
    o: &mut String,
    name: &str,
    estimate: f64,
    se: Option<f64>,
    est_se: Option<f64>,
    p_value: Option<f64>,
    fixed: bool,
) {
    let est = format!("{estimate:.3}");
    let (se, z, pv) = if fixed {
        (
            "0.000".to_string(),
            "999.000".to_string(),
            "999.000".to_string(),
        )
    } else {
        match (se, est_se, p_value) {
            (Some(s), Some(z), Some(pv)) => {
                (format!("{s:.3}"), format!("{z:.3}"), format!("{pv:.3}"))
            }
            (Some(s), _, _) => (format!("{s:.3}"), "n/a".into(), "n/a".into()),
            _ => ("n/a".into(), "n/a".into(), "n/a".into()),
        }
    };
    let _ = writeln!(
        o,
        "    {:<16}{:>10}{:>10}{:>11}{:>11}",
        name, est, se, z, pv
    );
}

/// The order of a report's sections: BY, ON, WITH, means, thresholds,
/// variances, then the between level in the same order (also the Monte
/// Carlo summary's).
pub(crate) fn section_rank(s: &str) -> usize {
    // the between level after the within level, in the same order
    if let Some(rest) = s.strip_prefix("Between Level: ") {
        return 10 + section_rank(rest);
    }
    if s == "Between-Level Variances" {
        return 10 + 5;
    }
    // Mplus's order: BY, ON, WITH, means, thresholds, variances
    if s.ends_with(" BY") {
        0
    } else if s.ends_with(" ON") {
        1
    } else if s.ends_with(" WITH") {
        2
    } else {
        match s {
            "Means" | "Intercepts" => 3,
            "Thresholds" => 4,
            "Guessing (logit)" => 4,
            "Variances" => 5,
            "Residual Variances" => 6,
            _ => 7,
        }
    }
}

fn print_sections(o: &mut String, rows: &[&ParameterEstimate]) {
    let mut sections: Vec<&str> = Vec::new();
    // a parameter with no section is not reported (see
    // `Model::is_factor_indicator_variance`)
    for r in rows.iter().filter(|r| !r.section.is_empty()) {
        if !sections.contains(&r.section.as_str()) {
            sections.push(&r.section);
        }
    }
    sections.sort_by_key(|s| section_rank(s));
    for s in sections {
        let _ = writeln!(o, "\n {s}");
        for r in rows.iter().filter(|r| r.section == s) {
            fmt_row(o, &r.name, r);
        }
    }
}

fn model_results(o: &mut String, fit: &Fit, model: &Model) {
    // measurement parameters, class by class of each class variable
    let mut classes: Vec<String> = Vec::new();
    for p in &fit.parameters {
        if let Some(c) = &p.class
            && !classes.contains(c)
        {
            classes.push(c.clone());
        }
    }
    let unclassed: Vec<&ParameterEstimate> = fit
        .parameters
        .iter()
        .zip(&model.parameters)
        .filter(|(p, mp)| {
            p.class.is_none()
                && model.param_class_var(&mp.kind).is_none()
                && !is_class_model(&mp.kind)
        })
        .map(|(p, _)| p)
        .collect();
    if !unclassed.is_empty() {
        print_sections(o, &unclassed);
    }
    for c in classes {
        let _ = writeln!(o, "\nLatent Class {c}");
        let rows: Vec<&ParameterEstimate> = fit
            .parameters
            .iter()
            .filter(|p| p.class.as_deref() == Some(c.as_str()))
            .collect();
        print_sections(o, &rows);
    }
    let cm: Vec<&ParameterEstimate> = fit
        .parameters
        .iter()
        .zip(&model.parameters)
        .filter(|(_, mp)| is_class_model(&mp.kind))
        .map(|(p, _)| p)
        .collect();
    if !cm.is_empty() {
        let _ = writeln!(o, "\nCategorical Latent Variables");
        print_sections(o, &cm);
    }
}

fn is_class_model(k: &ParamKind) -> bool {
    matches!(
        k,
        ParamKind::ClassIntercept { .. }
            | ParamKind::ClassSlope { .. }
            | ParamKind::ClassOnClass { .. }
    )
}

/// MODEL statements with the estimates as starting values (`*v`), fixed
/// parameters with `@v` and labels kept, so pasting them back gives the same
/// model.
pub fn svalues(fit: &Fit, model: &Model) -> String {
    let mut o = String::new();
    let est: Vec<f64> = fit.parameters.iter().map(|p| p.estimate).collect();
    // a parameter is class-invariant when its free parameter (or fixed value)
    // is shared by every class of its class variable without a label
    let shared = |i: usize| -> bool {
        let p = &model.parameters[i];
        if p.label.is_some() || p.class.is_none() {
            return false;
        }
        let cv = model.param_class_var(&p.kind);
        let k = cv.map_or(1, |c| model.class_vars[c].classes);
        match p.value {
            ParamValue::Free(f) => {
                model.free[f].members.len() == k
                    && model.free[f]
                        .members
                        .iter()
                        .all(|&m| model.parameters[m].kind == p.kind)
            }
            ParamValue::Fixed(v) => model
                .parameters
                .iter()
                .filter(|q| q.kind == p.kind)
                .all(|q| q.value == ParamValue::Fixed(v)),
        }
    };
    let stmt = |i: usize| -> String {
        let p = &model.parameters[i];
        let name = model.param_name(&p.kind).to_ascii_lowercase();
        let body = match p.kind {
            ParamKind::Threshold { .. }
            | ParamKind::Mean { .. }
            | ParamKind::FactorMean { .. }
            | ParamKind::NominalIntercept { .. }
            | ParamKind::ClassIntercept { .. } => {
                format!("[ {name}{} ]", value(p.value, est[i]))
            }
            // no statement names a guessing parameter yet: a comment
            ParamKind::Guessing { .. } => {
                format!("! guessing of {name} (logit){}", value(p.value, est[i]))
            }
            ParamKind::Loading { .. } | ParamKind::FactorOn { .. } => {
                format!("{name}{}", value(p.value, est[i]))
            }
            ParamKind::Slope { .. }
            | ParamKind::NominalSlope { .. }
            | ParamKind::Covariance { .. }
            | ParamKind::ClassSlope { .. }
            | ParamKind::ClassOnClass { .. } => format!("{name}{}", value(p.value, est[i])),
            ParamKind::Variance { .. }
            | ParamKind::RandomVariance { .. }
            | ParamKind::RandomCovariance { .. }
            | ParamKind::RandomSlopeOn { .. }
            | ParamKind::RandomRegression { .. } => format!("{name}{}", value(p.value, est[i])),
        };
        // equalities the input made without a label (a parameter freed in
        // some classes and shared by the others) get one, so that reading
        // the statements back gives the same model
        let label = p.label.clone().or_else(|| match p.value {
            ParamValue::Free(f) if model.free[f].members.len() > 1 && !shared(i) => {
                Some(format!("sv{}", f + 1))
            }
            _ => None,
        });
        match label {
            Some(l) => format!("{body} ({l});"),
            None => format!("{body};"),
        }
    };
    let _ = writeln!(o, "     %OVERALL%");
    let mut done: Vec<ParamKind> = Vec::new();
    for (i, p) in model.parameters.iter().enumerate() {
        if model.is_factor_indicator_variance(&p.kind) {
            continue;
        }
        if p.class.is_none() || (shared(i) && !done.contains(&p.kind)) {
            if p.class.is_some() {
                done.push(p.kind);
            }
            let _ = writeln!(o, "     {}", stmt(i));
        }
    }
    for (cv, c) in model.class_vars.iter().enumerate() {
        if model.class_vars.len() > 1 {
            let _ = writeln!(o, "\n   MODEL {}:", c.name);
        }
        for k in 0..c.classes {
            let _ = writeln!(o, "     %{}#{}%", c.name, k + 1);
            for (i, p) in model.parameters.iter().enumerate() {
                if p.class == Some(k)
                    && model.param_class_var(&p.kind) == Some(cv)
                    && !shared(i)
                    && !model.is_factor_indicator_variance(&p.kind)
                {
                    let _ = writeln!(o, "     {}", stmt(i));
                }
            }
        }
    }
    o
}

fn value(v: ParamValue, est: f64) -> String {
    match v {
        ParamValue::Fixed(x) => format!("@{}", trim(x)),
        ParamValue::Free(_) => format!("*{}", trim(est)),
    }
}

fn trim(x: f64) -> String {
    let s = format!("{x:.5}");
    let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    if s == "-0" { "0".into() } else { s }
}

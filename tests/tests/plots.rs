//! PLOT: TYPE = PLOT3; SERIES = ...: the class profiles drawn as SVG, their
//! values the fit's, and bad PLOT requests.

use mlmix::spec;
use mlmix_tests::{Scratch, data, fit_text};

fn lca(plot: &str) -> String {
    format!(
        "DATA: FILE = carcinoma.csv;\nVARIABLE: USEVARIABLES = A-G; CATEGORICAL = A-G; CLASSES = lc(2);\n\
         ANALYSIS: TYPE = MIXTURE; STARTS = 10 2;\n{plot}"
    )
}

fn scratch(tag: &str) -> Scratch {
    let s = Scratch::new(tag);
    s.write(
        "carcinoma.csv",
        &std::fs::read_to_string(data("carcinoma.csv")).unwrap(),
    );
    s
}

#[test]
fn plot3_profiles_are_the_fitted_probabilities() {
    let s = scratch("plot3");
    let (loaded, fit) = fit_text(
        &s,
        "model.inp",
        &lca("PLOT: TYPE = PLOT3; SERIES = A-G (*);\n"),
    )
    .unwrap();
    let spec = loaded.model.output.plot.as_ref().unwrap();
    assert_eq!(spec.series.len(), 7);
    assert_eq!(spec.series[6], ("G".to_string(), 7.0));
    assert_eq!(spec.file, s.path().join("model_profiles.svg"));
    let lines = mlmix::plot::profiles(&loaded.model, &fit, spec).unwrap();
    assert_eq!(lines.len(), 2);
    for (k, line) in lines.iter().enumerate() {
        assert_eq!(line.points.len(), 7);
        for (j, (x, y)) in line.points.iter().enumerate() {
            assert_eq!(*x, (j + 1) as f64);
            let name = ["A", "B", "C", "D", "E", "F", "G"][j];
            let p = fit
                .probabilities
                .iter()
                .find(|p| {
                    p.variable == name && p.class == format!("LC#{}", k + 1) && p.category == 2
                })
                .unwrap();
            assert_eq!(*y, p.probability);
        }
    }
    let svg = mlmix::plot::profiles_svg(&loaded.model, &fit, spec).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..100]);
    assert!(svg.contains("class 1 (") && svg.contains("class 2 ("));
}

#[test]
fn plot3_positions_and_bad_requests() {
    let s = scratch("plot3-bad");
    // positions given in parentheses; names alone continue the count
    let p = s.write(
        "pos.inp",
        &lca("PLOT: TYPE = PLOT3; SERIES = A (0) B-C (2) D;\n"),
    );
    let loaded = spec::load(&p).unwrap();
    let series = &loaded.model.output.plot.as_ref().unwrap().series;
    let xs: Vec<f64> = series.iter().map(|s| s.1).collect();
    assert_eq!(xs, [0.0, 2.0, 3.0, 4.0]);
    let cases = [
        ("PLOT: TYPE = PLOT3;\n", 4, "PLOT TYPE = PLOT3 needs SERIES"),
        ("PLOT: TYPE = PLOT3; SERIES = A-Z (*);\n", 4, "Z"),
        (
            "PLOT: TYPE = PLOT9; SERIES = A-G (*);\n",
            4,
            "unknown PLOT TYPE 'PLOT9'",
        ),
        (
            "PLOT: TYPE = PLOT3; SERIES = A-G (x);\n",
            4,
            "SERIES gives each variable's position",
        ),
    ];
    for (i, (plot, line, want)) in cases.iter().enumerate() {
        let p = s.write(&format!("bad{i}.inp"), &lca(plot));
        let e = spec::load(&p)
            .err()
            .unwrap_or_else(|| panic!("case {i} loaded"));
        let msg = e.to_string();
        assert!(msg.contains(want), "case {i}: {msg}");
        assert!(
            msg.contains(&format!("bad{i}.inp:{line}:")),
            "case {i}: {msg}"
        );
    }
}

#[test]
fn mlmix_fit_draws_the_profiles_beside_the_input() {
    let s = scratch("plot3-cli");
    s.write("model.inp", &lca("PLOT: TYPE = PLOT3; SERIES = A-G (*);\n"));
    let out = std::process::Command::new(crate::bad_input::mlmix_exe())
        .args(["fit", "model.inp"])
        .current_dir(s.path())
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{e}");
    assert!(e.contains("class profiles (PLOT3) drawn in"), "{e}");
    let svg = std::fs::read_to_string(s.path().join("model_profiles.svg")).unwrap();
    assert!(svg.contains("class 1 ("), "{svg}");
}

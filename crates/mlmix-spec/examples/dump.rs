//! Prints the checked model of an input file as JSON (a debugging aid).
fn main() {
    let path = std::env::args().nth(1).expect("usage: dump FILE.inp");
    match mlmix_spec::load(std::path::Path::new(&path)) {
        Ok(l) => {
            for w in &l.warnings {
                eprintln!("{w}");
            }
            println!("{}", serde_json::to_string_pretty(&l.model).expect("json"));
            eprintln!("rows: {}", l.data.n_rows());
        }
        Err(e) => eprintln!("{e}"),
    }
}

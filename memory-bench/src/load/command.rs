//! The `load` command: parse the flags, run the scenario, write the report directory and
//! print the Markdown report.

use memory_core::{Error, Result};

use crate::load::options::{self, usage};
use crate::load::{markdown, output, runner};

/// `memory-bench load <scenario> [--flag value]…`.
pub async fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("-h" | "--help" | "help") => {
            println!("{}", usage());
            return Ok(());
        }
        None => {
            eprintln!("{}", usage());
            return Err(Error::invalid(
                "scenario",
                options::Scenario::NAMES.join(", "),
                "nothing",
            ));
        }
        Some(_) => {}
    }
    let options = options::parse(args)?;
    let mut outcome = runner::run_load(&options).await?;
    let out = options.out_dir();
    output::write(&mut outcome, &out)?;
    println!("{}", markdown::render(&outcome.report));
    eprintln!("report written to {}", out.display());
    Ok(())
}

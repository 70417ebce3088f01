//! `memory-bench`: the demo and the measurement tools of the episodic-memory engine.
//!
//! `memory-bench demo` ingests the bundled sample of real agent episodes into the embedded
//! default (a local libsql file and a redb cache under `MEMORY_DATA_DIR`, default `data`),
//! then reads some back. Running it again reuses the stored data. `export` and `import` back
//! that data up as JSON lines and restore it (`memory_core::transfer`).

use std::process::ExitCode;

use memory_bench::{demo, index_cmd, transfer_cmd, write_cmd};

fn usage() -> &'static str {
    "usage: memory-bench <command>\n\ncommands:\n  demo    ingest the bundled sample into the local data directory and read it back\n  write   measure the write path: write [--backend memory|turso|turso-per-op|remote:URL|replica:URL]\n          [--tasks N] [--episodes N (per task)] [--steps N (per episode)] [--batched]\n          [--batch-delay-us N] [--batch-ops N] (group-commit bounds, turso only)\n  index   measure the in-memory index: index [--episodes N] [--queries N]\n          [--vocabulary zipf|small]\n  open    time open → first query with and without an index snapshot:\n          open [--episodes N] [--stale K] [--dir PATH]\n  budget  ingest under a memory budget, report peak RSS, check answers against no budget:\n          budget [--episodes N] [--budget-mib M] [--queries Q] [--dir PATH]\n  load    load-test the embedded default and write a report with plots:\n          load completions|queries|sustained|burst|outage [flags] (load --help)\n  export  write every episode of the local data directory as JSON lines (backup):\n          export [--out FILE|-] [--after ID | --resume] (--resume continues an\n          interrupted export into FILE after its last complete line)\n  import  store the episodes of a JSON-lines file (an export or the sample format):\n          import FILE|- [--on-bad-line abort|skip] (default abort; running it again\n          after an interruption is safe)\n\nSettings come from MEMORY_* variables (docs/configuration.md)."
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match args.first().map(String::as_str) {
        Some("demo") => runtime.block_on(demo::run()),
        Some("write") => runtime.block_on(write_cmd::run(&args[1..])),
        Some("index") => index_cmd::run(&args[1..]),
        Some("open") => runtime.block_on(memory_bench::open_cmd::run(&args[1..])),
        Some("budget") => runtime.block_on(memory_bench::budget_cmd::run(&args[1..])),
        Some("load") => runtime.block_on(memory_bench::load::run(&args[1..])),
        Some("export") => runtime.block_on(transfer_cmd::export(&args[1..])),
        Some("import") => runtime.block_on(transfer_cmd::import(&args[1..])),
        Some("-h" | "--help" | "help") => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        _ => {
            eprintln!("{}", usage());
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

//! Prints what farm-blend reads from a .blend, as JSON: `blend_facts FILE.blend`.
//! The reader alone, for benchmarks against other readers (`farm inspect` adds the CLI).

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: blend_facts FILE.blend");
        return ExitCode::from(2);
    };
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("{}: {e}", path.to_string_lossy());
            return ExitCode::FAILURE;
        }
    };
    match farm_blend::read_seekable(file) {
        Ok(info) => {
            println!("{}", serde_json::to_string(&info).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}: {e}", path.to_string_lossy());
            ExitCode::FAILURE
        }
    }
}

//! `farm`: render a .blend on this machine, or on the AWS Batch farm.
//!
//! Thin on purpose: parse the command line, set up logging, run the library, turn an error into
//! one line on stderr and an exit code.

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = farm_cli::parse_args();
    farm_cli::init_tracing(cli.verbose);
    match farm_cli::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => farm_cli::report_error(&err),
    }
}

//! The `farm` command line, as a library the binary and the tests share.
//!
//! # Layout
//! - [`cli`]: the clap definitions of every subcommand ([`Cli`]).
//! - [`render`]: `farm render`, the local farm: the renderer's and the zipper's code over a
//!   local folder, several chunks at once.
//! - [`estimate`]: `farm estimate`, sample frames rendered here and the cloud projection.
//! - [`inspect`]: `farm inspect`, what a .blend asks for, read without Blender.
//! - [`submit`]: `farm submit`, a tagged upload that starts the AWS job, with the project's
//!   files ([`project`] finds them by the trigger's rules, [`confine`] keeps them inside the
//!   project folder, [`upload`] sends what is missing); [`submit::dry_run`] prints its plan
//!   instead
//!   (`--dry-run`).
//! - [`status`]: `farm status`, the job's Batch jobs and frame counts, by concern (fetch,
//!   judge, print), and the cost so far.
//! - [`download`]: `farm download`, fetching (and unpacking) `frames.zip`.
//! - [`jobs`]: `farm cancel` and `farm retry`.
//! - [`aws`]: AWS clients from the standard configuration.
//! - [`stack`]: `--stack`, the bucket read from the farm's CloudFormation stack.
//! - [`progress`]: progress bars, hidden when stderr is not a terminal.
//! - [`out`]: the output folders `farm render` and `farm download` write into; [`machine`]: the
//!   local farm's default worker count.
//!
//! Every command returns an [`anyhow::Error`] with context on failure; [`report_error`] prints
//! it as one line and picks the exit code (130 after Ctrl-C, 1 otherwise).

#[cfg(feature = "aws")]
pub mod aws;
pub mod cli;
pub mod confine;
#[cfg(feature = "aws")]
pub mod download;
pub mod estimate;
pub mod inspect;
#[cfg(feature = "aws")]
pub mod jobs;
pub mod machine;
pub mod official;
pub mod out;
pub mod progress;
pub mod project;
pub mod render;
pub mod report;
pub mod shutdown;
#[cfg(feature = "aws")]
pub mod stack;
#[cfg(feature = "aws")]
pub mod status;
#[cfg(feature = "aws")]
pub mod submit;
#[cfg(feature = "aws")]
pub mod upload;

use std::process::ExitCode;

pub use cli::{Cli, Command};

/// Exit code after Ctrl-C or SIGTERM (128 + SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// The command was stopped by Ctrl-C or SIGTERM; whatever was finished is kept.
#[derive(Debug, thiserror::Error)]
#[error("interrupted: {0}")]
pub struct Interrupted(pub String);

/// Reads the command line. `--help` and `--version` print as usual (exit code 0); `farm` with no
/// command prints the help on stderr and exits with code 1; a usage error (an unknown flag, a
/// missing argument) prints one line, `farm: error: ...`, and exits with code 1, like every
/// other bad input.
pub fn parse_args() -> Cli {
    use clap::error::ErrorKind;
    use clap::Parser;
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            err.exit()
        }
        Err(err) if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = err.print();
            std::process::exit(1)
        }
        Err(err) => {
            eprintln!("farm: error: {}", usage_error(&err.render().to_string()));
            std::process::exit(1)
        }
    }
}

/// clap's usage error as one line: its first paragraph, and where to read more.
fn usage_error(rendered: &str) -> String {
    let paragraph: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .skip_while(|line| line.is_empty())
        .take_while(|line| !line.is_empty())
        .collect();
    let text = paragraph.join(" ");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    format!("{text}; see `farm --help` or `farm <command> --help`")
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    #[cfg(feature = "aws")]
    let cli = stack::resolve(cli).await?;
    match cli.command {
        Command::Render(args) => render::run(&args).await,
        Command::Estimate(args) => estimate::run(&args).await,
        Command::Inspect(args) => inspect::run(&args).await,
        Command::Blender(args) => official::run(&args).await,
        #[cfg(feature = "aws")]
        Command::Submit(args) => submit::run(&args).await,
        #[cfg(feature = "aws")]
        Command::Status(args) => status::run(&args).await,
        #[cfg(feature = "aws")]
        Command::Download(args) => download::run(&args).await,
        #[cfg(feature = "aws")]
        Command::Cancel(args) => jobs::cancel(&args).await,
        #[cfg(feature = "aws")]
        Command::Retry(args) => jobs::retry(&args).await,
        #[cfg(feature = "aws")]
        Command::Report(args) => report::run(&args).await,
        #[cfg(not(feature = "aws"))]
        other => Err(without_aws(other.name())),
    }
}

/// The error of a cloud command in a `farm` built without the `aws` feature.
#[cfg(not(feature = "aws"))]
fn without_aws(command: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`farm {command}` talks to the farm on AWS, and this farm was built for this machine only (scripts/example.sh builds it so, without the AWS SDK, to be quick); install the full one with `cargo install --path farm-cli --locked` (about 10 minutes of compiling)"
    )
}

/// Logs to stderr: warnings of the farm's own crates only by default (the progress bars and the
/// results say the rest), `-v` adds progress details, `-vv` debugging. `RUST_LOG` overrides.
pub fn init_tracing(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let ours = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let others = if verbose >= 3 { "debug" } else { "error" };
    let default = format!(
        "{others},farm_cli={ours},renderer={ours},zipper={ours},farm_io={ours},farm_jobs={ours}"
    );
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Prints `err` as one line, `farm: error: <what happened>: <why>`, and returns the exit code.
pub fn report_error(err: &anyhow::Error) -> ExitCode {
    let interrupted = is_interrupted(err);
    let text = one_line(&format!("{err:#}"));
    if interrupted {
        eprintln!("farm: {text}");
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        eprintln!("farm: error: {text}");
        ExitCode::FAILURE
    }
}

/// Whether the failure is an interruption (Ctrl-C or SIGTERM) rather than an error.
pub fn is_interrupted(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.is::<Interrupted>()
            || matches!(
                cause.downcast_ref::<renderer::RenderError>(),
                Some(renderer::RenderError::Interrupted)
            )
            || matches!(
                cause.downcast_ref::<zipper::ZipError>(),
                Some(zipper::ZipError::Interrupted)
            )
    })
}

/// Joins the lines of a message, so an error is always one line on stderr.
fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quotes a word for a POSIX shell when it needs it, for the commands `farm` prints.
pub use farm_core::shell::quote as shell_quote;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_are_one_line() {
        let rendered = "error: the following required arguments were not provided:\n  --bucket <BUCKET>\n\nUsage: farm submit --bucket <BUCKET> <SCENE>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_error(rendered),
            "the following required arguments were not provided: --bucket <BUCKET>; see `farm --help` or `farm <command> --help`"
        );
    }

    /// `farm` built for this machine only (`scripts/example.sh`) answers a cloud command with
    /// how to get the full one, not with a crash or an unknown command. Runs in `scripts/test.sh`
    /// as `cargo test -p farm-cli --no-default-features --lib`.
    #[cfg(not(feature = "aws"))]
    #[tokio::test]
    async fn a_local_farm_says_how_to_get_the_cloud_commands() {
        use clap::Parser;
        let cli = Cli::try_parse_from(["farm", "status", "k.blend", "--bucket", "b"]).unwrap();
        let message = run(cli).await.unwrap_err().to_string();
        assert!(
            message.starts_with("`farm status` talks to the farm on AWS"),
            "{message}"
        );
        assert!(
            message.contains("cargo install --path farm-cli --locked"),
            "{message}"
        );
    }

    #[test]
    fn errors_print_on_one_line() {
        assert_eq!(one_line("a\nb\r\n  c\n"), "a b c");
    }

    #[test]
    fn interruptions_are_recognised_through_context() {
        let err = anyhow::Error::new(renderer::RenderError::Interrupted).context("rendering");
        assert!(is_interrupted(&err));
        let err = anyhow::Error::new(Interrupted("stopped".into()));
        assert!(is_interrupted(&err));
        assert!(!is_interrupted(&anyhow::anyhow!("other")));
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("shots/a.blend"), "shots/a.blend");
        assert_eq!(shell_quote("my scene.blend"), "'my scene.blend'");
        assert_eq!(shell_quote("it's.blend"), r"'it'\''s.blend'");
        assert_eq!(shell_quote(""), "''");
    }
}

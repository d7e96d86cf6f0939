//! `--stack NAME` (`FARM_STACK`): the cloud commands' bucket read from the farm's CloudFormation
//! stack (its `BucketName` output), so nobody copies the generated bucket name by hand; for
//! `farm submit`, also the `SharedPrefixes` parameter the stack's trigger reads, so the submit
//! refuses what the trigger would. The other outputs are not needed: `farm retry` takes its
//! queue and job definitions from the job's own `job.json`.

use anyhow::Context as _;
use farm_core::deps::SharedPrefixes;
use farm_io::{AwsClients, StackOutputs};

use crate::cli::{Cli, Command, StackArg};

/// The bucket and `--stack` of a cloud command; `None` for the local ones.
fn target(command: &mut Command) -> Option<(&mut String, &StackArg)> {
    match command {
        Command::Submit(a) => Some((&mut a.bucket, &a.stack)),
        Command::Status(a) => Some((&mut a.bucket, &a.stack)),
        Command::Download(a) => Some((&mut a.bucket, &a.stack)),
        Command::Cancel(a) => Some((&mut a.bucket, &a.stack)),
        Command::Retry(a) => Some((&mut a.bucket, &a.stack)),
        Command::Report(a) => Some((&mut a.bucket, &a.stack)),
        Command::Render(_) | Command::Estimate(_) | Command::Inspect(_) | Command::Blender(_) => {
            None
        }
    }
}

/// With `--stack`, sets the command's bucket to the stack's `BucketName` output (clap has
/// already refused `--stack` with `--bucket`, and a cloud command with neither), and a
/// submit's shared prefixes to its `SharedPrefixes` parameter (clap has refused `--stack` with
/// `--shared-prefixes`).
pub async fn resolve(mut cli: Cli) -> anyhow::Result<Cli> {
    let mut read = None;
    if let Some((bucket, StackArg { stack: Some(name) })) = target(&mut cli.command) {
        let client = AwsClients::load().await.cloudformation();
        let outputs = StackOutputs::read(&client, name)
            .await
            .context("finding the farm's bucket (--stack)")?;
        *bucket = outputs
            .bucket()
            .context("finding the farm's bucket (--stack)")?
            .to_owned();
        tracing::info!(stack = %name, bucket = %bucket, "the bucket, from the stack's outputs");
        read = Some(outputs);
    }
    if let (Command::Submit(args), Some(outputs)) = (&mut cli.command, &read) {
        let shared = SharedPrefixes::parse(outputs.shared_prefixes())
            .context("reading the stack's SharedPrefixes parameter (--stack)")?;
        tracing::info!(shared = %shared, "the shared prefixes, from the stack's parameters");
        args.shared_prefixes = Some(shared);
    }
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(["farm"].iter().chain(args))
    }

    #[test]
    fn every_cloud_command_takes_a_stack_or_a_bucket_but_not_both() {
        for verb in ["status", "download", "cancel", "retry", "report"] {
            let mut cli = parse(&[verb, "a.blend", "--stack", "farm"]).unwrap();
            let (bucket, stack) = target(&mut cli.command).expect(verb);
            assert_eq!(
                (bucket.as_str(), stack.stack.as_deref()),
                ("", Some("farm"))
            );
            let mut cli = parse(&[verb, "a.blend", "--bucket", "b"]).unwrap();
            let (bucket, stack) = target(&mut cli.command).expect(verb);
            assert_eq!((bucket.as_str(), stack.stack.as_deref()), ("b", None));
            let both = parse(&[verb, "a.blend", "--bucket", "b", "--stack", "farm"]);
            assert!(both
                .unwrap_err()
                .to_string()
                .contains("cannot be used with"));
            let neither = parse(&[verb, "a.blend"]).unwrap_err().to_string();
            assert!(neither.contains("--bucket"), "{neither}");
        }
        let submit = parse(&["submit", "a.blend", "--stack", "farm", "--frame", "1"]);
        assert!(target(&mut submit.unwrap().command).is_some());
        assert!(target(&mut parse(&["render", "a.blend"]).unwrap().command).is_none());
    }
}

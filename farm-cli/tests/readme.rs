//! Every `farm …` command in README.md parses with the real command line, so the README cannot
//! drift from the CLI: a renamed flag, a removed subcommand or a flag that became required
//! fails here. README.md is read when the test runs.
//!
//! Checked: each line of a fenced code block that runs `farm` (after `VAR=value` prefixes; a
//! trailing `\` joins the next line; `|`, `&&`, `;` end the command) must parse completely;
//! each inline `` `farm …` `` span in the prose must name real subcommands and flags, and may
//! leave out required arguments (`farm render` in a sentence). Every subcommand is documented.

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use farm_cli::Cli;

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The `farm` commands of README.md's code blocks, as shell words, with their line numbers.
fn block_commands(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending: Option<(usize, String)> = None;
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            pending = None;
            continue;
        }
        if !in_block {
            continue;
        }
        let (number, joined) = match pending.take() {
            Some((number, head)) => (number, format!("{head} {line}")),
            None => (index + 1, line.to_owned()),
        };
        if let Some(head) = joined.trim_end().strip_suffix('\\') {
            pending = Some((number, head.to_owned()));
            continue;
        }
        let words = shlex::split(&joined)
            .unwrap_or_else(|| panic!("README.md:{number}: not shell words: {joined}"));
        if let Some(command) = farm_words(&words) {
            commands.push((number, command));
        }
    }
    commands
}

/// The words of the `farm` command in a shell command line, if it runs one.
fn farm_words(words: &[String]) -> Option<Vec<String>> {
    // Skip `VAR=value` prefixes.
    let start = words
        .iter()
        .position(|w| !w.contains('=') || w.starts_with('-'))?;
    if words[start] != "farm" {
        return None;
    }
    let command = words[start..]
        .iter()
        .take_while(|w| !matches!(w.as_str(), "|" | "&&" | "||" | ";" | ">" | "2>"))
        .cloned()
        .collect();
    Some(command)
}

/// The inline `` `farm …` `` spans outside code blocks, with their line numbers.
fn inline_commands(text: &str) -> Vec<(usize, Vec<String>)> {
    let mut commands = Vec::new();
    let mut in_block = false;
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        // Code spans are the odd-numbered pieces between backticks.
        for span in line.split('`').skip(1).step_by(2) {
            if span == "farm" || span.starts_with("farm ") {
                let words = shlex::split(span)
                    .unwrap_or_else(|| panic!("README.md:{}: not shell words: {span}", index + 1));
                commands.push((index + 1, words));
            }
        }
    }
    commands
}

#[test]
fn every_farm_command_in_the_readme_parses() {
    let text = readme();
    let commands = block_commands(&text);
    assert!(
        commands.len() >= 6,
        "expected the README's farm commands, found {commands:?}"
    );
    let mut failures = Vec::new();
    for (line, words) in &commands {
        match Cli::try_parse_from(words) {
            Ok(_) => {}
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
                ) => {}
            Err(err) => failures.push(format!("README.md:{line}: {}\n{err}", words.join(" "))),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn inline_farm_commands_name_real_subcommands_and_flags() {
    let text = readme();
    let commands = inline_commands(&text);
    assert!(!commands.is_empty(), "no inline `farm …` in README.md");
    let mut failures = Vec::new();
    for (line, words) in &commands {
        match Cli::try_parse_from(words) {
            Ok(_) => {}
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::DisplayHelp
                        | ErrorKind::DisplayVersion
                        | ErrorKind::MissingRequiredArgument
                        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                ) => {}
            Err(err) => failures.push(format!("README.md:{line}: {}\n{err}", words.join(" "))),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_subcommand_is_in_a_readme_example() {
    let text = readme();
    let shown: Vec<String> = block_commands(&text)
        .into_iter()
        .filter_map(|(_, words)| words.get(1).cloned())
        .collect();
    let missing: Vec<String> = Cli::command()
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name().to_owned())
        .filter(|name| !shown.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md shows no `farm {}` command",
        missing.join("`, `farm ")
    );
}

#[test]
fn the_extraction_sees_continuations_prefixes_and_pipes() {
    let text = "```sh\nFARM_X=1 farm status a.blend \\\n    --bucket b | jq .\ncargo build\n```\nsee `farm render` and `farm retry k --bucket b`\n";
    let blocks = block_commands(text);
    assert_eq!(
        blocks,
        vec![(
            2,
            vec!["farm", "status", "a.blend", "--bucket", "b"]
                .into_iter()
                .map(String::from)
                .collect()
        )]
    );
    let inline = inline_commands(text);
    assert_eq!(inline.len(), 2);
    assert_eq!(inline[1].1, ["farm", "retry", "k", "--bucket", "b"]);
    // A renamed flag is caught.
    assert!(Cli::try_parse_from(["farm", "render", "a.blend", "--no-such-flag"]).is_err());
}

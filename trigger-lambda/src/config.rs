//! The Lambda's configuration, from its environment.

use farm_core::env;

use crate::handler::DEFAULT_MAX_FRAMES;
use farm_core::frames::MAX_JOB_FRAMES;

/// Everything the trigger reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `JOB_QUEUE_ARN`: queue of the render and zip jobs (name or ARN).
    pub queue: String,
    /// `JOB_DEFINITION_ARN`: render job definition (name or ARN).
    pub render_definition: String,
    /// `ZIP_JOB_DEFINITION_ARN`: zip job definition (name or ARN).
    pub zip_definition: String,
    /// `FARM_MAX_FRAMES`: most frames one upload may ask for (default 10,000).
    pub max_frames: usize,
    /// `FARM_LOG_FORMAT=json`: JSON log lines.
    pub json_logs: bool,
}

/// A missing or malformed environment variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("environment variable {name} is not set: set it to {what}")]
    Missing {
        name: &'static str,
        what: &'static str,
    },
    #[error("environment variable {name}={value:?} is invalid: expected {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (a variable's value, or `None` if unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str, what: &'static str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .ok_or(ConfigError::Missing { name, what })
        };
        let queue = required(
            env::JOB_QUEUE,
            "the AWS Batch job queue (name or ARN) the render and zip jobs go to",
        )?;
        let render_definition = required(
            env::JOB_DEFINITION,
            "the render job definition (name or ARN)",
        )?;
        let zip_definition = required(
            env::ZIP_JOB_DEFINITION,
            "the zip job definition (name or ARN)",
        )?;
        let max_frames = match lookup(env::MAX_FRAMES).filter(|v| !v.trim().is_empty()) {
            None => DEFAULT_MAX_FRAMES,
            Some(value) => match value.trim().parse::<usize>() {
                Ok(n) if (1..=MAX_JOB_FRAMES).contains(&n) => n,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: env::MAX_FRAMES,
                        value,
                        expected: "a whole number of frames from 1 to 100000, the most the renderer and the zipper accept (default 10000)",
                    })
                }
            },
        };
        let json_logs = lookup(env::LOG_FORMAT).is_some_and(|v| v.trim() == "json");
        Ok(Self {
            queue,
            render_definition,
            zip_definition,
            max_frames,
            json_logs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    const BASE: [(&str, &str); 3] = [
        ("JOB_QUEUE_ARN", "q"),
        ("JOB_DEFINITION_ARN", "render"),
        ("ZIP_JOB_DEFINITION_ARN", "zip"),
    ];

    #[test]
    fn reads_the_targets_and_defaults_the_frame_limit() {
        let config = config(&BASE).unwrap();
        assert_eq!(config.queue, "q");
        assert_eq!(config.render_definition, "render");
        assert_eq!(config.zip_definition, "zip");
        assert_eq!(config.max_frames, 10_000);
        assert!(!config.json_logs);
    }

    #[test]
    fn a_missing_variable_is_named() {
        for missing in [
            "JOB_QUEUE_ARN",
            "JOB_DEFINITION_ARN",
            "ZIP_JOB_DEFINITION_ARN",
        ] {
            let vars: Vec<_> = BASE
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = config(&vars).unwrap_err().to_string();
            assert!(err.contains(missing), "{err}");
            assert!(err.contains("is not set"), "{err}");
        }
    }

    #[test]
    fn the_frame_limit_and_log_format_are_read() {
        let mut vars = BASE.to_vec();
        vars.push(("FARM_MAX_FRAMES", "500"));
        vars.push(("FARM_LOG_FORMAT", "json"));
        let config = config(&vars).unwrap();
        assert_eq!(config.max_frames, 500);
        assert!(config.json_logs);
        for bad in ["0", "-1", "ten", "100001"] {
            let mut vars = BASE.to_vec();
            vars.push(("FARM_MAX_FRAMES", bad));
            let err = super::tests::config(&vars).unwrap_err().to_string();
            assert!(err.contains("FARM_MAX_FRAMES"), "{err}");
        }
    }
}

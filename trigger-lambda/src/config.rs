//! The Lambda's configuration, from its environment.

use std::collections::BTreeMap;

use farm_core::deps::SharedPrefixes;
use farm_core::env;
use farm_core::scheduler::RenderDefinitions;
use farm_core::series::{BlenderPick, BlenderSeries, DEFAULT_SERIES};

use crate::handler::DEFAULT_MAX_FRAMES;
use farm_core::frames::MAX_JOB_FRAMES;

/// Everything the trigger reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `JOB_QUEUE_ARN`: queue of the render and zip jobs (name or ARN).
    pub queue: String,
    /// The render job definition of each Blender series and the default series:
    /// `FARM_RENDER_JOB_DEFINITIONS` (`4.2=<def>,4.5=<def>`) and `FARM_DEFAULT_BLENDER`
    /// (default 4.2), or for a farm with one series `JOB_DEFINITION_ARN` alone.
    pub render: RenderDefinitions,
    /// `ZIP_JOB_DEFINITION_ARN`: zip job definition (name or ARN).
    pub zip_definition: String,
    /// `FARM_MAX_FRAMES`: most frames one upload may ask for (default 10,000).
    pub max_frames: usize,
    /// `FARM_MAX_VCPUS`: the compute environment's `MaxvCpus`, whose `/ 4` task slots
    /// `chunk=auto` fills (unset: unknown).
    pub max_vcpus: Option<u32>,
    /// `FARM_LOG_FORMAT=json`: JSON log lines.
    pub json_logs: bool,
    /// `FARM_SHARED_PREFIXES`: the prefixes every upload may use besides its own top-level
    /// folder (unset: none).
    pub shared_prefixes: SharedPrefixes,
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
    #[error("the render job definitions are misconfigured: {0}")]
    Render(String),
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
        let render = render_definitions(&lookup)?;
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
        let max_vcpus = match lookup(env::MAX_VCPUS).filter(|v| !v.trim().is_empty()) {
            None => None,
            Some(value) => match value.trim().parse::<u32>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    return Err(ConfigError::Invalid {
                        name: env::MAX_VCPUS,
                        value,
                        expected: "the compute environment's MaxvCpus, a whole number of at least 1 (chunk=auto fills its MaxvCpus / 4 render task slots)",
                    })
                }
            },
        };
        let json_logs = lookup(env::LOG_FORMAT).is_some_and(|v| v.trim() == "json");
        let shared = lookup(env::SHARED_PREFIXES).unwrap_or_default();
        let shared_prefixes =
            SharedPrefixes::parse(&shared).map_err(|_| ConfigError::Invalid {
                name: env::SHARED_PREFIXES,
                value: shared.clone(),
                expected: "folders of the bucket separated by commas, e.g. library/,textures/ (no leading `/`, no `.` or `..`), or nothing",
            })?;
        Ok(Self {
            queue,
            render,
            zip_definition,
            max_frames,
            max_vcpus,
            json_logs,
            shared_prefixes,
        })
    }
}

impl Config {
    /// The render tasks the farm runs at once, `FARM_MAX_VCPUS / 4`, which `chunk=auto` fills.
    pub fn task_slots(&self) -> Option<std::num::NonZeroUsize> {
        self.max_vcpus.map(farm_core::plan::task_slots)
    }
}

/// What `FARM_RENDER_JOB_DEFINITIONS` holds.
const DEFINITIONS_SYNTAX: &str = "comma-separated SERIES=JOB_DEFINITION pairs, e.g. 4.2=farm-render-4-2,4.5=farm-render-4-5 (names or ARNs)";

fn render_definitions(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<RenderDefinitions, ConfigError> {
    let set = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let default = match set(env::DEFAULT_BLENDER) {
        None => None,
        Some(value) => Some(value.parse::<BlenderPick>().map_err(|_| ConfigError::Invalid {
            name: env::DEFAULT_BLENDER,
            value,
            expected: "`auto` (the series of the file) or a Blender series as major.minor, e.g. 4.2, with a render job definition",
        })?),
    };
    let (default, by_series) = match (set(env::RENDER_JOB_DEFINITIONS), set(env::JOB_DEFINITION)) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Render(format!(
                "both {} and {} are set: set {} alone (one definition per Blender series)",
                env::RENDER_JOB_DEFINITIONS,
                env::JOB_DEFINITION,
                env::RENDER_JOB_DEFINITIONS
            )))
        }
        (None, None) => {
            return Err(ConfigError::Missing {
                name: env::RENDER_JOB_DEFINITIONS,
                what: DEFINITIONS_SYNTAX,
            })
        }
        // One definition: nothing to choose from, so it runs one series, the default's.
        (None, Some(single)) => match default.unwrap_or(BlenderPick::Series(DEFAULT_SERIES)) {
            BlenderPick::Series(series) => {
                (BlenderPick::Series(series), BTreeMap::from([(series, single)]))
            }
            BlenderPick::Auto => {
                return Err(ConfigError::Render(format!(
                    "{}=auto chooses among the series of {}, but only {} is set: set {} or give {} the series of {}",
                    env::DEFAULT_BLENDER,
                    env::RENDER_JOB_DEFINITIONS,
                    env::JOB_DEFINITION,
                    env::RENDER_JOB_DEFINITIONS,
                    env::DEFAULT_BLENDER,
                    env::JOB_DEFINITION
                )))
            }
        },
        (Some(pairs), None) => {
            let invalid = |value: &str| ConfigError::Invalid {
                name: env::RENDER_JOB_DEFINITIONS,
                value: value.to_owned(),
                expected: DEFINITIONS_SYNTAX,
            };
            let mut by_series = BTreeMap::new();
            for pair in pairs.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (series, definition) = pair.split_once('=').ok_or_else(|| invalid(&pairs))?;
                let series: BlenderSeries = series.parse().map_err(|_| invalid(&pairs))?;
                let definition = definition.trim();
                if definition.is_empty()
                    || by_series.insert(series, definition.to_owned()).is_some()
                {
                    return Err(invalid(&pairs));
                }
            }
            (default.unwrap_or(BlenderPick::Auto), by_series)
        }
    };
    RenderDefinitions::new(default, by_series).map_err(|err| {
        ConfigError::Render(format!(
            "{err}: set {} to one of them or add its definition to {}",
            env::DEFAULT_BLENDER,
            env::RENDER_JOB_DEFINITIONS
        ))
    })
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
        (farm_core::env::JOB_QUEUE, "q"),
        (farm_core::env::JOB_DEFINITION, "render"),
        (farm_core::env::ZIP_JOB_DEFINITION, "zip"),
    ];

    #[test]
    fn shared_prefixes_are_folders_and_none_by_default() {
        assert!(config(&BASE).unwrap().shared_prefixes.as_slice().is_empty());
        let mut vars = BASE.to_vec();
        vars.push(("FARM_SHARED_PREFIXES", "library, textures/x/"));
        assert_eq!(
            config(&vars).unwrap().shared_prefixes.as_slice(),
            ["library/", "textures/x/"]
        );
        for bad in ["/abs/", "../up", "a//b"] {
            let mut vars = BASE.to_vec();
            vars.push(("FARM_SHARED_PREFIXES", bad));
            let err = config(&vars).unwrap_err().to_string();
            assert!(err.contains("FARM_SHARED_PREFIXES"), "{err}");
        }
    }

    #[test]
    fn reads_the_targets_and_defaults_the_frame_limit() {
        let config = config(&BASE).unwrap();
        assert_eq!(config.queue, "q");
        assert_eq!(config.render.definition(None), Some("render"));
        assert_eq!(
            config.render.default_pick(),
            BlenderPick::Series(DEFAULT_SERIES)
        );
        assert_eq!(config.render.iter().count(), 1);
        assert_eq!(config.zip_definition, "zip");
        assert_eq!(config.max_frames, 10_000);
        assert_eq!(config.max_vcpus, None);
        assert!(!config.json_logs);
    }

    #[test]
    fn a_missing_variable_is_named() {
        for missing in [
            farm_core::env::JOB_QUEUE,
            farm_core::env::ZIP_JOB_DEFINITION,
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
    fn without_any_render_definition_the_map_is_asked_for() {
        let err = config(&[
            (farm_core::env::JOB_QUEUE, "q"),
            (farm_core::env::ZIP_JOB_DEFINITION, "zip"),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("FARM_RENDER_JOB_DEFINITIONS is not set"),
            "{err}"
        );
        assert!(err.contains("4.2=farm-render-4-2,4.5="), "{err}");
    }

    #[test]
    fn one_render_definition_per_series_and_the_default() {
        let base = [
            (farm_core::env::JOB_QUEUE, "q"),
            (farm_core::env::ZIP_JOB_DEFINITION, "zip"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut vars = base.to_vec();
            vars.extend_from_slice(extra);
            config(&vars)
        };
        let (v42, v45) = (BlenderSeries::new(4, 2), BlenderSeries::new(4, 5));
        let arn45 = "arn:aws:batch:eu-west-1:123456789012:job-definition/farm-render-4-5:3";
        let config = with(&[(
            farm_core::env::RENDER_JOB_DEFINITIONS,
            " 4.2=farm-render-4-2 , 4.5=arn:aws:batch:eu-west-1:123456789012:job-definition/farm-render-4-5:3 ",
        )])
        .unwrap();
        // Several definitions and no default: the series of the file (`auto`); a file whose
        // Blender is unknown runs the newest.
        assert_eq!(config.render.default_pick(), BlenderPick::Auto);
        assert_eq!(config.render.definition(Some(v45)), Some(arn45));
        assert_eq!(config.render.definition(Some(v42)), Some("farm-render-4-2"));
        assert_eq!(config.render.definition(None), Some(arn45));
        // A fixed default runs its own definition.
        for (default, series, definition) in [("4.2", v42, "a"), ("4.5", v45, "b")] {
            let config = with(&[
                (farm_core::env::RENDER_JOB_DEFINITIONS, "4.2=a,4.5=b"),
                (farm_core::env::DEFAULT_BLENDER, default),
            ])
            .unwrap();
            assert_eq!(config.render.default_pick(), BlenderPick::Series(series));
            assert_eq!(config.render.definition(None), Some(definition));
        }
        let config = with(&[
            (farm_core::env::RENDER_JOB_DEFINITIONS, "4.2=a,5.3=c"),
            (farm_core::env::DEFAULT_BLENDER, "auto"),
        ])
        .unwrap();
        assert_eq!(config.render.default_pick(), BlenderPick::Auto);
        // One definition, named the old way, is the default series'.
        let config = with(&[
            (farm_core::env::JOB_DEFINITION, "r"),
            (farm_core::env::DEFAULT_BLENDER, "4.5"),
        ])
        .unwrap();
        assert_eq!(
            config.render.choice().supported().collect::<Vec<_>>(),
            [v45]
        );

        for (extra, needle) in [
            (
                &[
                    (farm_core::env::RENDER_JOB_DEFINITIONS, "4.2=a,4.5=b"),
                    (farm_core::env::JOB_DEFINITION, "r"),
                ][..],
                "set FARM_RENDER_JOB_DEFINITIONS alone",
            ),
            (
                &[
                    (farm_core::env::RENDER_JOB_DEFINITIONS, "4.5=b"),
                    (farm_core::env::DEFAULT_BLENDER, "4.2"),
                ][..],
                "the default Blender 4.2 has no render job definition (there are: 4.5)",
            ),
            (
                &[
                    (farm_core::env::JOB_DEFINITION, "r"),
                    (farm_core::env::DEFAULT_BLENDER, "auto"),
                ][..],
                "FARM_DEFAULT_BLENDER=auto chooses among the series of FARM_RENDER_JOB_DEFINITIONS",
            ),
            (
                &[
                    (farm_core::env::RENDER_JOB_DEFINITIONS, "4.2=a"),
                    (farm_core::env::DEFAULT_BLENDER, "4.5"),
                ][..],
                "the default Blender 4.5 has no render job definition",
            ),
            (
                &[(farm_core::env::RENDER_JOB_DEFINITIONS, "4.2")][..],
                "SERIES=JOB_DEFINITION",
            ),
            (
                &[(farm_core::env::RENDER_JOB_DEFINITIONS, "4.2=")][..],
                "SERIES=JOB_DEFINITION",
            ),
            (
                &[(farm_core::env::RENDER_JOB_DEFINITIONS, "4.2=a,4.2=b")][..],
                "SERIES=JOB_DEFINITION",
            ),
            (
                &[(farm_core::env::RENDER_JOB_DEFINITIONS, "latest=a")][..],
                "SERIES=JOB_DEFINITION",
            ),
            (
                &[
                    (farm_core::env::JOB_DEFINITION, "r"),
                    (farm_core::env::DEFAULT_BLENDER, "4"),
                ][..],
                farm_core::env::DEFAULT_BLENDER,
            ),
        ] {
            let err = with(extra).unwrap_err().to_string();
            assert!(err.contains(needle), "{extra:?}: {err}");
        }
    }

    #[test]
    fn the_frame_limit_and_log_format_are_read() {
        let mut vars = BASE.to_vec();
        vars.push((farm_core::env::MAX_FRAMES, "500"));
        vars.push((farm_core::env::LOG_FORMAT, "json"));
        let config = config(&vars).unwrap();
        assert_eq!(config.max_frames, 500);
        assert!(config.json_logs);
        let mut vars = BASE.to_vec();
        vars.push((farm_core::env::MAX_VCPUS, " 64 "));
        let config = super::tests::config(&vars).unwrap();
        assert_eq!(config.max_vcpus, Some(64));
        assert_eq!(config.task_slots().map(|s| s.get()), Some(16));
        for bad in ["0", "-4", "many"] {
            let mut vars = BASE.to_vec();
            vars.push((farm_core::env::MAX_VCPUS, bad));
            let err = super::tests::config(&vars).unwrap_err().to_string();
            assert!(
                err.contains(farm_core::env::MAX_VCPUS) && err.contains("MaxvCpus"),
                "{err}"
            );
        }
        for bad in ["0", "-1", "ten", "100001"] {
            let mut vars = BASE.to_vec();
            vars.push((farm_core::env::MAX_FRAMES, bad));
            let err = super::tests::config(&vars).unwrap_err().to_string();
            assert!(err.contains(farm_core::env::MAX_FRAMES), "{err}");
        }
    }
}

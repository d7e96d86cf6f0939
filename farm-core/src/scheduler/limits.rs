//! What a scheduler accepts, as the scheduler states it ([`super::Scheduler::limits`]): array
//! sizes, the size of a job's environment, job names and tags. `farm-jobs` names, tags and
//! checks every job by these rules before submitting, so a job the scheduler would refuse is
//! refused with a clear error instead; the numbers are the adapter's (`farm_io`'s Batch
//! scheduler states AWS Batch's, and the test kit's memory scheduler the same).

use std::ops::RangeInclusive;

use super::JobSpec;

/// A scheduler's limits on the jobs it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerLimits {
    /// Children an array job may have (a job of one chunk is a plain job).
    pub array_sizes: RangeInclusive<usize>,
    /// Most characters of a job's environment, as [`JobSpec::env_len`] counts them.
    pub env_max: usize,
    /// Longest job name, in characters of [`SchedulerLimits::job_name`]'s alphabet.
    pub job_name_max: usize,
    /// Longest tag key.
    pub tag_key_max: usize,
    /// Longest tag value.
    pub tag_value_max: usize,
    /// A prefix the scheduler reserves, in any letter case, for both tag keys and values.
    pub tag_reserved_prefix: &'static str,
}

/// A job the scheduler would refuse as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OverLimit {
    #[error("an array job has {} to {} children, not {size}", .sizes.start(), .sizes.end())]
    ArraySize {
        size: usize,
        sizes: RangeInclusive<usize>,
    },
    #[error("the job's settings take {len} characters, more than the {max} the scheduler accepts for a job")]
    Environment { len: usize, max: usize },
    #[error("job name `{name}` {reason}")]
    JobName { name: String, reason: String },
}

impl SchedulerLimits {
    /// Whether the scheduler would take `spec` as it stands: its array size, environment and
    /// name (its tags are made by [`SchedulerLimits::tag_value`]).
    pub fn check(&self, spec: &JobSpec) -> Result<(), OverLimit> {
        if let Some(size) = spec.array_size {
            if !self.array_sizes.contains(&size) {
                return Err(OverLimit::ArraySize {
                    size,
                    sizes: self.array_sizes.clone(),
                });
            }
        }
        let len = spec.env_len();
        if len > self.env_max {
            return Err(OverLimit::Environment {
                len,
                max: self.env_max,
            });
        }
        self.check_job_name(&spec.name)
            .map_err(|reason| OverLimit::JobName {
                name: spec.name.clone(),
                reason,
            })
    }

    /// A tag value for any text. A scheduler refuses a whole job for one bad tag value, so
    /// values keep at most [`tag_value_max`](Self::tag_value_max) characters of ASCII letters,
    /// digits, spaces and `_ . : / = + - @` (what both AWS and moto accept), and any other
    /// character becomes `_`: `shots/my scene ü ✓.blend` is tagged `shots/my scene _ _.blend`. A
    /// value starting with the reserved prefix (any case) gets `_` for the prefix's last
    /// character. The exact key is in the job's environment and in `job.json`.
    pub fn tag_value(&self, value: &str) -> String {
        let mut tagged: String = value
            .chars()
            .take(self.tag_value_max)
            .map(|c| {
                if c.is_ascii_alphanumeric() || " _.:/=+-@".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        if self.has_reserved_prefix(&tagged) {
            let last = self.tag_reserved_prefix.len() - 1;
            tagged.replace_range(last..=last, "_");
        }
        tagged
    }

    /// Whether a tag key or value starts with the reserved prefix in any letter case.
    pub fn has_reserved_prefix(&self, text: &str) -> bool {
        let prefix = self.tag_reserved_prefix;
        !prefix.is_empty()
            && text
                .get(..prefix.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
    }

    /// Whether the scheduler accepts `key` as a tag key: 1 to
    /// [`tag_key_max`](Self::tag_key_max) characters of letters, digits, spaces and
    /// `_ . : / = + - @`, not starting with the reserved prefix.
    pub fn is_valid_tag_key(&self, key: &str) -> bool {
        !key.is_empty()
            && key.chars().count() <= self.tag_key_max
            && key.chars().all(tag_char)
            && !self.has_reserved_prefix(key)
    }

    /// Whether the scheduler accepts `value` as a tag value: up to
    /// [`tag_value_max`](Self::tag_value_max) characters of letters, digits, spaces and
    /// `_ . : / = + - @`, not starting with the reserved prefix.
    pub fn is_valid_tag_value(&self, value: &str) -> bool {
        value.chars().count() <= self.tag_value_max
            && value.chars().all(tag_char)
            && !self.has_reserved_prefix(value)
    }

    /// A readable job name for a key: at most [`job_name_max`](Self::job_name_max) letters,
    /// digits, `-` and `_`, ending in `-<suffix>`, e.g. `shots-scene_01-blend-render`.
    pub fn job_name(&self, key: &str, suffix: &str) -> String {
        let max = self.job_name_max;
        let mut name = String::with_capacity(max);
        for c in key.chars() {
            let c = if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '-'
            };
            if !(c == '-' && (name.is_empty() || name.ends_with('-'))) {
                name.push(c);
            }
        }
        let room = max.saturating_sub(suffix.len() + 1);
        if name.len() > room {
            // Keep the end of the key: the file name says more than the folders above it.
            name = name[name.len() - room..].to_owned();
        }
        // A letter or digit first (`_shots/a.blend` would start the name with `_`).
        let name = name.trim_start_matches(['-', '_']).trim_end_matches('-');
        if name.is_empty() {
            format!("farm-{suffix}")
        } else {
            format!("{name}-{suffix}")
        }
    }

    /// Whether the scheduler accepts `name` as a job name: 1 to
    /// [`job_name_max`](Self::job_name_max) letters, digits, hyphens and underscores, starting
    /// with a letter or digit; the error says what is wrong.
    pub fn check_job_name(&self, name: &str) -> Result<(), String> {
        if name.is_empty() || name.len() > self.job_name_max {
            return Err(format!("must have 1 to {} characters", self.job_name_max));
        }
        if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err("must start with a letter or a digit".to_owned());
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("may hold only letters, digits, hyphens and underscores".to_owned());
        }
        Ok(())
    }
}

/// A character of AWS's tag pattern `[\p{L}\p{Z}\p{N}_.:/=+\-@]`, approximated by Unicode
/// letters, numbers and spaces.
fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "_.:/=+-@".contains(c)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::{JobKind, TAG_FRAMES, TAG_KEY};
    use super::*;
    use crate::layout::tests::any_key;

    /// Small limits of a made-up scheduler: the rules hold whatever the numbers (AWS Batch's
    /// own, `farm_io::BATCH_LIMITS`, are tested in `farm-io`).
    const LIMITS: SchedulerLimits = SchedulerLimits {
        array_sizes: 2..=100,
        env_max: 1_000,
        job_name_max: 64,
        tag_key_max: 16,
        tag_value_max: 32,
        tag_reserved_prefix: "aws:",
    };

    #[test]
    fn tag_values_keep_only_what_batch_accepts() {
        assert_eq!(
            LIMITS.tag_value("shots/my scene ü ✓.blend"),
            "shots/my scene _ _.blend"
        );
        assert_eq!(LIMITS.tag_value("1-10 20-30:2"), "1-10 20-30:2");
        assert_eq!(LIMITS.tag_value(&"a".repeat(300)).len(), 32);
    }

    #[test]
    fn a_value_starting_with_aws_colon_is_not_reserved_once_tagged() {
        assert_eq!(LIMITS.tag_value("aws:scene.blend"), "aws_scene.blend");
        assert_eq!(LIMITS.tag_value("AWS:x.blend"), "AWS_x.blend");
        assert_eq!(LIMITS.tag_value("laws:x.blend"), "laws:x.blend");
    }

    #[test]
    fn the_farms_tag_keys_are_valid_tag_keys() {
        for key in [TAG_KEY, TAG_FRAMES] {
            assert!(LIMITS.is_valid_tag_key(key), "{key}");
        }
        for bad in ["", "aws:key", "Aws:x", "a#b", &"k".repeat(17)] {
            assert!(!LIMITS.is_valid_tag_key(bad), "{bad}");
        }
    }

    proptest::proptest! {
        /// Whatever a key or frame list holds, its tag value is one Batch accepts.
        #[test]
        fn every_text_makes_a_tag_value_batch_accepts(text in "(aws:|AWS:|[a-z:/ ]|.){0,300}") {
            let value = LIMITS.tag_value(&text);
            proptest::prop_assert!(LIMITS.is_valid_tag_value(&value), "{text:?} -> {value:?}");
        }

        #[test]
        fn every_key_makes_a_job_name_batch_accepts(key in any_key()) {
            for suffix in ["render", "zip", "0123abcd-render", "0123abcd-zip"] {
                let name = LIMITS.job_name(&key, suffix);
                proptest::prop_assert!(batch_accepts(&name), "{key:?} -> {name:?}");
                proptest::prop_assert!(LIMITS.check_job_name(&name).is_ok(), "{name:?}");
                proptest::prop_assert!(name.ends_with(&format!("-{suffix}")), "{name}");
            }
        }
    }

    #[test]
    fn batch_job_names_are_valid_and_readable() {
        assert_eq!(
            LIMITS.job_name("shots/scene 01.blend", "render"),
            "shots-scene-01-blend-render"
        );
        assert_eq!(LIMITS.job_name("ü/ß.blend", "zip"), "blend-zip");
        assert_eq!(LIMITS.job_name("ü", "zip"), "farm-zip");
        let long = format!("{}/final.blend", "deep/".repeat(60));
        let name = LIMITS.job_name(&long, "render");
        assert!(name.len() <= 64, "{name}");
        assert!(name.ends_with("final-blend-render"), "{name}");
        for name in [name, LIMITS.job_name("--a--", "render")] {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "{name}"
            );
            assert!(!name.starts_with('-'), "{name}");
        }
        // A key starting with `_` (SubmitJob wants a letter or digit first).
        assert_eq!(
            LIMITS.job_name("_shots/a.blend", "render"),
            "shots-a-blend-render"
        );
        assert_eq!(LIMITS.job_name("__.blend", "zip"), "blend-zip");
    }

    #[test]
    fn a_job_is_checked_against_every_limit() {
        let job = |name: &str, array_size: Option<usize>, value: usize| JobSpec {
            kind: JobKind::Render,
            name: name.to_owned(),
            array_size,
            depends_on: Vec::new(),
            env: vec![("FARM_KEY".to_owned(), "k".repeat(value))],
            tags: BTreeMap::new(),
            blender: None,
        };
        assert_eq!(LIMITS.check(&job("a-render", Some(2), 10)), Ok(()));
        assert_eq!(LIMITS.check(&job("a-render", Some(100), 10)), Ok(()));
        assert_eq!(LIMITS.check(&job("a-render", None, 10)), Ok(()));
        for size in [0, 1, 101] {
            let err = LIMITS.check(&job("a-render", Some(size), 10)).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("an array job has 2 to 100 children, not {size}")
            );
        }
        // 1,000 characters in all: the name, the value and 24 of JSON punctuation.
        let fits = 1_000 - "FARM_KEY".len() - r#"{"name":"","value":""},"#.len();
        assert_eq!(LIMITS.check(&job("a-render", None, fits)), Ok(()));
        assert_eq!(
            LIMITS.check(&job("a-render", None, fits + 1)),
            Err(OverLimit::Environment {
                len: 1_001,
                max: 1_000
            })
        );
        for bad in ["", "-a", "a b", &"a".repeat(65)] {
            assert!(
                matches!(
                    LIMITS.check(&job(bad, None, 1)),
                    Err(OverLimit::JobName { .. })
                ),
                "{bad:?}"
            );
        }
    }

    /// SubmitJob's documented job name (up to 128 letters, digits, hyphens and underscores,
    /// the first a letter or digit), at this scheduler's length.
    fn batch_accepts(name: &str) -> bool {
        (1..=LIMITS.job_name_max).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    }
}

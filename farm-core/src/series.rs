//! Which Blender a job runs: a release series (`4.2`), the `blender=` tag that picks one, and
//! the farm's set of series (one render image and job definition each) with its default.
//!
//! A series is `major.minor`: the farm runs one pinned release of each (its image's lock, e.g.
//! `bpy==4.2.23` for 4.2), so a request names the series, never a patch release. A `.blend`
//! header records the same two numbers for the Blender that saved it (`v405` is 4.5), so the
//! two compare directly: [`newer_file_warning`].

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// A Blender release series, `major.minor`: `4.2`, `4.5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlenderSeries {
    major: u16,
    minor: u16,
}

/// The series a farm runs when its configuration names none: the renderer image's default
/// (`Dockerfile.renderer`, `infra/bpy/4.2.txt`).
pub const DEFAULT_SERIES: BlenderSeries = BlenderSeries::new(4, 2);

/// What `blender=` accepts, for messages.
pub const SERIES_SYNTAX: &str = "a Blender series as major.minor, e.g. 4.5";

/// A `blender=` value that is not a series.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{why}: give {SERIES_SYNTAX} (the farm runs one pinned release of each series)")]
pub struct SeriesSyntaxError {
    why: String,
}

impl BlenderSeries {
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }

    pub fn major(self) -> u16 {
        self.major
    }

    pub fn minor(self) -> u16 {
        self.minor
    }
}

impl fmt::Display for BlenderSeries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl FromStr for BlenderSeries {
    type Err = SeriesSyntaxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim();
        let err = |why: String| SeriesSyntaxError { why };
        let parts: Vec<&str> = text.split('.').collect();
        let number = |part: &str| -> Option<u16> {
            if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        match parts[..] {
            [major, minor] => match (number(major), number(minor)) {
                (Some(major), Some(minor)) if major > 0 => Ok(Self { major, minor }),
                _ => Err(err(format!("`{text}` is not a version number"))),
            },
            [_, _, _] if parts.iter().all(|p| number(p).is_some()) => Err(err(format!(
                "`{text}` names a patch release; use the series `{}.{}`",
                parts[0].trim_start_matches('0').parse::<u16>().unwrap_or(0),
                parts[1].parse::<u16>().unwrap_or(0)
            ))),
            _ => Err(err(format!("`{text}` is not a version number"))),
        }
    }
}

impl serde::Serialize for BlenderSeries {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for BlenderSeries {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The series a farm runs (one render job definition each) and the one a request without a
/// `blender=` tag gets. Always holds its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesChoice {
    default: BlenderSeries,
    supported: BTreeSet<BlenderSeries>,
}

/// A request for a series the farm does not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tag `{tag}={asked}` names a Blender this farm does not run: it runs {}; tag one of them (without the tag, jobs run {default})", list(supported))]
pub struct UnsupportedSeries {
    pub tag: &'static str,
    pub asked: BlenderSeries,
    pub supported: Vec<BlenderSeries>,
    pub default: BlenderSeries,
}

fn list(series: &[BlenderSeries]) -> String {
    series
        .iter()
        .map(|s| format!("Blender {s} (`blender={s}`)"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl SeriesChoice {
    /// `supported` plus `default`.
    pub fn new(default: BlenderSeries, supported: impl IntoIterator<Item = BlenderSeries>) -> Self {
        let mut supported: BTreeSet<BlenderSeries> = supported.into_iter().collect();
        supported.insert(default);
        Self { default, supported }
    }

    pub fn default_series(&self) -> BlenderSeries {
        self.default
    }

    /// Every series, oldest first.
    pub fn supported(&self) -> impl Iterator<Item = BlenderSeries> + '_ {
        self.supported.iter().copied()
    }

    pub fn contains(&self, series: BlenderSeries) -> bool {
        self.supported.contains(&series)
    }

    /// The series a request runs: the one it asked for (`blender=`), if the farm runs it, else
    /// the default.
    pub fn resolve(
        &self,
        asked: Option<BlenderSeries>,
    ) -> Result<BlenderSeries, UnsupportedSeries> {
        match asked {
            None => Ok(self.default),
            Some(series) if self.contains(series) => Ok(series),
            Some(asked) => Err(UnsupportedSeries {
                tag: crate::request::TAG_BLENDER,
                asked,
                supported: self.supported().collect(),
                default: self.default,
            }),
        }
    }
}

/// The first series that opens files saved by Blender 5 and later (their header and block
/// format changed): Blender 4.2 reads such a file as "not a blend file", 4.5 opens it with a
/// warning of data loss (both checked with the official builds, bpy 4.2.23 and 4.5.15, on a
/// file saved by 5.0.1).
pub const OPENS_BLENDER_5_FILES: BlenderSeries = BlenderSeries::new(4, 5);

/// A `.blend` the job's Blender cannot open at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the .blend was saved by Blender {saved_by}, whose files Blender {job} cannot open; {advice}"
)]
pub struct CannotOpen {
    pub saved_by: BlenderSeries,
    pub job: BlenderSeries,
    advice: String,
}

/// Refuses a job whose Blender (`job`) cannot open a file saved by `saved_by`, naming the
/// series of `choice` that would.
pub fn check_opens(
    saved_by: BlenderSeries,
    job: BlenderSeries,
    choice: Option<&SeriesChoice>,
) -> Result<(), CannotOpen> {
    if saved_by.major < 5 || job >= OPENS_BLENDER_5_FILES {
        return Ok(());
    }
    let fit = choice.and_then(|c| c.supported().find(|s| *s >= OPENS_BLENDER_5_FILES));
    let advice = match fit {
        Some(fit) => format!(
            "tag `{}={fit}` (Blender {fit} opens it, dropping what Blender {saved_by} added) or save the file with Blender {job}",
            crate::request::TAG_BLENDER
        ),
        None => format!("save the file with Blender {job}"),
    };
    Err(CannotOpen {
        saved_by,
        job,
        advice,
    })
}

/// The warning for a `.blend` saved by a newer Blender (`saved_by`, from its header) than the
/// job's series: that Blender may drop or change what it does not know. Names the series of
/// `choice` that would open it, if any. `None` when the file is not newer.
pub fn newer_file_warning(
    saved_by: BlenderSeries,
    job: BlenderSeries,
    choice: Option<&SeriesChoice>,
) -> Option<String> {
    if saved_by <= job {
        return None;
    }
    let advice = match choice {
        Some(choice) => match choice.supported().find(|s| *s >= saved_by) {
            Some(fit) => format!("tag `{}={fit}` to render it with Blender {fit}", crate::request::TAG_BLENDER),
            None => format!(
                "this farm runs no Blender that new ({}); save the file with Blender {} to render it as saved",
                choice
                    .supported()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                choice.supported().last().unwrap_or(job)
            ),
        },
        None => format!("render it with Blender {saved_by} or newer"),
    };
    Some(format!(
        "the .blend was saved by Blender {saved_by}, newer than this job's Blender {job}: \
         Blender {job} drops or changes what it does not know (new nodes, settings, data), \
         so frames may differ from what the artist saw; {advice}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V42: BlenderSeries = BlenderSeries::new(4, 2);
    const V45: BlenderSeries = BlenderSeries::new(4, 5);

    #[test]
    fn series_parse_as_major_minor_and_print_back() {
        for (text, want) in [
            ("4.2", V42),
            (" 4.5 ", V45),
            ("5.0", BlenderSeries::new(5, 0)),
            ("4.10", BlenderSeries::new(4, 10)),
        ] {
            let series: BlenderSeries = text.parse().unwrap();
            assert_eq!(series, want, "{text}");
        }
        assert_eq!(V45.to_string(), "4.5");
        assert!(
            V42 < V45
                && V45 < BlenderSeries::new(4, 10)
                && BlenderSeries::new(4, 10) < BlenderSeries::new(5, 0)
        );
    }

    #[test]
    fn bad_series_say_what_to_write() {
        for (text, needle) in [
            ("4", "`4` is not a version number"),
            ("", "`` is not a version number"),
            ("latest", "`latest` is not a version number"),
            ("4.x", "not a version number"),
            ("0.5", "not a version number"),
            ("-4.2", "not a version number"),
            ("4.2.23", "names a patch release; use the series `4.2`"),
            ("4.5.15", "use the series `4.5`"),
            ("4..2", "not a version number"),
        ] {
            let err = text.parse::<BlenderSeries>().unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(err.contains("major.minor"), "{text:?}: {err}");
        }
    }

    #[test]
    fn series_are_json_strings() {
        assert_eq!(serde_json::to_value(V45).unwrap(), "4.5");
        let back: BlenderSeries = serde_json::from_value("4.2".into()).unwrap();
        assert_eq!(back, V42);
        assert!(serde_json::from_value::<BlenderSeries>("four".into()).is_err());
    }

    #[test]
    fn the_choice_resolves_the_tag_or_the_default_and_names_what_it_runs() {
        let choice = SeriesChoice::new(V42, [V45]);
        assert_eq!(choice.supported().collect::<Vec<_>>(), [V42, V45]);
        assert_eq!(choice.resolve(None), Ok(V42));
        assert_eq!(choice.resolve(Some(V45)), Ok(V45));
        let err = choice.resolve(Some(BlenderSeries::new(4, 4))).unwrap_err();
        assert_eq!(err.supported, [V42, V45]);
        let message = err.to_string();
        assert!(message.contains("`blender=4.4`"), "{message}");
        assert!(
            message.contains("Blender 4.2 (`blender=4.2`), Blender 4.5 (`blender=4.5`)"),
            "{message}"
        );
        assert!(message.contains("jobs run 4.2"), "{message}");
    }

    #[test]
    fn blender_5_files_are_refused_below_4_5_naming_the_series_that_opens_them() {
        let choice = SeriesChoice::new(V42, [V45]);
        let v50 = BlenderSeries::new(5, 0);
        let err = check_opens(v50, V42, Some(&choice))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("saved by Blender 5.0, whose files Blender 4.2 cannot open"),
            "{err}"
        );
        assert!(err.contains("tag `blender=4.5`"), "{err}");
        let err = check_opens(
            BlenderSeries::new(5, 1),
            V42,
            Some(&SeriesChoice::new(V42, [])),
        )
        .unwrap_err()
        .to_string();
        assert!(err.ends_with("save the file with Blender 4.2"), "{err}");
        assert_eq!(check_opens(v50, V45, Some(&choice)), Ok(()));
        assert_eq!(check_opens(V45, V42, Some(&choice)), Ok(()));
        assert_eq!(check_opens(BlenderSeries::new(4, 3), V42, None), Ok(()));
    }

    #[test]
    fn a_file_saved_by_a_newer_blender_is_named_with_what_to_do() {
        let choice = SeriesChoice::new(V42, [V45]);
        assert_eq!(newer_file_warning(V42, V42, Some(&choice)), None);
        assert_eq!(
            newer_file_warning(BlenderSeries::new(3, 4), V42, Some(&choice)),
            None
        );
        let warning = newer_file_warning(V45, V42, Some(&choice)).unwrap();
        assert!(
            warning.contains("saved by Blender 4.5, newer than this job's Blender 4.2"),
            "{warning}"
        );
        assert!(warning.contains("tag `blender=4.5`"), "{warning}");
        // 4.3 is not an LTS the farm runs: the next one up that it does is advised.
        let warning = newer_file_warning(BlenderSeries::new(4, 3), V42, Some(&choice)).unwrap();
        assert!(warning.contains("tag `blender=4.5`"), "{warning}");
        let warning = newer_file_warning(BlenderSeries::new(5, 0), V45, Some(&choice)).unwrap();
        assert!(
            warning.contains("runs no Blender that new (4.2, 4.5)"),
            "{warning}"
        );
        let warning = newer_file_warning(BlenderSeries::new(5, 0), V45, None).unwrap();
        assert!(warning.contains("Blender 5.0 or newer"), "{warning}");
    }
}

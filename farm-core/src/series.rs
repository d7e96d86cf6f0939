//! Which Blender a job runs: a release series (`4.2`), the `blender=` tag that picks one (or
//! `auto`: the series of the file), the farm's set of series (one render image and job
//! definition each) with its default, and the one rule that chooses among them
//! ([`SeriesChoice::choose`]), used by the trigger, `farm submit`, `farm inspect`, `farm status`
//! and `farm render` alike.
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

/// The series a farm deployed from `infra/farm.yaml` runs, oldest first: one render image and
/// job definition each (the template's tests hold its `DefaultBlender` values to this list).
/// `farm submit` and `farm inspect` judge a file against it before anything is uploaded.
pub const FARM_SERIES: [BlenderSeries; 4] = [
    BlenderSeries::new(4, 2),
    BlenderSeries::new(4, 5),
    BlenderSeries::new(5, 0),
    BlenderSeries::new(5, 3),
];

/// What `blender=` accepts, for messages.
pub const SERIES_SYNTAX: &str = "a Blender series as major.minor, e.g. 4.5";

/// `blender=auto`: the series of the file (see [`SeriesChoice::choose`]).
pub const AUTO: &str = "auto";

/// A `blender=` value that is not a series.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{why}: give {SERIES_SYNTAX}, or `{AUTO}` for the series of the file (the farm runs one pinned release of each series)")]
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

/// JSON as the text `blender=` takes (`"4.5"`, `"auto"`): serialised with `Display`, read
/// back with `FromStr`.
macro_rules! serde_as_text {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

serde_as_text!(BlenderSeries);
serde_as_text!(BlenderPick);

/// What a request asks for: `blender=auto` (the series of the file) or one series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlenderPick {
    Auto,
    Series(BlenderSeries),
}

impl BlenderPick {
    /// The series it names; `None` for `auto`.
    pub fn series(self) -> Option<BlenderSeries> {
        match self {
            Self::Auto => None,
            Self::Series(series) => Some(series),
        }
    }
}

impl fmt::Display for BlenderPick {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str(AUTO),
            Self::Series(series) => series.fmt(f),
        }
    }
}

impl FromStr for BlenderPick {
    type Err = SeriesSyntaxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim().eq_ignore_ascii_case(AUTO) {
            return Ok(Self::Auto);
        }
        s.parse().map(Self::Series)
    }
}

/// The series a farm runs (one render job definition each) and what a request without a
/// `blender=` tag gets: `auto` or one series, which it then holds. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesChoice {
    default: BlenderPick,
    supported: BTreeSet<BlenderSeries>,
}

/// A request for a series the farm does not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tag `{tag}={asked}` names a Blender this farm does not run: it runs {}; tag one of them, or `{tag}={AUTO}` for the series of the file ({})", list(supported), without_tag(*default))]
pub struct UnsupportedSeries {
    pub tag: &'static str,
    pub asked: BlenderSeries,
    pub supported: Vec<BlenderSeries>,
    pub default: BlenderPick,
}

fn without_tag(default: BlenderPick) -> String {
    match default {
        BlenderPick::Auto => "without the tag, jobs run the series of the file".to_owned(),
        BlenderPick::Series(series) => format!("without the tag, jobs run {series}"),
    }
}

fn list(series: &[BlenderSeries]) -> String {
    series
        .iter()
        .map(|s| format!("Blender {s} (`blender={s}`)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `.blend` saved by a newer Blender than every series the farm runs, under `blender=auto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the .blend was saved by Blender {saved_by}, newer than every Blender this farm runs (the newest is {newest}): save it with Blender {newest} or older, or tag `blender={newest}` to render it with Blender {newest} anyway (it drops or changes what Blender {saved_by} added)")]
pub struct TooNew {
    pub saved_by: BlenderSeries,
    pub newest: BlenderSeries,
}

/// Why [`SeriesChoice::choose`] found no series for a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChooseError {
    #[error(transparent)]
    Unsupported(#[from] UnsupportedSeries),
    #[error(transparent)]
    TooNew(#[from] TooNew),
    #[error(transparent)]
    CannotOpen(#[from] CannotOpen),
}

/// Why a job runs the series it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// `blender=X.Y` named it.
    Asked,
    /// The farm's default is this one series (`DefaultBlender`).
    FarmDefault,
    /// `auto`: the series that saved the file.
    SavedBy(BlenderSeries),
    /// `auto`: the farm does not run the file's series; this is the oldest one newer than it.
    OldestNewer(BlenderSeries),
    /// `auto`: the file's header did not say which Blender saved it; the newest series.
    UnknownFile,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Asked => write!(f, "asked for with `blender=`"),
            Self::FarmDefault => write!(f, "the farm's default series (no `blender=` tag)"),
            Self::SavedBy(saved_by) => {
                write!(f, "`blender={AUTO}`: the file was saved by Blender {saved_by}")
            }
            Self::OldestNewer(saved_by) => write!(
                f,
                "`blender={AUTO}`: the file was saved by Blender {saved_by}, which the farm does not run; this is the oldest series newer than it"
            ),
            Self::UnknownFile => write!(
                f,
                "`blender={AUTO}`: the file does not say which Blender saved it; the newest series"
            ),
        }
    }
}

/// The series a request runs, why, and what the user should know (a file saved by a newer
/// Blender than an explicitly asked series).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub series: BlenderSeries,
    pub reason: Reason,
    pub warning: Option<String>,
}

impl SeriesChoice {
    /// `supported` plus the default's series, if it names one. `None` when that leaves no
    /// series at all (`auto` over nothing).
    pub fn new(
        default: BlenderPick,
        supported: impl IntoIterator<Item = BlenderSeries>,
    ) -> Option<Self> {
        let mut supported: BTreeSet<BlenderSeries> = supported.into_iter().collect();
        if let BlenderPick::Series(series) = default {
            supported.insert(series);
        }
        (!supported.is_empty()).then_some(Self { default, supported })
    }

    /// A farm deployed from the template with its default, `DefaultBlender=auto` ([`FARM_SERIES`]).
    pub fn deployed() -> Self {
        Self::new(BlenderPick::Auto, FARM_SERIES).expect("FARM_SERIES is not empty")
    }

    /// What a request without `blender=` gets.
    pub fn default_pick(&self) -> BlenderPick {
        self.default
    }

    /// Every series, oldest first.
    pub fn supported(&self) -> impl Iterator<Item = BlenderSeries> + '_ {
        self.supported.iter().copied()
    }

    pub fn contains(&self, series: BlenderSeries) -> bool {
        self.supported.contains(&series)
    }

    /// The newest series the farm runs.
    pub fn newest(&self) -> BlenderSeries {
        *self.supported.last().expect("a choice is never empty")
    }

    /// The series of a request that names none for a file whose Blender is unknown: the
    /// default's, or under `auto` the newest.
    pub fn fallback(&self) -> BlenderSeries {
        match self.default {
            BlenderPick::Series(series) => series,
            BlenderPick::Auto => self.newest(),
        }
    }

    /// The series a request runs, the one rule of the farm. `asked` is the `blender=` tag
    /// (`None`: the farm's default), `saved_by` the Blender in the file's header, when known.
    ///
    /// - A series (asked, or the farm's default) runs if the farm runs it; a file it cannot open
    ///   at all is refused ([`check_opens`]), a newer one is a warning ([`newer_file_warning`]).
    /// - `auto`: the farm's series of the file's own major.minor; else the oldest series newer
    ///   than the file; a file newer than every series is refused ([`TooNew`]); a file whose
    ///   header was not read runs the newest series (it opens the most files).
    pub fn choose(
        &self,
        asked: Option<BlenderPick>,
        saved_by: Option<BlenderSeries>,
    ) -> Result<Chosen, ChooseError> {
        let (pick, reason) = match asked {
            Some(pick) => (pick, Reason::Asked),
            None => (self.default, Reason::FarmDefault),
        };
        match (pick, saved_by) {
            (BlenderPick::Series(series), _) => {
                if !self.contains(series) {
                    return Err(UnsupportedSeries {
                        tag: crate::request::TAG_BLENDER,
                        asked: series,
                        supported: self.supported().collect(),
                        default: self.default,
                    }
                    .into());
                }
                let warning = match saved_by {
                    Some(saved_by) => {
                        check_opens(saved_by, series, Some(self))?;
                        newer_file_warning(saved_by, series, Some(self))
                    }
                    None => None,
                };
                Ok(Chosen {
                    series,
                    reason,
                    warning,
                })
            }
            (BlenderPick::Auto, None) => Ok(Chosen {
                series: self.fallback(),
                reason: Reason::UnknownFile,
                warning: None,
            }),
            (BlenderPick::Auto, Some(saved_by)) => {
                let (series, reason) = match self.supported().find(|s| *s >= saved_by) {
                    Some(series) if series == saved_by => (series, Reason::SavedBy(saved_by)),
                    Some(series) => (series, Reason::OldestNewer(saved_by)),
                    None => {
                        return Err(TooNew {
                            saved_by,
                            newest: self.newest(),
                        }
                        .into())
                    }
                };
                Ok(Chosen {
                    series,
                    reason,
                    warning: None,
                })
            }
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

    const V50: BlenderSeries = BlenderSeries::new(5, 0);
    const V53: BlenderSeries = BlenderSeries::new(5, 3);

    fn farm(default: BlenderPick) -> SeriesChoice {
        SeriesChoice::new(default, [V42, V45, V50, V53]).unwrap()
    }

    #[test]
    fn picks_parse_auto_or_a_series() {
        assert_eq!("auto".parse::<BlenderPick>(), Ok(BlenderPick::Auto));
        assert_eq!(" AUTO ".parse::<BlenderPick>(), Ok(BlenderPick::Auto));
        assert_eq!("5.3".parse::<BlenderPick>(), Ok(BlenderPick::Series(V53)));
        let err = "newest".parse::<BlenderPick>().unwrap_err().to_string();
        assert!(
            err.contains("or `auto` for the series of the file"),
            "{err}"
        );
        assert_eq!(BlenderPick::Auto.to_string(), "auto");
        assert_eq!(
            serde_json::to_value(BlenderPick::Series(V45)).unwrap(),
            "4.5"
        );
        let back: BlenderPick = serde_json::from_value("auto".into()).unwrap();
        assert_eq!(back, BlenderPick::Auto);
    }

    #[test]
    fn auto_runs_the_files_series_or_the_oldest_newer_one() {
        let farm = farm(BlenderPick::Auto);
        // (saved by, series run, why): files saved by the Blenders artists use.
        for (saved_by, want, reason) in [
            (
                BlenderSeries::new(3, 4),
                V42,
                Reason::OldestNewer(BlenderSeries::new(3, 4)),
            ),
            (V42, V42, Reason::SavedBy(V42)),
            (
                BlenderSeries::new(4, 3),
                V45,
                Reason::OldestNewer(BlenderSeries::new(4, 3)),
            ),
            (V45, V45, Reason::SavedBy(V45)),
            (V50, V50, Reason::SavedBy(V50)),
            (
                BlenderSeries::new(5, 1),
                V53,
                Reason::OldestNewer(BlenderSeries::new(5, 1)),
            ),
            (V53, V53, Reason::SavedBy(V53)),
        ] {
            for asked in [None, Some(BlenderPick::Auto)] {
                let chosen = farm.choose(asked, Some(saved_by)).unwrap();
                assert_eq!(chosen.series, want, "saved by {saved_by}, {asked:?}");
                assert_eq!(chosen.reason, reason, "saved by {saved_by}");
                assert_eq!(chosen.warning, None, "saved by {saved_by}");
            }
        }
        let why = Reason::OldestNewer(BlenderSeries::new(3, 4)).to_string();
        assert!(
            why.contains("saved by Blender 3.4, which the farm does not run"),
            "{why}"
        );
        // Unknown header: the newest series, which opens the most files.
        let chosen = farm.choose(None, None).unwrap();
        assert_eq!((chosen.series, chosen.reason), (V53, Reason::UnknownFile));
    }

    #[test]
    fn auto_refuses_a_file_newer_than_every_series_naming_both() {
        let farm = farm(BlenderPick::Auto);
        let err = farm
            .choose(None, Some(BlenderSeries::new(5, 4)))
            .unwrap_err();
        assert_eq!(
            err,
            ChooseError::TooNew(TooNew {
                saved_by: BlenderSeries::new(5, 4),
                newest: V53
            })
        );
        let message = err.to_string();
        assert!(
            message.contains(
                "saved by Blender 5.4, newer than every Blender this farm runs (the newest is 5.3)"
            ),
            "{message}"
        );
        assert!(message.contains("tag `blender=5.3`"), "{message}");
    }

    #[test]
    fn an_explicit_series_wins_with_the_warnings_of_today() {
        let farm = farm(BlenderPick::Auto);
        let chosen = farm
            .choose(Some(BlenderPick::Series(V42)), Some(V45))
            .unwrap();
        assert_eq!((chosen.series, chosen.reason), (V42, Reason::Asked));
        let warning = chosen.warning.unwrap();
        assert!(
            warning.contains("saved by Blender 4.5, newer than this job's Blender 4.2"),
            "{warning}"
        );
        assert!(warning.contains("tag `blender=4.5`"), "{warning}");
        // An older file on an explicit newer series: no warning.
        let chosen = farm
            .choose(Some(BlenderPick::Series(V53)), Some(V42))
            .unwrap();
        assert_eq!((chosen.series, chosen.warning), (V53, None));
        // A file newer than every series, asked explicitly: runs, with the warning.
        let chosen = farm
            .choose(
                Some(BlenderPick::Series(V53)),
                Some(BlenderSeries::new(5, 4)),
            )
            .unwrap();
        assert!(chosen.warning.unwrap().contains("runs no Blender that new"));
        // 4.2 cannot open a Blender 5 file at all.
        let err = farm
            .choose(Some(BlenderPick::Series(V42)), Some(V50))
            .unwrap_err();
        assert!(matches!(err, ChooseError::CannotOpen(_)), "{err}");
    }

    #[test]
    fn a_fixed_default_runs_like_an_asked_series_and_unknown_series_are_named() {
        let farm = farm(BlenderPick::Series(V42));
        let chosen = farm.choose(None, Some(V45)).unwrap();
        assert_eq!((chosen.series, chosen.reason), (V42, Reason::FarmDefault));
        assert!(chosen.warning.is_some());
        let err = farm
            .choose(Some(BlenderPick::Series(BlenderSeries::new(4, 4))), None)
            .unwrap_err();
        let ChooseError::Unsupported(unsupported) = &err else {
            panic!("{err}")
        };
        assert_eq!(unsupported.supported, [V42, V45, V50, V53]);
        let message = err.to_string();
        assert!(message.contains("`blender=4.4`"), "{message}");
        assert!(
            message.contains("Blender 4.2 (`blender=4.2`), Blender 4.5 (`blender=4.5`)"),
            "{message}"
        );
        assert!(
            message.contains("without the tag, jobs run 4.2"),
            "{message}"
        );
        let auto = self::farm(BlenderPick::Auto)
            .choose(Some(BlenderPick::Series(BlenderSeries::new(4, 4))), None)
            .unwrap_err()
            .to_string();
        assert!(
            auto.contains("without the tag, jobs run the series of the file"),
            "{auto}"
        );
        assert_eq!(SeriesChoice::new(BlenderPick::Auto, []), None);
        let fixed = SeriesChoice::new(BlenderPick::Series(V45), []).unwrap();
        assert_eq!(fixed.supported().collect::<Vec<_>>(), [V45]);
    }

    #[test]
    fn blender_5_files_are_refused_below_4_5_naming_the_series_that_opens_them() {
        let choice = SeriesChoice::new(BlenderPick::Series(V42), [V45]).unwrap();
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
            Some(&SeriesChoice::new(BlenderPick::Series(V42), []).unwrap()),
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
        let choice = SeriesChoice::new(BlenderPick::Series(V42), [V45]).unwrap();
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

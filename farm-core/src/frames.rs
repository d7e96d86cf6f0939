//! Frame lists: what a user asks to render.
//!
//! Two syntaxes reach the farm:
//! - `frame=N`, the tag the product is known for: frames `1..=N`.
//! - `frames=<list>`: single frames (`7`, `-3`), ranges (`1-24`, `-10--5`) and stepped ranges
//!   (`1-100:10`), separated by spaces (S3 tag values may not hold commas, and a `+` in a
//!   URL-encoded tagging string arrives as a space) or by commas.
//!
//! Both parse into a [`FrameList`]: sorted, de-duplicated, never empty, with one canonical
//! string form that parses back to the same list.

use std::fmt;

/// The lowest frame Blender accepts (`MINAFRAME`).
pub const MIN_FRAME: i32 = -1_048_574;
/// The highest frame Blender accepts (`MAXFRAME`).
pub const MAX_FRAME: i32 = 1_048_574;
/// The most frames one job may have, the one frame limit of the farm: the trigger refuses a
/// `FARM_MAX_FRAMES` above it, the template's `MaxFrames` has it as `MaxValue` (a test checks),
/// and the renderer and the zipper accept any job up to it.
pub const MAX_JOB_FRAMES: usize = 100_000;
/// Bound on how many frames one spec may expand to where no smaller limit is configured:
/// [`MAX_JOB_FRAMES`].
pub const DEFAULT_MAX_FRAMES: usize = MAX_JOB_FRAMES;

/// The accepted syntax, quoted in error messages.
pub const FRAMES_SYNTAX: &str =
    "frames like `7`, `1-24`, `1-100:10` or `-5-5`, separated by spaces or commas";

/// A sorted, de-duplicated, non-empty list of absolute frame numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FrameList {
    frames: Vec<i32>,
}

/// Why a frame spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameSpecError {
    #[error("the frame list is empty: give {FRAMES_SYNTAX}")]
    Empty,
    #[error(
        "`{item}` is not a frame, a range `A-B` or a stepped range `A-B:S`: give {FRAMES_SYNTAX}"
    )]
    Syntax { item: String },
    #[error("range `{item}` runs backwards: write the lower frame first (`{end}-{start}`)")]
    Reversed { item: String, start: i32, end: i32 },
    #[error("the step in `{item}` must be a whole number of at least 1")]
    BadStep { item: String },
    #[error("`{item}` is outside Blender's frame range {MIN_FRAME}..={MAX_FRAME}")]
    OutOfRange { item: String },
    #[error("the frame list expands to more than {max} frames: ask for fewer frames, or split them into several jobs")]
    TooMany { max: usize },
    #[error("`{value}` is not a frame count: `frame=N` takes a whole number from 1 to {max}")]
    BadCount { value: String, max: usize },
}

/// One item of a spec before expansion: `start..=end` every `step` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    start: i32,
    end: i32,
    step: u32,
}

impl Run {
    fn len(self) -> u64 {
        (i64::from(self.end) - i64::from(self.start)) as u64 / u64::from(self.step) + 1
    }

    fn frames(self) -> impl Iterator<Item = i32> {
        (self.start..=self.end).step_by(self.step as usize)
    }
}

impl FrameList {
    /// Parses a `frames=` list, refusing specs that expand past `max` frames without expanding
    /// them.
    pub fn parse(spec: &str, max: usize) -> Result<Self, FrameSpecError> {
        let items: Vec<&str> = spec
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|item| !item.is_empty())
            .collect();
        if items.is_empty() {
            return Err(FrameSpecError::Empty);
        }
        let runs = items
            .iter()
            .map(|item| parse_item(item))
            .collect::<Result<Vec<_>, _>>()?;
        let total = runs.iter().map(|run| run.len()).sum::<u64>();
        if total > max as u64 {
            return Err(FrameSpecError::TooMany { max });
        }
        let mut frames: Vec<i32> = runs.into_iter().flat_map(Run::frames).collect();
        frames.sort_unstable();
        frames.dedup();
        Ok(Self { frames })
    }

    /// Parses the value of a `frame=N` tag: frames `1..=N`.
    pub fn first(count: &str, max: usize) -> Result<Self, FrameSpecError> {
        let bad = || FrameSpecError::BadCount {
            value: count.to_owned(),
            max: max.min(MAX_FRAME as usize),
        };
        let n: i32 = count.trim().parse().map_err(|_| bad())?;
        if n < 1 {
            return Err(bad());
        }
        if n as usize > max {
            return Err(FrameSpecError::TooMany { max });
        }
        Ok(Self {
            frames: (1..=n).collect(),
        })
    }

    /// Builds a list from frames in any order; duplicates are merged.
    pub fn from_frames(frames: impl IntoIterator<Item = i32>) -> Result<Self, FrameSpecError> {
        let mut frames: Vec<i32> = frames.into_iter().collect();
        if frames.is_empty() {
            return Err(FrameSpecError::Empty);
        }
        if let Some(bad) = frames
            .iter()
            .find(|f| !(MIN_FRAME..=MAX_FRAME).contains(*f))
        {
            return Err(FrameSpecError::OutOfRange {
                item: bad.to_string(),
            });
        }
        frames.sort_unstable();
        frames.dedup();
        Ok(Self { frames })
    }

    pub fn as_slice(&self) -> &[i32] {
        &self.frames
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Always false: a frame list is never empty. Present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn first_frame(&self) -> i32 {
        self.frames[0]
    }

    pub fn last_frame(&self) -> i32 {
        self.frames[self.frames.len() - 1]
    }

    pub fn contains(&self, frame: i32) -> bool {
        self.frames.binary_search(&frame).is_ok()
    }

    /// The canonical form, e.g. `1-24 30-50:5 99`; parsing it gives back this list.
    pub fn canonical(&self) -> String {
        compact(&self.frames, " ")
    }
}

impl fmt::Display for FrameList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

/// Writes sorted frames compactly as runs (`1-5`, `10-20:5`, `7`) joined by `sep`: the canonical
/// frame-list form, also used to name missing frames in errors.
pub fn compact(frames: &[i32], sep: &str) -> String {
    arithmetic_runs(frames)
        .into_iter()
        .map(|run| match run {
            Run { start, end, .. } if start == end => start.to_string(),
            Run {
                start,
                end,
                step: 1,
            } => format!("{start}-{end}"),
            Run { start, end, step } => format!("{start}-{end}:{step}"),
        })
        .collect::<Vec<_>>()
        .join(sep)
}

/// Splits sorted frames into arithmetic runs, greedily from the left. Two frames one apart form
/// a run; frames further apart need three to form a stepped run.
fn arithmetic_runs(frames: &[i32]) -> Vec<Run> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < frames.len() {
        let start = frames[i];
        let mut end_index = i;
        if i + 1 < frames.len() {
            let step = frames[i + 1] - start;
            let long_enough =
                step == 1 || (i + 2 < frames.len() && frames[i + 2] - frames[i + 1] == step);
            if long_enough {
                end_index = i + 1;
                while end_index + 1 < frames.len()
                    && frames[end_index + 1] - frames[end_index] == step
                {
                    end_index += 1;
                }
            }
        }
        let end = frames[end_index];
        let step = if end_index > i {
            (frames[i + 1] - start) as u32
        } else {
            1
        };
        runs.push(Run { start, end, step });
        i = end_index + 1;
    }
    runs
}

fn parse_item(item: &str) -> Result<Run, FrameSpecError> {
    let syntax = || FrameSpecError::Syntax {
        item: item.to_owned(),
    };
    let (range, step) = match item.split_once(':') {
        Some((range, step)) => (range, Some(step)),
        None => (item, None),
    };
    let (start, rest) = leading_number(range).ok_or_else(syntax)?;
    let end = match rest {
        "" => start,
        _ => {
            let (end, rest) = rest
                .strip_prefix('-')
                .and_then(leading_number)
                .ok_or_else(syntax)?;
            if !rest.is_empty() {
                return Err(syntax());
            }
            end
        }
    };
    let step = match step {
        None => 1,
        Some(_) if start == end && rest.is_empty() => return Err(syntax()),
        Some(step) if step.bytes().all(|b| b.is_ascii_digit()) && !step.is_empty() => {
            match step.parse::<u32>() {
                Ok(step) if step >= 1 => step,
                _ => {
                    return Err(FrameSpecError::BadStep {
                        item: item.to_owned(),
                    })
                }
            }
        }
        Some(_) => {
            return Err(FrameSpecError::BadStep {
                item: item.to_owned(),
            })
        }
    };
    let in_range = |n: i64| (i64::from(MIN_FRAME)..=i64::from(MAX_FRAME)).contains(&n);
    if !in_range(start) || !in_range(end) {
        return Err(FrameSpecError::OutOfRange {
            item: item.to_owned(),
        });
    }
    let (start, end) = (start as i32, end as i32);
    if start > end {
        return Err(FrameSpecError::Reversed {
            item: item.to_owned(),
            start,
            end,
        });
    }
    Ok(Run { start, end, step })
}

/// Reads an optionally negative decimal number from the front of `s`, returning it and the rest.
/// Numbers too long for `i64` read as `i64::MAX`, so they fail the range check, not the syntax one.
fn leading_number(s: &str) -> Option<(i64, &str)> {
    let sign_len = usize::from(s.starts_with('-'));
    let digits = s[sign_len..].bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (number, rest) = s.split_at(sign_len + digits);
    let value = number
        .parse::<i64>()
        .unwrap_or(if sign_len == 1 { i64::MIN } else { i64::MAX });
    Some((value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(spec: &str) -> Vec<i32> {
        FrameList::parse(spec, DEFAULT_MAX_FRAMES)
            .unwrap_or_else(|e| panic!("{spec:?}: {e}"))
            .as_slice()
            .to_vec()
    }

    #[test]
    fn every_syntax_parses() {
        let cases: &[(&str, &[i32])] = &[
            ("7", &[7]),
            ("0", &[0]),
            ("-3", &[-3]),
            ("1-5", &[1, 2, 3, 4, 5]),
            ("1-10:3", &[1, 4, 7, 10]),
            ("1-11:3", &[1, 4, 7, 10]),
            ("-5--3", &[-5, -4, -3]),
            ("-2-2", &[-2, -1, 0, 1, 2]),
            ("-10-10:10", &[-10, 0, 10]),
            ("1 3 5", &[1, 3, 5]),
            ("1,3,5", &[1, 3, 5]),
            ("1, 3 ,5", &[1, 3, 5]),
            ("  1-3   10  ", &[1, 2, 3, 10]),
            ("5 1 3", &[1, 3, 5]),
            ("1-5 3-7", &[1, 2, 3, 4, 5, 6, 7]),
            ("1 1 1-2 2", &[1, 2]),
            ("1-10:2 2-10:2", &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            ("3-3", &[3]),
            ("3-3:5", &[3]),
            ("-1048574", &[MIN_FRAME]),
            ("1048574", &[MAX_FRAME]),
        ];
        for (spec, want) in cases {
            assert_eq!(frames(spec), *want, "spec {spec:?}");
        }
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let cases: &[(&str, FrameSpecError)] = &[
            ("", FrameSpecError::Empty),
            (" , ", FrameSpecError::Empty),
            ("abc", FrameSpecError::Syntax { item: "abc".into() }),
            ("1e9", FrameSpecError::Syntax { item: "1e9".into() }),
            ("1.5", FrameSpecError::Syntax { item: "1.5".into() }),
            ("+3", FrameSpecError::Syntax { item: "+3".into() }),
            ("1-", FrameSpecError::Syntax { item: "1-".into() }),
            ("-", FrameSpecError::Syntax { item: "-".into() }),
            ("1--", FrameSpecError::Syntax { item: "1--".into() }),
            (
                "1-2-3",
                FrameSpecError::Syntax {
                    item: "1-2-3".into(),
                },
            ),
            (
                "1..5",
                FrameSpecError::Syntax {
                    item: "1..5".into(),
                },
            ),
            ("7:2", FrameSpecError::Syntax { item: "7:2".into() }),
            (
                "5-1",
                FrameSpecError::Reversed {
                    item: "5-1".into(),
                    start: 5,
                    end: 1,
                },
            ),
            (
                "-1--5",
                FrameSpecError::Reversed {
                    item: "-1--5".into(),
                    start: -1,
                    end: -5,
                },
            ),
            (
                "1-10:0",
                FrameSpecError::BadStep {
                    item: "1-10:0".into(),
                },
            ),
            (
                "1-10:",
                FrameSpecError::BadStep {
                    item: "1-10:".into(),
                },
            ),
            (
                "1-10:-2",
                FrameSpecError::BadStep {
                    item: "1-10:-2".into(),
                },
            ),
            (
                "1-10:x",
                FrameSpecError::BadStep {
                    item: "1-10:x".into(),
                },
            ),
            (
                "1048575",
                FrameSpecError::OutOfRange {
                    item: "1048575".into(),
                },
            ),
            (
                "-1048575",
                FrameSpecError::OutOfRange {
                    item: "-1048575".into(),
                },
            ),
            (
                "1-99999999999999999999999",
                FrameSpecError::OutOfRange {
                    item: "1-99999999999999999999999".into(),
                },
            ),
            (
                "1-1000000",
                FrameSpecError::TooMany {
                    max: DEFAULT_MAX_FRAMES,
                },
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(
                FrameList::parse(spec, DEFAULT_MAX_FRAMES).as_ref(),
                Err(want),
                "spec {spec:?}"
            );
        }
    }

    #[test]
    fn huge_specs_are_refused_before_expanding() {
        // Expanding first would allocate four million frames; the bound is checked on the
        // sizes of the items instead.
        let spec = "-1048574-1048574 -1048574-1048574";
        assert_eq!(
            FrameList::parse(spec, DEFAULT_MAX_FRAMES),
            Err(FrameSpecError::TooMany {
                max: DEFAULT_MAX_FRAMES
            })
        );
        assert_eq!(
            FrameList::parse("1-11", 10),
            Err(FrameSpecError::TooMany { max: 10 })
        );
        assert_eq!(FrameList::parse("1-10", 10).map(|l| l.len()), Ok(10));
    }

    #[test]
    fn frame_count_tag_means_one_to_n() {
        let list = FrameList::first("120", DEFAULT_MAX_FRAMES).unwrap();
        assert_eq!(list.len(), 120);
        assert_eq!((list.first_frame(), list.last_frame()), (1, 120));
        assert_eq!(list.canonical(), "1-120");
        for bad in ["0", "-5", "abc", "", "1.5", "1e3", "2 3"] {
            assert!(
                matches!(
                    FrameList::first(bad, DEFAULT_MAX_FRAMES),
                    Err(FrameSpecError::BadCount { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            FrameList::first("100001", DEFAULT_MAX_FRAMES),
            Err(FrameSpecError::TooMany {
                max: DEFAULT_MAX_FRAMES
            })
        );
    }

    #[test]
    fn canonical_form_is_compact_and_round_trips() {
        let cases = [
            ("1-24", "1-24"),
            ("24 23 22 21", "21-24"),
            ("1,2,3,10,20,30,31", "1-3 10-30:10 31"),
            ("1-100:10", "1-91:10"),
            ("-5--1 0", "-5-0"),
            ("7", "7"),
            ("1 3", "1 3"),
            ("1 2", "1-2"),
            ("1-10:2 2-10:2", "1-10"),
            ("1 5 9 100", "1-9:4 100"),
        ];
        for (spec, canonical) in cases {
            let list = FrameList::parse(spec, DEFAULT_MAX_FRAMES).unwrap();
            assert_eq!(list.canonical(), canonical, "spec {spec:?}");
            assert_eq!(
                FrameList::parse(canonical, DEFAULT_MAX_FRAMES).unwrap(),
                list
            );
        }
    }

    #[test]
    fn canonical_form_round_trips_for_irregular_lists() {
        // A deterministic pseudo-random walk over many shapes of list.
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..500 {
            let mut frames = Vec::new();
            let mut frame = -50i32;
            for _ in 0..(seed % 40 + 1) {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                frame += (seed >> 60) as i32 + 1;
                frames.push(frame);
            }
            let list = FrameList::from_frames(frames).unwrap();
            assert_eq!(
                FrameList::parse(&list.canonical(), DEFAULT_MAX_FRAMES).unwrap(),
                list
            );
        }
    }

    #[test]
    fn compact_lists_missing_frames_as_ranges() {
        assert_eq!(compact(&[1, 2, 3, 7, 9, 11, 20], ", "), "1-3, 7-11:2, 20");
        assert_eq!(compact(&[], ", "), "");
    }
}

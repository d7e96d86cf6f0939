//! Which render engine a job runs: the scene's own (Cycles, EEVEE or Workbench), unless the
//! request asks for one (`engine=` tag, `farm render --engine`). This is the one home of that
//! rule; the trigger and `farm render` ask [`choose`], the renderer passes the answer to Blender.
//!
//! EEVEE and Workbench render on the CPU through Mesa's llvmpipe over EGL with no display (the
//! renderer image carries Mesa's EGL and DRI libraries); Blender needs no variable for it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A render engine the farm runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// Cycles on the CPU. Jobs written before the farm chose engines ran it.
    #[default]
    Cycles,
    /// EEVEE (EEVEE Next on Blender 4.2 to 4.5).
    Eevee,
    /// Workbench.
    Workbench,
}

/// `engine=` names no engine the farm runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a render engine the farm runs: use cycles, eevee or workbench")]
pub struct UnknownEngine(pub String);

impl Engine {
    const ALL: [Self; 3] = [Self::Cycles, Self::Eevee, Self::Workbench];

    /// The name the tag, the flag, `job.json` and `FARM_ENGINE` use: `cycles`, `eevee`,
    /// `workbench`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cycles => "cycles",
            Self::Eevee => "eevee",
            Self::Workbench => "workbench",
        }
    }

    /// The name people read: `Cycles`, `EEVEE`, `Workbench`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Cycles => "Cycles",
            Self::Eevee => "EEVEE",
            Self::Workbench => "Workbench",
        }
    }

    /// Blender's identifiers of this engine, in the order the render script tries them: the
    /// first one the running Blender knows is set. EEVEE is `BLENDER_EEVEE_NEXT` on 4.2 to 4.5
    /// and `BLENDER_EEVEE` before 4.2 and again from 5.0.
    pub fn blender_ids(self) -> &'static [&'static str] {
        match self {
            Self::Cycles => &["CYCLES"],
            Self::Eevee => &["BLENDER_EEVEE_NEXT", "BLENDER_EEVEE"],
            Self::Workbench => &["BLENDER_WORKBENCH"],
        }
    }

    /// The engine a scene's engine identifier names, as the farm's Blender opens the file.
    /// Blender 2.80 and later open a 2.7x scene set to Blender Internal (`BLENDER_RENDER`) as
    /// EEVEE (`blo_do_versions_280`). `None`: an engine the farm's Blender does not have (an
    /// add-on's, the 2.7x game engine's).
    pub fn from_blender_id(id: &str) -> Option<Self> {
        match id {
            "CYCLES" => Some(Self::Cycles),
            "BLENDER_EEVEE" | "BLENDER_EEVEE_NEXT" | "BLENDER_RENDER" => Some(Self::Eevee),
            "BLENDER_WORKBENCH" => Some(Self::Workbench),
            _ => None,
        }
    }
}

impl FromStr for Engine {
    type Err = UnknownEngine;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|e| e.name() == wanted)
            .ok_or_else(|| UnknownEngine(s.to_owned()))
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The active scene as far as the engine choice needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SceneEngine<'a> {
    /// The scene's name.
    pub scene: &'a str,
    /// The scene's engine identifier (`BLENDER_EEVEE_NEXT`...).
    pub id: &'a str,
}

/// The engine a job runs, and what the user should know about the choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineChoice {
    pub engine: Engine,
    /// One sentence when the farm does not run the scene's own engine.
    pub note: Option<String>,
}

/// The engine a job runs: the one asked for (`engine=`), else the scene's own. A scene set to
/// an engine the farm does not have, and a file whose scene could not be read, render with
/// Cycles, with a note saying so.
pub fn choose(asked: Option<Engine>, scene: Option<SceneEngine<'_>>) -> EngineChoice {
    let own = scene.map(|s| (s, Engine::from_blender_id(s.id)));
    match (asked, own) {
        (Some(engine), Some((scene, Some(own)))) if own != engine => EngineChoice {
            engine,
            note: Some(format!(
                "scene `{}` is set to {}; rendered with {} as asked (`engine={}`)",
                scene.scene,
                own.label(),
                engine.label(),
                engine.name()
            )),
        },
        (Some(engine), _) => EngineChoice { engine, note: None },
        (None, Some((_, Some(own)))) => EngineChoice {
            engine: own,
            note: None,
        },
        (None, Some((scene, None))) => EngineChoice {
            engine: Engine::Cycles,
            note: Some(format!(
                "scene `{}` is set to the render engine `{}`, which the farm's Blender does not have; rendered with Cycles (tag `engine=eevee` or `engine=workbench` to choose another)",
                scene.scene, scene.id
            )),
        },
        (None, None) => EngineChoice {
            engine: Engine::Cycles,
            note: Some(
                "the scene's render engine could not be read; rendered with Cycles (tag `engine=eevee` or `engine=workbench` to choose another)".to_owned(),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene(id: &str) -> Option<SceneEngine<'_>> {
        Some(SceneEngine { scene: "Shot", id })
    }

    #[test]
    fn the_scenes_own_engine_runs() {
        for (id, engine) in [
            ("CYCLES", Engine::Cycles),
            ("BLENDER_EEVEE", Engine::Eevee),
            ("BLENDER_EEVEE_NEXT", Engine::Eevee),
            ("BLENDER_WORKBENCH", Engine::Workbench),
            ("BLENDER_RENDER", Engine::Eevee),
        ] {
            assert_eq!(
                choose(None, scene(id)),
                EngineChoice { engine, note: None },
                "{id}"
            );
        }
    }

    #[test]
    fn the_tag_overrides_and_says_so() {
        let choice = choose(Some(Engine::Cycles), scene("BLENDER_EEVEE_NEXT"));
        assert_eq!(choice.engine, Engine::Cycles);
        assert_eq!(
            choice.note.as_deref(),
            Some("scene `Shot` is set to EEVEE; rendered with Cycles as asked (`engine=cycles`)")
        );
        // Asking for the scene's own engine needs no note; nor does a file that was not read.
        assert_eq!(
            choose(Some(Engine::Eevee), scene("BLENDER_EEVEE")).note,
            None
        );
        assert_eq!(
            choose(Some(Engine::Workbench), None),
            EngineChoice {
                engine: Engine::Workbench,
                note: None
            }
        );
    }

    #[test]
    fn an_engine_the_farm_lacks_renders_with_cycles_and_a_note() {
        let choice = choose(None, scene("LUXCORE"));
        assert_eq!(choice.engine, Engine::Cycles);
        assert!(choice.note.unwrap().contains("`LUXCORE`"));
        let choice = choose(None, None);
        assert_eq!(choice.engine, Engine::Cycles);
        assert!(choice.note.unwrap().contains("could not be read"));
    }

    #[test]
    fn names_parse_and_blender_ids_cover_every_series() {
        assert_eq!(" EEVEE ".parse(), Ok(Engine::Eevee));
        assert_eq!("workbench".parse(), Ok(Engine::Workbench));
        assert_eq!("Cycles".parse(), Ok(Engine::Cycles));
        let err = "octane".parse::<Engine>().unwrap_err().to_string();
        assert!(err.contains("cycles, eevee or workbench"), "{err}");
        for engine in Engine::ALL {
            assert_eq!(engine.name().parse(), Ok(engine));
            for id in engine.blender_ids() {
                assert_eq!(Engine::from_blender_id(id), Some(engine), "{id}");
            }
        }
        assert_eq!(serde_json::to_string(&Engine::Eevee).unwrap(), "\"eevee\"");
    }
}

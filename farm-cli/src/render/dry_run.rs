//! `farm render --dry-run`: the plan of a local render.

use farm_core::frames::compact;
use farm_core::Plan;

/// What `farm render --dry-run` prints: the plan, with nothing rendered, written or installed.
pub(super) struct DryRun<'a> {
    pub(super) plan: &'a Plan,
    pub(super) to_render: usize,
    pub(super) workers: usize,
    pub(super) threads: usize,
    pub(super) blender: &'a str,
    pub(super) engine: farm_core::engine::Engine,
    pub(super) out: &'a std::path::Path,
}

impl DryRun<'_> {
    pub(super) fn text(&self) -> String {
        let frames = self.plan.frames();
        format!(
            "dry run: nothing rendered\n\
             frames:  {} ({}): {} to render, {} already rendered from this content\n\
             chunks:  {} of up to {} frame(s), {} at once, {} thread(s) each\n\
             blender: {}\n\
             engine:  {}\n\
             output:  {}/frames/, {}/frames.zip\n",
            frames.len(),
            compact(frames.as_slice(), " "),
            self.to_render,
            frames.len() - self.to_render,
            self.plan.chunk_count(),
            self.plan.chunk_size(),
            self.workers,
            self.threads,
            self.blender,
            self.engine.label(),
            self.out.display(),
            self.out.display(),
        )
    }
}

//! The job model: what a job is made of and which frames belong to it, decided in one place.
//!
//! - [`submit`]: the only code that submits jobs. [`submit_request`] (the trigger) submits a
//!   request's render job and the zip job that depends on it at most once, stops the key's
//!   previous job, and writes `<key>/job.json`; [`submit_retry`] (`farm retry`) resubmits the
//!   frames a job lacks.
//! - [`scan`]: the one frame scan. [`scan_frames`] says of each expected frame of a job whether
//!   the store holds it for *this* job (current), holds only another version's or format's
//!   object (stale), or nothing (missing). The renderer, the local farm, the zipper,
//!   `farm status` and `farm retry` all use it.
//!
//! - [`blend`]: reading an uploaded `.blend` where it lies, by ranged reads (the trigger and
//!   the dependency check).
//! - [`scene`]: `frames=scene`, the active scene's own range and step read from the upload by
//!   `farm-blend` (the trigger and `farm submit --frames scene`).
//! - [`deps`]: the pre-flight check of a project's dependencies (textures, libraries and
//!   their own files...) in the bucket before any job, and the list the renderer downloads.
//! - [`trigger`]: the trigger's decision on an upload ([`trigger::decide`]), pure: tags, what
//!   was read of the upload and the farm's limits in, nothing / reject / submit out.
//! - [`ticket`]: the job contract ([`JobTicket`]): what a render or zip job is told, its
//!   environment written and read back in one place (long frame lists by reference), and the
//!   job's identity ([`OutputVersion`]).
//! - [`receipt`]: the job's `receipt.json`, summed from its task records ([`tasks`]) by the
//!   zip job and again by a movie scene's movie job.
//! - [`lookup`]: the one object lookup, which of many keys the store holds (listing a folder
//!   when several of its keys are wanted), for the dependency check and `farm submit`.
//!
//! Like `farm-core`, this crate only talks to the ports ([`farm_core::Storage`],
//! [`farm_core::scheduler::Scheduler`]); it has no AWS SDK and runs no process.

pub mod blend;
pub mod deps;
pub mod lookup;
pub mod receipt;
pub mod scan;
pub mod scene;
pub mod submit;
pub mod tasks;
pub mod ticket;
pub mod trigger;

pub use scan::{
    scan_chunk_frames, scan_frames, FrameObject, FrameScan, FrameState, OutputVersion, ScanError,
};
pub use submit::{
    request_job_name, submit_request, submit_request_with, submit_retry, submitted_manifest,
    write_rejected_manifest, write_rejection, JobExtras, MarkerState, RequestMarker, Scouted,
    SourceObject, Submission, SubmitError, PENDING_MARKER_TAKEOVER,
};
pub use ticket::{JobArgs, JobTicket, Scout, TicketError};

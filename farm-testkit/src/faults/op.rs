//! The operations of the ports that a [`super::Fault`] aims at.

// The ports' names, for the doc links below.
#[allow(unused_imports)]
use super::*;

/// An operation of the storage or scheduler port, for a [`Fault`] to aim at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Op {
    Head,
    Get,
    /// [`Storage::get_stream`].
    GetStream,
    /// [`Storage::get_range`].
    GetRange,
    Download,
    Put,
    UploadFile,
    CreateIfAbsent,
    /// [`Storage::list`] (its key is the prefix).
    List,
    Delete,
    /// [`Storage::get_tags`].
    GetTags,
    /// [`Storage::put_tags`].
    PutTags,
    /// [`Storage::open_uploads`] (its key is the prefix).
    OpenUploads,
    /// [`StreamUpload::write`] (its key is the upload's).
    UploadWrite,
    /// [`StreamUpload::finish`].
    UploadFinish,
    /// [`Scheduler::submit`] (its key is the job's name).
    Submit,
    /// [`Scheduler::describe`] (no key).
    Describe,
    /// [`Scheduler::find_by_name`] (its key is the name).
    FindByName,
    /// [`Scheduler::cancel`] (its key is the job id).
    Cancel,
}

impl Op {
    /// The operations that read an object's content.
    pub const READS: [Op; 4] = [Op::Get, Op::GetStream, Op::GetRange, Op::Download];
    /// The operations that create, replace or remove an object.
    pub const WRITES: [Op; 6] = [
        Op::Put,
        Op::UploadFile,
        Op::CreateIfAbsent,
        Op::Delete,
        Op::UploadWrite,
        Op::UploadFinish,
    ];

    pub(super) fn name(self) -> &'static str {
        match self {
            Op::Head => "head",
            Op::Get => "get",
            Op::GetStream => "get stream",
            Op::GetRange => "get range",
            Op::Download => "download",
            Op::Put => "put",
            Op::UploadFile => "upload file",
            Op::CreateIfAbsent => "create if absent",
            Op::List => "list",
            Op::Delete => "delete",
            Op::GetTags => "get tags",
            Op::PutTags => "put tags",
            Op::OpenUploads => "list uploads",
            Op::UploadWrite => "upload part",
            Op::UploadFinish => "complete upload",
            Op::Submit => "submit job",
            Op::Describe => "describe jobs",
            Op::FindByName => "list jobs",
            Op::Cancel => "terminate job",
        }
    }
}

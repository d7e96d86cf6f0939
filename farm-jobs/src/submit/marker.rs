//! The request marker, `<key>/requests/<fingerprint>.json`: claimed with `If-None-Match: *`,
//! taken over when a dead delivery left it pending (see the [`super`] module docs).

use std::time::Duration;

use bytes::Bytes;
use farm_core::manifest::JobManifest;
use farm_core::series::BlenderPick;
use farm_core::storage::{get_json, put_json, PutOptions, StorageError};
use farm_core::{JobKeys, Storage};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use farm_core::deps::DependencyRecord;
use farm_core::engine::Engine;
use farm_core::layout::request_fingerprint;
use farm_core::RenderRequest;

use super::{SourceObject, SubmitError};

/// How old a `pending` marker must be before another delivery may take it over. Must exceed the
/// Lambda timeout (60 s in `infra/farm.yaml`): a younger marker may belong to a live invocation.
pub const PENDING_MARKER_TAKEOVER: Duration = Duration::from_secs(120);

/// How many takeovers of stale pending markers one request allows before giving up.
const MAX_MARKER_GENERATIONS: u32 = 5;

/// Rounds of create-then-find-it-gone before giving up (other deliveries rolling back).
const MAX_MARKER_ATTEMPTS: u32 = 10;

/// Where a request marker is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerState {
    /// Created; the jobs are being submitted (or the submitter died, see the module docs).
    Pending,
    /// Both jobs were submitted; `manifest` holds their ids.
    Submitted,
}

/// The body of `<key>/requests/<fingerprint>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestMarker {
    pub state: MarkerState,
    /// When the marker was created (kept when it is rewritten `submitted`).
    pub created: Timestamp,
    pub key: String,
    /// Version id or ETag of the object.
    pub version: String,
    pub frames: String,
    pub chunk_size: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The Blender series the request asked for (`blender=`, or `auto`), if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blender: Option<BlenderPick>,
    /// `estimate=N`: the request is a scout job's, which writes no manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<u16>,
    /// The manifest written for the submitted jobs (state `submitted` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<JobManifest>,
}

impl RequestMarker {
    /// The fingerprint of `request` for `source` bound to `dependencies`' list
    /// ([`request_fingerprint`]), and the `pending` marker a delivery claims it with.
    pub(super) fn pending(
        source: &SourceObject,
        request: &RenderRequest,
        dependencies: Option<&DependencyRecord>,
    ) -> (String, Self) {
        let format = request.format.map(|f| f.blender_name().to_owned());
        let frames = request.plan.frames().canonical();
        let mut bound = match dependencies.and_then(|d| d.list.as_deref()) {
            Some(list) => format!("{}+{list}", source.version()),
            None => source.version().to_owned(),
        };
        // A scout is another request than the job it estimates: the tags without `estimate=`
        // then submit the job.
        if let Some(samples) = request.estimate {
            bound.push_str(&format!("+estimate={samples}"));
        }
        let fingerprint = request_fingerprint(
            &bound,
            &frames,
            request.plan.chunk_size(),
            format.as_deref(),
            request.blender.map(|b| b.to_string()).as_deref(),
            request
                .engine
                .filter(|e| *e != Engine::Cycles)
                .map(Engine::name),
        );
        let pending = Self {
            state: MarkerState::Pending,
            created: Timestamp::now(),
            key: source.key.clone(),
            version: source.version().to_owned(),
            frames,
            chunk_size: request.plan.chunk_size(),
            format,
            blender: request.blender,
            estimate: request.estimate,
            manifest: None,
        };
        (fingerprint, pending)
    }
}

pub(super) enum Claim {
    /// Ours to submit; `takeover` when an earlier generation was left pending.
    Owned { marker: String, takeover: bool },
    /// Pending, young: another delivery may still be submitting.
    InFlight { marker: String, age: Duration },
    Taken {
        marker: String,
        existing: Box<RequestMarker>,
    },
}

fn marker_key(keys: &JobKeys, fingerprint: &str, generation: u32) -> String {
    if generation == 0 {
        keys.request_marker(fingerprint)
    } else {
        keys.request_marker(&format!("{fingerprint}.{generation}"))
    }
}

pub(super) async fn claim_marker<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    fingerprint: &str,
    pending: &RequestMarker,
) -> Result<Claim, SubmitError> {
    let body = serde_json::to_vec_pretty(pending).map_err(|source| StorageError::Json {
        key: keys.request_marker(fingerprint),
        source,
    })?;
    let body = Bytes::from(body);
    let options = PutOptions::content_type("application/json");
    let mut generation = 0;
    for _ in 0..MAX_MARKER_ATTEMPTS {
        let marker = marker_key(keys, fingerprint, generation);
        if storage
            .create_if_absent(&marker, body.clone(), &options)
            .await?
        {
            return Ok(Claim::Owned {
                marker,
                takeover: generation > 0,
            });
        }
        let existing = match get_json::<RequestMarker>(storage, &marker).await {
            Ok(existing) => Box::new(existing),
            // Deleted since: a failed submission rolled back. Try to create it again.
            Err(StorageError::NotFound { .. }) => continue,
            // Not ours to judge: treat as taken rather than risk a second job.
            Err(StorageError::Json { .. }) => {
                tracing::warn!(marker = %marker, "request marker is not valid JSON; treating the request as submitted");
                return Ok(Claim::Taken {
                    existing: Box::new(pending.clone()),
                    marker,
                });
            }
            Err(err) => return Err(err.into()),
        };
        let age = Timestamp::now().duration_since(existing.created);
        if existing.state != MarkerState::Pending {
            return Ok(Claim::Taken { marker, existing });
        }
        if age <= jiff::SignedDuration::try_from(PENDING_MARKER_TAKEOVER).unwrap_or_default() {
            return Ok(Claim::InFlight {
                marker,
                age: Duration::try_from(age).unwrap_or_default(),
            });
        }
        if generation + 1 >= MAX_MARKER_GENERATIONS {
            tracing::error!(marker = %marker, "request markers stayed pending through {MAX_MARKER_GENERATIONS} takeovers; giving up without submitting");
            return Ok(Claim::Taken { marker, existing });
        }
        tracing::warn!(
            marker = %marker,
            age_seconds = age.as_secs(),
            "request marker has been pending for longer than any submitter lives; taking it over"
        );
        generation += 1;
    }
    Err(SubmitError::MarkerContention {
        key: marker_key(keys, fingerprint, generation),
        attempts: MAX_MARKER_ATTEMPTS,
    })
}

/// A duplicate whose earlier submission wrote its marker but not `job.json` (S3 failed in
/// between) writes the missing manifest. Best effort: failures are only logged.
pub(super) async fn repair_manifest<S: Storage>(
    storage: &S,
    keys: &JobKeys,
    existing: &RequestMarker,
) {
    let Some(manifest) = &existing.manifest else {
        return;
    };
    let key = keys.manifest();
    match storage.head(&key).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            if let Err(err) = put_json(storage, &key, manifest).await {
                tracing::warn!(key = %key, error = %err, "could not write the missing job manifest");
            } else {
                tracing::info!(key = %key, "wrote the job manifest an earlier submission left out");
            }
        }
        Err(err) => {
            tracing::warn!(key = %key, error = %err, "could not check for the job manifest")
        }
    }
}

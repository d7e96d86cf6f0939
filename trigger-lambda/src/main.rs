//! The trigger Lambda (`provided.al2023`, handler `bootstrap`): reads its configuration, builds
//! the AWS clients once per instance and hands each S3 event to [`trigger_lambda::handle_event`].

use anyhow::Context;
use std::time::Duration;

use farm_io::{AwsClients, BatchScheduler, BatchTargets, ClientSettings, S3Storage};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use trigger_lambda::{handle_event, parse_event, Config, Deps, EventReport};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let log_format = std::env::var(farm_core::env::LOG_FORMAT).unwrap_or_default();
    init_tracing(log_format.trim().eq_ignore_ascii_case("json"));
    let config = Config::from_env().context("the trigger cannot start")?;

    // The farm's one client builder: timeouts and retries every binary shares.
    // A call may not outlive the invocation (the Lambda timeout is 300 s, infra/farm.yaml).
    let mut settings = ClientSettings::from_env();
    settings.attempt_timeout = settings.attempt_timeout.min(Duration::from_secs(15));
    settings.operation_timeout = Duration::from_secs(40);
    let clients = AwsClients::load_with(settings).await;
    let s3 = clients.s3();
    let scheduler = BatchScheduler::new(
        clients.batch(),
        BatchTargets {
            queue: config.queue.clone(),
            render_definition: config
                .render
                .definition(None)
                .unwrap_or_default()
                .to_owned(),
            zip_definition: config.zip_definition.clone(),
        },
    )
    .with_render_definitions(config.render.clone());
    let buckets = {
        let s3 = s3.clone();
        move |bucket: &str| S3Storage::new(s3.clone(), bucket)
    };
    let deps = Deps {
        buckets,
        scheduler,
        max_frames: config.max_frames,
        task_slots: config.task_slots(),
        read_budget: trigger_lambda::READ_BUDGET,
        shared_prefixes: config.shared_prefixes.clone(),
    };
    let render_definitions = config
        .render
        .iter()
        .map(|(series, definition)| format!("{series}={definition}"))
        .collect::<Vec<_>>()
        .join(",");
    tracing::info!(
        queue = %config.queue,
        render_definitions = %render_definitions,
        default_blender = %config.render.default_pick(),
        zip_definition = %config.zip_definition,
        max_frames = config.max_frames,
        max_vcpus = ?config.max_vcpus,
        shared_prefixes = %config.shared_prefixes,
        "trigger ready"
    );

    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        invoke(&deps, event)
    }))
    .await
    .map_err(|err| anyhow::anyhow!(err))
    .context("the lambda runtime stopped")
}

/// Logs to stderr (CloudWatch Logs in Lambda): one JSON object per line with `json`, text
/// otherwise. `RUST_LOG` takes a level or `target=level` pairs (`info,aws_smithy_runtime=debug`);
/// default `info`. Unlike `farm_io::telemetry::init`, no `EnvFilter`: its regex engine would
/// add about 1 MiB to the Lambda package for span and field filters nobody uses here.
fn init_tracing(json: bool) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|value| value.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    if json {
        registry
            .with(layer.json().with_current_span(true).with_span_list(false))
            .init();
    } else {
        registry
            .with(layer.with_target(false).with_ansi(false))
            .init();
    }
}

/// One invocation. The payload is read leniently (see [`parse_event`]); one that is not an S3
/// notification at all is logged and dropped, since a retry could not fix it. Any S3 or Batch
/// error fails the invocation so that Lambda retries the event.
async fn invoke<O, B>(
    deps: &Deps<O, B>,
    event: LambdaEvent<serde_json::Value>,
) -> Result<EventReport, Diagnostic>
where
    O: trigger_lambda::Buckets,
    B: farm_core::scheduler::Scheduler,
{
    let event = match parse_event(event.payload) {
        Ok(event) => event,
        Err(err) => {
            tracing::error!(
                error = %err,
                "the payload is not an S3 event notification and was dropped; \
                 the trigger takes S3 ObjectCreated:* and ObjectTagging:Put notifications"
            );
            return Ok(EventReport::default());
        }
    };
    handle_event(deps, event).await.map_err(|err| Diagnostic {
        error_type: "TriggerError".to_owned(),
        error_message: err.to_string(),
    })
}

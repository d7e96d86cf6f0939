//! The moto fixture works: S3 and Batch answer, and the server goes away on drop.

use aws_sdk_s3::primitives::ByteStream;
use farm_testkit::{unique_prefix, Moto};

#[tokio::test]
async fn moto_serves_s3_and_stops_on_drop() -> anyhow::Result<()> {
    let moto = Moto::start().await?;
    assert!(moto.endpoint.starts_with("http://127.0.0.1:"));
    moto.bucket("kit").await?;
    let s3 = moto.s3();
    let key = format!("{}a b.txt", unique_prefix("kit"));
    s3.put_object()
        .bucket("kit")
        .key(&key)
        .body(ByteStream::from_static(b"hi"))
        .send()
        .await?;
    let listed = s3.list_objects_v2().bucket("kit").send().await?;
    assert_eq!(listed.contents()[0].key(), Some(key.as_str()));

    let env = moto.env();
    let value = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    assert_eq!(value("AWS_ENDPOINT_URL"), Some(moto.endpoint.clone()));
    assert_eq!(value("AWS_REGION").as_deref(), Some("us-east-1"));
    assert_eq!(value("AWS_EC2_METADATA_DISABLED").as_deref(), Some("true"));

    let address = moto.endpoint.trim_start_matches("http://").to_owned();
    drop(moto);
    assert!(
        tokio::net::TcpStream::connect(&address).await.is_err(),
        "moto_server still answers after drop"
    );
    Ok(())
}

#[tokio::test]
async fn batch_env_creates_a_queue_and_both_job_definitions() -> anyhow::Result<()> {
    let moto = Moto::start().await?;
    let env = moto.batch_env().await?;
    let batch = moto.batch();

    let queues = batch
        .describe_job_queues()
        .job_queues(&env.queue)
        .send()
        .await?;
    assert_eq!(queues.job_queues().len(), 1, "{env:?}");

    let definitions = batch
        .describe_job_definitions()
        .job_definitions(&env.render_definition)
        .job_definitions(&env.zip_definition)
        .send()
        .await?;
    let mut resources: Vec<(String, Vec<String>)> = definitions
        .job_definitions()
        .iter()
        .map(|d| {
            let container = d.container_properties().expect("container properties");
            let mut values: Vec<String> = container
                .resource_requirements()
                .iter()
                .map(|r| format!("{}={}", r.r#type().unwrap().as_str(), r.value().unwrap()))
                .collect();
            values.sort();
            assert_eq!(
                d.platform_capabilities()
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>(),
                ["FARGATE"]
            );
            (d.job_definition_arn().unwrap().to_owned(), values)
        })
        .collect();
    resources.sort();
    let mut expected = vec![
        (
            env.render_definition.clone(),
            vec!["MEMORY=8192".to_owned(), "VCPU=4".to_owned()],
        ),
        (
            env.zip_definition.clone(),
            vec!["MEMORY=2048".to_owned(), "VCPU=1".to_owned()],
        ),
    ];
    expected.sort();
    assert_eq!(resources, expected);

    // A second setup on the same server does not collide with the first.
    let other = moto.batch_env().await?;
    assert_ne!(other.queue, env.queue);
    Ok(())
}

#[test]
fn prefixes_are_unique_and_end_in_a_slash() {
    let a = unique_prefix("x");
    let b = unique_prefix("x");
    assert_ne!(a, b);
    assert!(a.starts_with("t-x-") && a.ends_with('/'), "{a}");
    assert_eq!(a.len(), "t-x-".len() + 8 + 1);
}

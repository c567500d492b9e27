//! Webex secret rotation through the local stack: during a rotation ingest accepts events signed
//! with the current or the previous secret, and refuses any other (docs/telephony-ingest.md).

use std::time::Duration;

use relay_shared::signing::SigningSecret;

use crate::support::*;

const PREVIOUS_SECRET: &str = "e2e-webex-secret-before-rotation";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_previous_secret_is_accepted_during_a_rotation_an_unrelated_one_is_not() {
    let receiver = Receiver::start(Behaviour::Ok).await;
    let stack = Stack::start(&["--webex-secret-previous", PREVIOUS_SECRET], false).await;
    stack
        .subscribe(&receiver.url, SigningSecret::generate().expose())
        .await;
    let seeds = seed_envelopes();
    let (updated, created, deleted) = (&seeds[0].0, &seeds[1].0, &seeds[2].0);

    assert_eq!(
        stack.ingest_signed(updated, PREVIOUS_SECRET).await,
        200,
        "previous secret"
    );
    assert_eq!(
        stack.ingest_signed(created, "an-unrelated-secret").await,
        401,
        "unrelated secret"
    );
    assert_eq!(stack.ingest(deleted).await, 200, "current secret");

    assert_eq!(
        receiver
            .wait_for_successes(2, Duration::from_secs(30))
            .await,
        2
    );
    // A third delivery would be the refused event: give it every chance to (wrongly) appear.
    receiver.wait_for_successes(3, Duration::from_secs(1)).await;
    let captures = receiver.log.lock().unwrap().captures.clone();
    assert_eq!(captures.len(), 2, "the refused event is not delivered");
    assert!(captures
        .iter()
        .all(|c| !String::from_utf8_lossy(&c.body).contains(created.as_str())));
    stack.stop().await;
}

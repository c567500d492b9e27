use std::collections::HashMap;

use relay_shared::adapters::aws::MAX_RECEIVE_COUNT;
use relay_shared::delivery::DeliveryJob;
use relay_shared::error::{QueueError, MAX_QUEUE_MESSAGE_BYTES};
use relay_shared::ports::{QueueConsumer, QueuedJob, ReceivedJob};

use crate::fixtures::job;
use crate::harness::QueueEnv;

/// Receives until `n` messages came back (or the queue stays empty for a while).
async fn receive_n(consumer: &dyn QueueConsumer, n: usize) -> Vec<ReceivedJob> {
    let mut out = Vec::new();
    for _ in 0..30 {
        if out.len() >= n {
            break;
        }
        out.extend(consumer.receive(10, 1).await.unwrap());
    }
    out
}

pub async fn send_25_and_receive_all(env: QueueEnv) {
    env.queue.send(&[]).await.unwrap();
    let jobs: Vec<DeliveryJob> = (0..25).map(job).collect();
    let queued: Vec<_> = jobs.iter().map(|j| QueuedJob::now(j.clone())).collect();
    // 25 jobs: three SendMessageBatch calls on SQS (10 + 10 + 5).
    env.queue.send(&queued).await.unwrap();
    assert_eq!(env.depth().await, 25);

    let got = receive_n(env.consumer.as_ref(), 25).await;
    assert_eq!(got.len(), 25);
    let mut by_event: HashMap<_, _> = HashMap::new();
    for r in &got {
        assert_eq!(r.receive_count, 1);
        let parsed: DeliveryJob = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            r.body,
            serde_json::to_string(&parsed).unwrap(),
            "the body is the job's JSON"
        );
        by_event.insert(parsed.event_id, parsed);
    }
    for j in &jobs {
        assert_eq!(by_event.get(&j.event_id), Some(j));
    }
    for r in &got {
        env.consumer.ack(&r.receipt).await.unwrap();
    }
    assert_eq!(env.depth().await, 0);
    assert!(env.consumer.receive(10, 0).await.unwrap().is_empty());
}

/// Batches are cut by bytes as well as by count: ten 60 KiB jobs (600 KiB, over SQS's 256 KiB per
/// `SendMessageBatch`) are all queued; a job over the message limit is refused as `TooLarge`
/// before anything of its call is sent.
pub async fn large_jobs_batch_by_bytes_and_too_large_is_refused(env: QueueEnv) {
    let big = |i: u32, bytes: usize| {
        let mut j = job(i);
        j.body = "x".repeat(bytes);
        j
    };
    let jobs: Vec<DeliveryJob> = (0..10).map(|i| big(i, 60 * 1024)).collect();
    let queued: Vec<_> = jobs.iter().map(|j| QueuedJob::now(j.clone())).collect();
    env.queue.send(&queued).await.unwrap();
    let got = receive_n(env.consumer.as_ref(), 10).await;
    assert_eq!(got.len(), 10);
    for r in &got {
        assert!(jobs.contains(&parsed(r)));
        env.consumer.ack(&r.receipt).await.unwrap();
    }

    let err = env
        .queue
        .send(&[
            QueuedJob::now(job(20)),
            QueuedJob::now(big(21, MAX_QUEUE_MESSAGE_BYTES)),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueueError::TooLarge { max, .. } if max == MAX_QUEUE_MESSAGE_BYTES),
        "{err:?}"
    );
    assert_eq!(env.depth().await, 0, "nothing of a refused call is sent");
}

pub async fn delay_hides_messages(env: QueueEnv) {
    let now_job = job(1);
    let later_job = job(2);
    // 5000 s is more than SQS allows: the adapter caps it at 900.
    env.queue
        .send(&[
            QueuedJob::now(now_job.clone()),
            QueuedJob {
                job: later_job,
                delay_seconds: 5000,
            },
        ])
        .await
        .unwrap();
    let got = receive_n(env.consumer.as_ref(), 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(parsed(&got[0]), now_job);
    assert!(
        env.consumer.receive(10, 0).await.unwrap().is_empty(),
        "the delayed job is not visible yet"
    );
    env.consumer.ack(&got[0].receipt).await.unwrap();
    assert_eq!(env.depth().await, 1);
}

pub async fn ack_and_retry_after(env: QueueEnv) {
    let j = job(1);
    env.queue.send(&[QueuedJob::now(j.clone())]).await.unwrap();
    let first = receive_n(env.consumer.as_ref(), 1).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].receive_count, 1);
    // In flight: not handed out twice.
    assert!(env.consumer.receive(10, 0).await.unwrap().is_empty());

    // A negative ack with no delay: back at once, counted again.
    env.consumer
        .retry_after(&first[0].receipt, 0)
        .await
        .unwrap();
    let second = receive_n(env.consumer.as_ref(), 1).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].body, first[0].body);
    assert_eq!(second[0].receive_count, 2);

    // With a delay: hidden.
    env.consumer
        .retry_after(&second[0].receipt, 900)
        .await
        .unwrap();
    assert!(env.consumer.receive(10, 0).await.unwrap().is_empty());
    assert_eq!(env.depth().await, 1);

    // Ack removes it.
    let other = job(2);
    env.queue
        .send(&[QueuedJob::now(other.clone())])
        .await
        .unwrap();
    let got = receive_n(env.consumer.as_ref(), 1).await;
    assert_eq!(parsed(&got[0]), other);
    env.consumer.ack(&got[0].receipt).await.unwrap();
    assert_eq!(env.depth().await, 1);
}

pub async fn redrive_after_max_receives(env: QueueEnv) {
    let j = job(7);
    env.queue.send(&[QueuedJob::now(j.clone())]).await.unwrap();
    for n in 1..=MAX_RECEIVE_COUNT {
        let got = receive_n(env.consumer.as_ref(), 1).await;
        assert_eq!(got.len(), 1, "receive {n}");
        assert_eq!(got[0].receive_count, n);
        env.consumer.retry_after(&got[0].receipt, 0).await.unwrap();
    }
    // The next receive finds it over the limit and moves it to the dead-letter queue.
    assert!(env.consumer.receive(10, 0).await.unwrap().is_empty());
    assert_eq!(env.depth().await, 0);
    let dead = receive_n(env.dead_letter_source.as_ref(), 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(parsed(&dead[0]), j);
}

pub async fn park_raw_body(env: QueueEnv) {
    // Even a body that is not a job (it could not be parsed) is parked byte for byte.
    let raw = r#"{"not":"a job", "spacing" : [1, 2]}"#;
    env.dead_letter_sink.park(raw).await.unwrap();
    let dead = receive_n(env.dead_letter_source.as_ref(), 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, raw);
    env.dead_letter_source.ack(&dead[0].receipt).await.unwrap();
    assert!(env
        .dead_letter_source
        .receive(10, 0)
        .await
        .unwrap()
        .is_empty());
    let _ = env.backend;
}

/// A job of the per-call-ordered message group `group`.
fn in_group(i: u32, group: &str) -> DeliveryJob {
    DeliveryJob {
        ordering_key: Some(group.into()),
        ..job(i)
    }
}

/// Receives for a while (a FIFO queue may hand a batch out over several receives).
async fn receive_for_a_while(consumer: &dyn QueueConsumer) -> Vec<ReceivedJob> {
    let mut out = Vec::new();
    for _ in 0..3 {
        out.extend(consumer.receive(10, 1).await.unwrap());
    }
    out
}

/// FIFO: a group's messages leave in the order sent; none while an earlier one of the group is
/// in flight (a held-back retry), while another group's do; the held one comes back first.
pub async fn fifo_orders_a_group_and_holds_it_behind_a_message_in_flight(env: QueueEnv) {
    let (a1, a2, b1) = (
        in_group(1, "wh:a"),
        in_group(2, "wh:a"),
        in_group(3, "wh:b"),
    );
    let queued: Vec<_> = [&a1, &a2, &b1]
        .into_iter()
        .map(|j| QueuedJob::now(j.clone()))
        .collect();
    env.fifo.send(&queued).await.unwrap();
    let got = receive_for_a_while(env.fifo_consumer.as_ref()).await;
    let jobs: Vec<DeliveryJob> = got.iter().map(parsed).collect();
    assert_eq!(jobs.first(), Some(&a1), "the group's first message first");
    assert!(jobs.contains(&b1), "the other group is handed out too");
    if let Some(i) = jobs.iter().position(|j| *j == a2) {
        assert!(i > 0, "a2 after a1");
    }
    // a1 held back (as the worker holds a failed attempt); a2, if handed out, made visible.
    for (r, j) in got.iter().zip(&jobs) {
        if *j == a1 {
            env.fifo_consumer
                .retry_after(&r.receipt, 900)
                .await
                .unwrap();
        } else if *j == a2 {
            env.fifo_consumer.retry_after(&r.receipt, 0).await.unwrap();
        } else {
            env.fifo_consumer.ack(&r.receipt).await.unwrap();
        }
    }
    assert!(
        receive_for_a_while(env.fifo_consumer.as_ref())
            .await
            .is_empty(),
        "a2 waits behind the held a1"
    );
    let held = &got[0];
    env.fifo_consumer
        .retry_after(&held.receipt, 0)
        .await
        .unwrap();
    let again = receive_for_a_while(env.fifo_consumer.as_ref()).await;
    assert_eq!(again.first().map(parsed), Some(a1), "the held one first");
    assert_eq!(again[0].receive_count, 2);
    assert!(again.iter().map(parsed).any(|j| j == a2) || again.len() == 1);
    for r in &again {
        env.fifo_consumer.ack(&r.receipt).await.unwrap();
    }
    if again.len() == 1 {
        let last = receive_n(env.fifo_consumer.as_ref(), 1).await;
        assert_eq!(last.iter().map(parsed).collect::<Vec<_>>(), [a2]);
        env.fifo_consumer.ack(&last[0].receipt).await.unwrap();
    }
    assert_eq!(env.fifo_depth().await, 0);
}

/// FIFO: a job sent twice (a fan-out retried after a queue failure) is queued once; a delay is
/// not applied (SQS refuses per-message delays there); a job without a group is refused.
pub async fn fifo_deduplicates_ignores_delays_and_needs_a_group(env: QueueEnv) {
    let j = in_group(1, "wh:a");
    let delayed = QueuedJob {
        job: j.clone(),
        delay_seconds: 600,
    };
    env.fifo.send(std::slice::from_ref(&delayed)).await.unwrap();
    env.fifo.send(&[delayed]).await.unwrap();
    let got = receive_for_a_while(env.fifo_consumer.as_ref()).await;
    assert_eq!(got.len(), 1, "one copy, visible at once");
    assert_eq!(parsed(&got[0]), j);
    env.fifo_consumer.ack(&got[0].receipt).await.unwrap();
    let err = env.fifo.send(&[QueuedJob::now(job(2))]).await.unwrap_err();
    assert!(
        matches!(&err, QueueError::Unavailable(m) if m.contains("message group")),
        "{err:?}"
    );
    assert_eq!(env.fifo_depth().await, 0);
}

fn parsed(received: &ReceivedJob) -> DeliveryJob {
    serde_json::from_str(&received.body).unwrap()
}

/// The dead-letter depth `GET /api/hooks/dlq` shows: every message, handed out or not.
pub async fn depth_counts_every_message(env: QueueEnv) {
    let dlq = env.dead_letter_source.as_ref();
    assert_eq!(dlq.depth().await.unwrap(), 0);
    for body in ["a", "b", "c"] {
        env.dead_letter_sink.park(body).await.unwrap();
    }
    assert_eq!(dlq.depth().await.unwrap(), 3);
    let got = receive_n(dlq, 1).await;
    assert_eq!(dlq.depth().await.unwrap(), 3, "one in flight still counts");
    dlq.ack(&got[0].receipt).await.unwrap();
    assert_eq!(dlq.depth().await.unwrap(), 2);
}

//! The storage and queue conformance suite: the same test functions run against the in-memory
//! adapters (`memory::…`) and against the AWS adapters (`aws::…`) on DynamoDB Local and an SQS
//! endpoint (moto server, LocalStack, or real AWS).
//!
//! The AWS variants need `AWS_ENDPOINT_URL_DYNAMODB` (store tests) / `AWS_ENDPOINT_URL_SQS` (queue
//! tests). Without them each one prints a `skipped: …` line and passes — unless
//! `RELAY_REQUIRE_AWS=1`, which turns a missing endpoint into a failure (CI). An endpoint that is
//! set but unreachable is always a failure. Every AWS test creates its own uniquely named table or
//! queues, so the tests run in parallel and can be re-run against the same server.

mod fixtures;
mod harness;

mod api_keys;
mod attempts;
mod bounded;
mod calls;
mod dedupe;
mod events;
mod expiry;
mod idempotency;
mod leases;
mod presence;
mod queue;
mod rate_limits;
mod setup;
mod stats;
mod subscriptions;

// Not part of the conformance suite: the captured Webex payloads' byte-for-byte round trip through the model.
mod seed_roundtrip;
// Not part of the conformance suite: signing secrets sealed under a KMS key.
mod kms_keys;
// Not part of the conformance suite: the Webex token record's Secrets Manager adapter.
mod token_vault;

/// Generates `memory::<module>::<test>` and `aws::<module>::<test>` from one list. Each `kind`
/// names a module of `harness` with `memory()` and `aws(test_name)` constructors of the
/// environment the tests take.
macro_rules! conformance {
    ($($kind:ident => { $($module:ident : [$($test:ident),* $(,)?]),* $(,)? })*) => {
        mod memory {
            $($(
                mod $module {
                    $(
                        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                        async fn $test() {
                            crate::$module::$test(crate::harness::$kind::memory()).await;
                        }
                    )*
                }
            )*)*
        }

        mod aws {
            $($(
                mod $module {
                    $(
                        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                        async fn $test() {
                            let name = concat!("aws::", stringify!($module), "::", stringify!($test));
                            if let Some(env) = crate::harness::$kind::aws(name).await {
                                crate::$module::$test(env).await;
                            }
                        }
                    )*
                }
            )*)*
        }
    };
}

conformance! {
    stores => {
        subscriptions: [
            create_get_update_delete,
            failed_create_takes_no_slot,
            list_by_owner_paginates,
            list_by_org_returns_every_binding,
            owner_limit_holds_under_racing_creates,
            delete_frees_a_slot,
            list_all_pages_through_every_subscription,
        ],
        api_keys: [put_get_delete_and_duplicate],
        calls: [versioned_puts, racing_writers_one_wins],
        dedupe: [
            claim_complete_release,
            expired_claims_are_reclaimable,
            an_attempt_claim_is_settled_by_the_record_it_names,
            an_unsettled_attempt_claim_is_taken_over_after_its_lease,
            racing_take_overs_one_wins,
            an_overtaken_holders_late_record_settles_the_claim,
            a_claim_exists_while_pending_or_done,
        ],
        presence: [
            load_and_write_in_batches,
            stale_write_behaviour,
            call_presence_beside_the_record,
        ],
        leases: [contention_and_expiry],
        attempts: [
            newest_first_with_status_filter_and_pages,
            filters_on_type_and_time_and_get_by_id,
            a_cursor_of_another_window_is_refused,
        ],
        events: [
            window_query,
            window_is_on_created_at_not_id_time,
            an_event_over_the_item_limit_is_refused_cleanly,
            paged_newest_first_filtered_and_got_by_id,
            a_sparse_type_filter_reads_bounded_pages,
            seed_events_replay_byte_exact_in_one_write_unit_each,
            items_written_before_compression_still_read,
            op_counter_sums_capacity_and_counts_round_trips,
        ],
        rate_limits: [
            limit_and_independent_windows,
            concurrent_acquires_never_exceed,
            named_counters_are_independent,
            slots_are_consecutive_and_never_shared,
            a_token_given_back_is_counted_again,
        ],
        idempotency: [put_get_conflict_and_expiry],
        stats: [
            the_attempt_log_gives_the_figures_and_a_second_read_only_whats_new,
            materialised_buckets_and_the_watermark,
            a_bucket_past_the_watermark_is_counted_again,
            concurrent_reads_agree,
            the_attempt_log_lists_oldest_first_on_request,
            a_long_catch_up_goes_on_where_the_last_read_stopped,
            a_read_cut_short_after_k_pages_keeps_its_progress,
            a_read_makes_progress_whatever_the_budget,
        ],
        expiry: [logs_skip_expired_items],
    }
    queues => {
        queue: [
            send_25_and_receive_all,
            large_jobs_batch_by_bytes_and_too_large_is_refused,
            delay_hides_messages,
            ack_and_retry_after,
            redrive_after_max_receives,
            park_raw_body,
            fifo_orders_a_group_and_holds_it_behind_a_message_in_flight,
            fifo_deduplicates_ignores_delays_and_needs_a_group,
            depth_counts_every_message,
        ],
    }
}

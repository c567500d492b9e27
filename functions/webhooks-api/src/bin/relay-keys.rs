//! `relay-keys`: create and revoke API keys of the webhooks API.
//!
//! Uses the DynamoDB table named by `TABLE_NAME` with the usual AWS environment (region,
//! credentials, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local):
//!
//! ```text
//! relay-keys create --user U --org O [--admin] [--key K]   # prints the key once
//! relay-keys revoke --key K                                # or --hash <sha256 hex>
//! relay-keys create-table                                  # local set-ups: create TABLE_NAME if missing
//! relay-keys redrive-dlq [--org O] [--limit N]             # operator-wide DLQ redrive
//! ```
//!
//! `redrive-dlq` uses `DEAD_LETTER_QUEUE_URL` and `DELIVERY_QUEUE_URL`: it is the operator's
//! redrive, across every org unless `--org` is given (the API's redrive is always one org's).

use clap::{ArgGroup, Parser, Subcommand};
use relay_shared::auth::{hash_api_key, Role};
use relay_shared::config::{parse_command_line, Resources};

#[derive(Parser)]
#[command(
    name = "relay-keys",
    about = "Create and revoke webhooks API keys (stored as SHA-256 hashes in TABLE_NAME); operator-wide DLQ redrive"
)]
struct Cli {
    #[command(flatten)]
    resources: Resources,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a key and print it (the only time it is shown).
    Create {
        #[arg(long)]
        user: String,
        #[arg(long)]
        org: String,
        /// Give the key the admin role (may redrive its own org's dead-lettered jobs).
        #[arg(long)]
        admin: bool,
        /// Use this key instead of a random one (test set-ups with a well-known key).
        #[arg(long)]
        key: Option<String>,
    },
    /// Revoke a key, given the key or its SHA-256 hash.
    #[command(group(ArgGroup::new("which").required(true).args(["key", "hash"])))]
    Revoke {
        #[arg(long)]
        key: Option<String>,
        #[arg(long)]
        hash: Option<String>,
    },
    /// Create the table named by TABLE_NAME (with its indexes) if it does not exist — for
    /// DynamoDB Local and other local set-ups; on AWS the SAM template creates it.
    CreateTable,
    /// Operator-wide redrive: move dead-lettered jobs of every org (or of `--org`) back to the
    /// delivery queue with a fresh schedule (DEAD_LETTER_QUEUE_URL, DELIVERY_QUEUE_URL).
    RedriveDlq {
        /// Only this org's jobs (default: every org's).
        #[arg(long)]
        org: Option<String>,
        /// Move at most this many jobs.
        #[arg(long, default_value_t = webhooks_api::routes::dlq::DEFAULT_REDRIVE_LIMIT)]
        limit: u32,
    },
}

#[tokio::main]
async fn main() {
    let cli: Cli = parse_command_line();
    if let Command::CreateTable = cli.command {
        let table = match cli.resources.table_name() {
            Ok(t) => t.to_owned(),
            Err(e) => {
                eprintln!("relay-keys: {e}");
                std::process::exit(2);
            }
        };
        let (ddb, _) = relay_shared::adapters::aws::aws_clients().await;
        match relay_shared::adapters::aws::create_table(&ddb, &table).await {
            Ok(()) => eprintln!("table {table} is ready"),
            Err(e) => {
                eprintln!("relay-keys: could not create table {table}: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    if let Command::RedriveDlq { org, limit } = &cli.command {
        std::process::exit(redrive_dlq(&cli.resources, org.as_deref(), *limit).await);
    }
    let stores = match webhooks_api::aws::stores(&cli.resources).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("relay-keys: {e}");
            std::process::exit(2);
        }
    };
    match cli.command {
        Command::Create {
            user,
            org,
            admin,
            key,
        } => {
            let role = if admin { Role::Admin } else { Role::User };
            let result = match key {
                Some(k) => webhooks_api::store_api_key(&stores, &k, &user, &org, role)
                    .await
                    .map(|()| k),
                None => webhooks_api::create_api_key(&stores, &user, &org, role).await,
            };
            match result {
                Ok(k) => {
                    println!("{k}");
                    eprintln!(
                        "created a {role:?} key for user {user} in org {org} (hash {})",
                        hash_api_key(&k)
                    );
                }
                Err(relay_shared::error::StoreError::Conflict(_)) => {
                    eprintln!(
                        "relay-keys: that key already exists (revoke it first to re-assign it)"
                    );
                    std::process::exit(1);
                }
                Err(e) => {
                    eprintln!("relay-keys: could not create the key: {e}");
                    std::process::exit(1);
                }
            }
        }
        Command::CreateTable | Command::RedriveDlq { .. } => unreachable!("handled above"),
        Command::Revoke { key, hash } => {
            let result = match (key, hash) {
                (Some(k), _) => webhooks_api::revoke_api_key(&stores, &k).await,
                (None, Some(h)) => webhooks_api::revoke_api_key_hash(&stores, &h).await,
                (None, None) => unreachable!("clap requires one"),
            };
            match result {
                Ok(true) => eprintln!("revoked"),
                Ok(false) => {
                    eprintln!("relay-keys: no such key");
                    std::process::exit(1);
                }
                Err(e) => {
                    eprintln!("relay-keys: could not revoke the key: {e}");
                    std::process::exit(1);
                }
            }
        }
    }
}

/// `relay-keys redrive-dlq`; returns the exit code.
async fn redrive_dlq(resources: &Resources, org: Option<&str>, limit: u32) -> i32 {
    use relay_shared::adapters::aws::SqsQueue;
    use webhooks_api::routes::dlq::{redrive_jobs, RedriveScope};
    let urls = resources
        .dead_letter_queue_url()
        .and_then(|d| Ok((d.to_owned(), resources.delivery_queue_url()?.to_owned())));
    let (dlq_url, queue_url) = match urls {
        Ok(u) => u,
        Err(e) => {
            eprintln!("relay-keys: {e}");
            return 2;
        }
    };
    if limit == 0 {
        eprintln!("relay-keys: --limit must be at least 1");
        return 2;
    }
    let (_, sqs) = relay_shared::adapters::aws::aws_clients().await;
    let dlq = SqsQueue::new(sqs.clone(), dlq_url);
    // Routed as the API's redrive is: a per-call-ordered job goes back into its FIFO group
    // (ORDERED_QUEUE_URL), not to the standard queue (docs/ordering.md).
    let ordered_url = resources.ordered_queue_url.as_deref();
    let queue = relay_shared::adapters::aws::delivery_queue(&sqs, &queue_url, ordered_url);
    let scope = org.map_or(RedriveScope::All, RedriveScope::Org);
    // Scoped to one org, the scan may have to pass other orgs' jobs: look at up to 10x `limit`.
    let scan = if org.is_some() {
        limit.saturating_mul(10)
    } else {
        limit
    };
    match redrive_jobs(&dlq, &queue, scope, limit, scan).await {
        Ok(r) => {
            println!(
                "{}",
                serde_json::json!({"moved": r.moved, "skipped": r.skipped})
            );
            0
        }
        Err(e) => {
            eprintln!("relay-keys: redrive failed: {e}");
            1
        }
    }
}

//! `relay-keys`: create and revoke API keys of the webhooks API.
//!
//! Uses the DynamoDB table named by `TABLE_NAME` with the usual AWS environment (region,
//! credentials, `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local):
//!
//! ```text
//! relay-keys create --user U --org O [--admin] [--key K]   # prints the key once
//! relay-keys revoke --key K                                # or --hash <sha256 hex>
//! relay-keys create-table                                  # local set-ups: create TABLE_NAME if missing
//! ```

use clap::{ArgGroup, Parser, Subcommand};
use relay_shared::auth::{hash_api_key, Role};
use relay_shared::config::{parse_command_line, Resources};

#[derive(Parser)]
#[command(
    name = "relay-keys",
    about = "Create and revoke webhooks API keys (stored as SHA-256 hashes in TABLE_NAME)"
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
        /// Give the key the admin role (may redrive the dead-letter queue).
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
        Command::CreateTable => unreachable!("handled above"),
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

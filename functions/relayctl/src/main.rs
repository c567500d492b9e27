//! `relayctl`: operator CLI for webex-relay. See docs/relayctl.md.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use relay_shared::adapters::aws::secrets::{SecretsManager, WEBHOOK_SECRET};
use relay_shared::adapters::aws::DynamoTable;
use relay_shared::adapters::webex_http::{WebexHttpClient, DEFAULT_BASE_URL, ENV_TOKEN};
use relay_shared::config::{Resources, SecretsKeyArgs};
use relay_shared::ports::WebexClient;
use relay_shared::webex_api::{RegistrationCreate, RegistrationUpdate, WebexRegistration};
use relay_shared::webex_registrations::DEFAULT_RENEW_WITHIN_DAYS;
use relayctl::{
    ensure, new_webhook_secret, render_table, resolve_secret, rotated_secret, seal_secrets,
    CtlError, EnsureSpec, RotationStage, SecretFrom, DEFAULT_NAME, EVENT_ALL, TELEPHONY_RESOURCE,
};
use secrecy::ExposeSecret;

#[derive(Parser)]
#[command(name = "relayctl", version, about = "Operator CLI for webex-relay", long_about = None)]
struct Cli {
    /// Webex REST API base URL.
    #[arg(long, env = "WEBEX_API_BASE_URL", default_value = DEFAULT_BASE_URL, global = true)]
    base_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage Webex webhook registrations (token from WEBEX_TOKEN).
    #[command(subcommand, name = "webex-webhooks")]
    WebexWebhooks(Webhooks),
    /// Seal every signing secret still stored in the clear (items written before secrets were
    /// encrypted at rest) with the KMS key the API uses; prints a JSON summary. Idempotent.
    /// Needs no Webex token (docs/relayctl.md, docs/security.md).
    SealSecrets(SealArgs),
}

#[derive(Args)]
struct SealArgs {
    /// Only count what would be sealed; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Accept SECRETS_LOCAL_KEY against a table that is not on a loopback DynamoDB endpoint.
    #[arg(long)]
    allow_local_key: bool,
    /// The relay's table (`TABLE_NAME`).
    #[command(flatten)]
    resources: Resources,
    /// The key the API seals with (`SECRETS_KMS_KEY_ID`: the KMS key template.yaml creates).
    #[command(flatten)]
    key: SecretsKeyArgs,
}

/// `seal-secrets`: prints the summary, and fails when any subscription could not be sealed.
async fn seal(args: SealArgs) -> Result<(), CtlError> {
    let table = args.resources.table_name()?.to_owned();
    relayctl::check_key_choice(
        args.key.local_key.is_some(),
        args.allow_local_key,
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .ok()
            .as_deref(),
    )?;
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let key = args.key.key(Some(&sdk))?;
    eprintln!(
        "relayctl: seal-secrets: {} under {}",
        if args.dry_run {
            "counting what to seal"
        } else {
            "sealing"
        },
        key.describe()
    );
    let sealer = key.sealer();
    let store = DynamoTable::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let mut report = |sub: &relay_shared::subscription::Subscription, reason: &str| {
        eprintln!(
            "relayctl: seal-secrets: webhook {} (org {}): {reason}",
            sub.id, sub.org_id
        );
    };
    let summary = seal_secrets(&store, &sealer, args.dry_run, &mut report).await?;
    println!("{}", serde_json::to_string(&summary).expect("serialisable"));
    if summary.failed > 0 {
        return Err(CtlError::Store(format!(
            "{} subscription(s) not sealed (they keep working in the clear); fix the cause above and run it again",
            summary.failed
        )));
    }
    Ok(())
}

#[derive(Subcommand)]
enum Webhooks {
    /// List every webhook of the token's identity.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one webhook.
    Get {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Register a webhook.
    Create(CreateArgs),
    /// Change a webhook's name, target URL or secret, or reactivate it (unset fields keep their value).
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        target_url: Option<String>,
        /// Only `active`: reactivate a webhook Webex disabled. Webex's PUT cannot deactivate one
        /// (delete it to stop deliveries).
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        secret: SecretArg,
    },
    /// Delete a webhook.
    Delete { id: String },
    /// Rotate the webhook secret kept in Secrets Manager, in the safe order: `begin` stores a new
    /// random secret and keeps the old one as `previous` (the ingest accepts both); then `ensure`
    /// gives Webex the new one; then `finish` drops `previous`. Needs no Webex token.
    RotateSecret {
        #[arg(value_enum)]
        stage: Stage,
        /// The Secrets Manager secret the ingest reads (`WebexWebhookSecretArn`).
        #[arg(long)]
        secret_arn: String,
    },
    /// Idempotently cover the org's calls: one active telephony_calls/all webhook at URL with the
    /// secret, and the Workspaces / Virtual Lines interest registration, renewed before it expires.
    /// Needs an admin or Service App token (spark-admin:calls_read).
    Ensure {
        #[arg(long)]
        target_url: String,
        #[arg(long, default_value = DEFAULT_NAME)]
        name: String,
        #[arg(long, required = true)]
        secret_from: SecretFrom,
        /// Delete further webhooks matching the same resource/event/target URL.
        #[arg(long)]
        prune_duplicates: bool,
        /// Print what would be done without changing anything.
        #[arg(long)]
        dry_run: bool,
        /// Do not register the Workspaces / Virtual Lines actor interests (their calls are then
        /// not delivered).
        #[arg(long)]
        no_actor_interests: bool,
        /// Accept a token that is not an admin's: only that user's own calls are relayed.
        #[arg(long)]
        allow_user_scope: bool,
        /// Renew the interest registration when it expires within this many days.
        #[arg(long, default_value_t = DEFAULT_RENEW_WITHIN_DAYS)]
        renew_within_days: u32,
        /// Days a (re)registered interest lasts (Webex's default: 60).
        #[arg(long)]
        interest_days: Option<u32>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Stage {
    Begin,
    Finish,
}

/// `rotate-secret`: Secrets Manager only, never Webex (that is `ensure`'s step).
async fn rotate_secret(stage: Stage, arn: &str) -> Result<(), CtlError> {
    let secrets = SecretsManager::from_env().await;
    let what = WEBHOOK_SECRET.what;
    let secret_err =
        |e: relay_shared::adapters::aws::secrets::SecretError| CtlError::Secret(e.to_string());
    let raw = secrets.secret_string(arn, what).await.map_err(secret_err)?;
    let stage = match stage {
        Stage::Begin => RotationStage::Begin,
        Stage::Finish => RotationStage::Finish,
    };
    let next = rotated_secret(&raw, stage, &new_webhook_secret())?;
    secrets.write(arn, what, &next).await.map_err(secret_err)?;
    match stage {
        RotationStage::Begin => println!(
            "stored a new webhook secret; the old one is kept as `previous`. Next:\n  \
             1. force a cold start of the ingest function (e.g. sam deploy), so it accepts both;\n  \
             2. relayctl webex-webhooks ensure --target-url <WebexIngestUrl> --secret-from {arn}\n  \
             3. once the ingest logs verified_with=current only: relayctl webex-webhooks rotate-secret finish --secret-arn {arn}"
        ),
        RotationStage::Finish => println!(
            "dropped the previous webhook secret; force a cold start of the ingest function so it stops accepting it"
        ),
    }
    Ok(())
}

#[derive(Args)]
struct CreateArgs {
    #[arg(long)]
    name: String,
    #[arg(long)]
    target_url: String,
    #[arg(long, default_value = TELEPHONY_RESOURCE)]
    resource: String,
    #[arg(long, default_value = EVENT_ALL)]
    event: String,
    #[arg(long)]
    filter: Option<String>,
    #[command(flatten)]
    secret: SecretArg,
}

#[derive(Args)]
struct SecretArg {
    /// Where to read the webhook secret: env:VAR, file:PATH or a Secrets Manager ARN.
    #[arg(long)]
    secret_from: Option<SecretFrom>,
}

impl SecretArg {
    async fn resolve(&self) -> Result<Option<String>, CtlError> {
        match &self.secret_from {
            Some(f) => Ok(Some(
                resolve_secret(f, None).await?.expose_secret().to_owned(),
            )),
            None => Ok(None),
        }
    }
}

/// `--json`: `value` as JSON; otherwise the table of `hooks`.
fn show(value: &impl serde::Serialize, hooks: &[WebexRegistration], json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("serialisable")
        );
    } else {
        print!("{}", render_table(hooks));
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("relayctl: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), CtlError> {
    let cmd = match cli.command {
        Command::SealSecrets(args) => return seal(args).await,
        Command::WebexWebhooks(Webhooks::RotateSecret { stage, secret_arn }) => {
            return rotate_secret(stage, &secret_arn).await
        }
        Command::WebexWebhooks(cmd) => cmd,
    };
    // Environment only, never a flag: a token on the command line would land in shell history.
    let token = std::env::var(ENV_TOKEN)
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            CtlError::Usage(format!(
                "{ENV_TOKEN} is not set (a Webex Service App or admin integration access token; see docs/relayctl.md)"
            ))
        })?;
    let client = WebexHttpClient::new(&cli.base_url, token)?;
    match cmd {
        Webhooks::List { json } => {
            let hooks = client.list_registrations().await?;
            show(&hooks, &hooks, json);
        }
        Webhooks::Get { id, json } => {
            let w = client.get_registration(&id).await?;
            show(&w, std::slice::from_ref(&w), json);
        }
        Webhooks::Create(a) => {
            let w = client
                .create_registration(&RegistrationCreate {
                    secret: a.secret.resolve().await?,
                    name: a.name,
                    target_url: a.target_url,
                    resource: a.resource,
                    event: a.event,
                    filter: a.filter,
                })
                .await?;
            println!(
                "created webhook {} ({}/{} -> {})",
                w.id, w.resource, w.event, w.target_url
            );
        }
        Webhooks::Update {
            id,
            name,
            target_url,
            status,
            secret,
        } => {
            if let Some(s) = status.as_deref().filter(|s| *s != "active") {
                return Err(CtlError::Usage(format!(
                    "--status can only be `active` (got `{s}`): Webex's PUT /webhooks/{{id}} can reactivate a webhook but never deactivate one; delete it to stop deliveries"
                )));
            }
            let current = client.get_registration(&id).await?;
            let secret = secret.resolve().await?;
            let secret_changed = secret.is_some();
            let w = client
                .update_registration(
                    &id,
                    &RegistrationUpdate {
                        name: name.unwrap_or(current.name),
                        target_url: target_url.unwrap_or(current.target_url),
                        secret,
                        status,
                    },
                )
                .await?;
            println!(
                "updated webhook {} (name {:?}, target {}, status {}{})",
                w.id,
                w.name,
                w.target_url,
                w.status.as_deref().unwrap_or("-"),
                if secret_changed { ", secret set" } else { "" }
            );
        }
        Webhooks::Delete { id } => {
            client.delete_registration(&id).await?;
            println!("deleted webhook {id}");
        }
        Webhooks::RotateSecret { .. } => unreachable!("handled before the token is read"),
        Webhooks::Ensure {
            target_url,
            name,
            secret_from,
            prune_duplicates,
            dry_run,
            no_actor_interests,
            allow_user_scope,
            renew_within_days,
            interest_days,
        } => {
            // The org's own secret when the secret holds one per org (`orgs`).
            let org = match &secret_from {
                SecretFrom::Arn(_) => client.me().await?.org_id,
                _ => None,
            };
            let secret = resolve_secret(&secret_from, org.as_deref()).await?;
            let spec = EnsureSpec {
                name,
                prune_duplicates,
                dry_run,
                actor_interests: !no_actor_interests,
                allow_user_scope,
                renew_within_days,
                interest_days,
                ..EnsureSpec::new(target_url, secret)
            };
            let report = ensure(&client, &spec, chrono::Utc::now()).await?;
            print!("{}", report.render(&spec.target_url));
        }
    }
    Ok(())
}

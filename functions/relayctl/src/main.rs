//! `relayctl`: operator CLI for webex-relay. See docs/relayctl.md.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use relay_shared::adapters::webex_http::{WebexHttpClient, DEFAULT_BASE_URL, ENV_TOKEN};
use relay_shared::ports::WebexClient;
use relay_shared::webex_api::{RegistrationCreate, RegistrationUpdate, WebexRegistration};
use relayctl::{
    ensure, render_table, resolve_secret, CtlError, EnsureSpec, SecretFrom, DEFAULT_NAME,
    EVENT_ALL, TELEPHONY_RESOURCE,
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
    /// Change a webhook's name, target URL, secret or status (unset fields keep their value).
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        target_url: Option<String>,
        /// `active` or `inactive`.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        secret: SecretArg,
    },
    /// Delete a webhook.
    Delete { id: String },
    /// Idempotently make one active telephony_calls/all webhook target URL with the secret.
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
    },
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
            Some(f) => Ok(Some(resolve_secret(f).await?.expose_secret().to_owned())),
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
    // Environment only, never a flag: a token on the command line would land in shell history.
    let token = std::env::var(ENV_TOKEN)
        .ok()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            CtlError::Usage(format!(
                "{ENV_TOKEN} is not set (a Webex bot or integration access token)"
            ))
        })?;
    let client = WebexHttpClient::new(&cli.base_url, token)?;
    let Command::WebexWebhooks(cmd) = cli.command;
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
            if let Some(s) = &status {
                if s != "active" && s != "inactive" {
                    return Err(CtlError::Usage(format!(
                        "--status must be active or inactive, got `{s}`"
                    )));
                }
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
        Webhooks::Ensure {
            target_url,
            name,
            secret_from,
            prune_duplicates,
            dry_run,
        } => {
            let secret = resolve_secret(&secret_from).await?;
            let spec = EnsureSpec {
                target_url,
                name,
                secret,
                prune_duplicates,
                dry_run,
            };
            let report = ensure(&client, &spec).await?;
            print!("{}", report.render(&spec.target_url));
        }
    }
    Ok(())
}

//! `callguard`: the one binary. Serves the platform, runs the demo, and carries the operator
//! commands (accounts, configuration checks).
#![forbid(unsafe_code)]

mod compliance_cli;
mod config;
mod demo;
mod dnc_cli;

/// mimalloc rather than the C library's allocator: a request allocates and frees many small
/// buffers on two worker threads, and glibc's malloc/free were about a tenth of a screen-pop's
/// CPU (bench/README.md, "Screen-pop costs found by profiling").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use callguard_core::Role;
use callguard_server::principal::Actor;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Callguard: a contact-center platform whose first job is to keep callers' data and money safe.
///
/// Configuration comes from a TOML file (--config), overridden by CALLGUARD_* environment
/// variables (CALLGUARD_LISTEN, CALLGUARD_DATA_DIR, CALLGUARD_DATABASE_URL, …); run
/// `callguard config keys` for the full list.
#[derive(Parser)]
#[command(name = "callguard", version, about, long_about)]
struct Cli {
    /// TOML configuration file (also CALLGUARD_CONFIG).
    #[arg(long, global = true, env = "CALLGUARD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API and web pages over HTTPS until SIGTERM or Ctrl-C.
    Serve,
    /// Serve a throw-away instance with demo staff of every role and print how to sign in.
    ///
    /// The data goes to --data-dir DIR if given, else to the configured data directory
    /// (CALLGUARD_DATA_DIR or `data_dir` in --config), else to a new directory under the
    /// system's temp dir; the banner names it. It is not removed on exit: delete it when done,
    /// or run the demo on it again. The demo refuses a directory that holds a real instance's
    /// data, since it adds accounts whose passwords it prints.
    Demo {
        /// Where to keep the demo's data (stronger than CALLGUARD_DATA_DIR; not removed on exit).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Manage staff accounts directly in the database (for the first admin, and recovery).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Key-encryption key rotation.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Customer portal accounts.
    Customer {
        #[command(subcommand)]
        command: CustomerCommand,
    },
    /// Check or export the tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Card payments: the hosted payment page's tamper check.
    Payments {
        #[command(subcommand)]
        command: PaymentsCommand,
    },
    /// The telephony edge's service account (keypad card capture).
    Telephony {
        #[command(subcommand)]
        command: TelephonyCommand,
    },
    /// The national Do-Not-Call registry and call-list scrubbing.
    Dnc {
        #[command(subcommand)]
        command: DncCommand,
    },
    /// Call recordings.
    Recording {
        #[command(subcommand)]
        command: RecordingCommand,
    },
    /// Compliance evidence: the signed control-by-control report, its verification, retention.
    Compliance {
        #[command(subcommand)]
        command: ComplianceCommand,
    },
    /// Inspect configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; prints its one-time setup token (valid 72 hours) and nothing else.
    Add {
        /// Lower-case letters, digits, '.', '_' or '-', starting with a letter.
        username: String,
        /// agent, supervisor, compliance or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// List accounts with their role and state.
    List,
    /// Lift a lockout after too many failed sign-ins.
    Unlock { username: String },
    /// Wipe an account's credentials and print a new setup token (lost authenticator). A
    /// compliance account set up again must be confirmed again before it approves erasures.
    Reset { username: String },
    /// Confirm the person behind a compliance account, so it may approve erasures (when no
    /// other compliance officer can; recorded in the audit log as the operator's).
    Confirm { username: String },
    /// Issue (or rotate) an agent's or supervisor's SIP credentials for their softphone; prints
    /// the SIP user name and the new password, shown only this once.
    SipCredentials { username: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute every entry and the Merkle tree, check every checkpoint's signature and its
    /// agreement with the log and with the witness file. Exits 0 only when everything checks
    /// out; otherwise names the first bad index.
    Verify {
        /// Check an export file offline instead of the database.
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
        /// The verifier key to trust (name+keyhash+base64key); default: this node's key, or
        /// for --export the key named in the file.
        #[arg(long, value_name = "KEY")]
        verifier_key: Option<String>,
    },
    /// Write every entry and checkpoint as JSON lines, for offline verification and archiving.
    Export {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum RecordingCommand {
    /// Read every recording of a call to its end with its stored key share, checking each
    /// chunk: prints what each holds, and fails if one is tampered with, truncated or unreadable.
    Check {
        /// The call's interaction id.
        interaction: String,
    },
}

#[derive(Subcommand)]
enum PaymentsCommand {
    /// Fetch the payment page (`/pay/preview`: headers, content, every script and stylesheet)
    /// from the running server and compare it with the baseline signed with the audit key
    /// (PCI DSS 11.6.1). The first run records the baseline. A change is written to the audit
    /// log, which raises an alert, and the command exits 1 naming what changed.
    PageCheck {
        /// The server's https:// address (default: public_url, else this machine's server).
        #[arg(long)]
        url: Option<url::Url>,
        /// Record the page as it is now as the new baseline (after a reviewed change).
        #[arg(long)]
        accept: bool,
    },
}

#[derive(Subcommand)]
enum TelephonyCommand {
    /// The telephony edge's API token (role `telephony`: keypad card capture only). The edge
    /// sends it as `Authorization: Bearer cgtel_…`; only its SHA-256 is stored.
    Token {
        #[command(subcommand)]
        command: TelephonyTokenCommand,
    },
}

#[derive(Subcommand)]
enum TelephonyTokenCommand {
    /// Issue the token and print it, shown only this once (refused when one is issued: rotate).
    Issue,
    /// Replace the token: the old one is refused at once; the new one is printed once.
    Rotate,
    /// Revoke the token: every request carrying it is refused from now on.
    Revoke,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Replace the key-encryption key while servers run: a new key is written to the key file,
    /// running servers pick it up within seconds, every wrapped data key, TOTP secret and other
    /// sealed value is re-sealed under it, and the old key is deleted. Safe to run again after
    /// an interruption: it resumes. Needs the key in a file (`kek_file`), not in CALLGUARD_KEK.
    Rotate,
}

#[derive(Subcommand)]
enum CustomerCommand {
    /// Print a one-time portal setup token for an existing customer (valid 72 hours) and
    /// nothing else. The customer signs in to the portal with their customer id. Inviting a
    /// customer who already has a portal account wipes its credentials (lost authenticator).
    Invite {
        /// The customer's id (12 digits, as `POST /api/v1/customers` answered).
        customer_id: String,
    },
}

#[derive(Subcommand)]
enum DncCommand {
    /// Import a registry file (one number per line as 10 digits or E.164, or the FTC's
    /// "area code,number" CSV). It replaces the registry in force atomically, once complete; a
    /// file with a bad line is refused whole, naming the lines.
    Import {
        file: PathBuf,
        /// Report and skip bad lines instead of refusing the file.
        #[arg(long)]
        skip_invalid: bool,
        /// A name for the source in the audit log (default: the file name).
        #[arg(long)]
        source: Option<String>,
    },
    /// Remove numbers that may not be called from a CSV call list, keeping its other columns.
    ///
    /// Every row is checked. The first line is a header only when none of its cells is a valid
    /// phone number and its phone column reads like a column name (letters, at most two
    /// digits); otherwise it is a row like any other, so a list of bare numbers, one per line,
    /// is checked from its first line. Both outputs have a header only if the input had one.
    ///
    /// Spreadsheet safety (OWASP, CSV injection): in both outputs a cell that a spreadsheet
    /// would read as a formula (starting with =, +, -, @, tab or carriage return, also after
    /// leading spaces) gets a leading single quote ', and a cell holding a comma, semicolon,
    /// tab, quote or line break is quoted. The phone column is written as the E.164 number
    /// that was checked (e.g. +12025550123): '+' and digits only, which a spreadsheet can at
    /// most show as a number, never run, and which dialers read as is, so it gets no quote
    /// mark. A phone cell that is not a valid number is neutralised like any other cell.
    Scrub {
        /// The call list (CSV, with or without a header line).
        input: PathBuf,
        /// Where the callable rows go.
        #[arg(long)]
        out: PathBuf,
        /// Where removed rows go, with the reason (default: OUT with .removed.csv).
        #[arg(long)]
        report: Option<PathBuf>,
        /// The phone column: a 1-based index, or a header name (default: the only column of
        /// the first line holding a valid number; with a header line, the first header
        /// containing "phone", "number" or "tel", else the first column).
        #[arg(long)]
        column: Option<String>,
        /// Keep only numbers with an active consent to calls for this purpose (e.g.
        /// telemarketing); others are removed as no_consent.
        #[arg(long)]
        purpose: Option<String>,
    },
}

#[derive(Subcommand)]
enum ComplianceCommand {
    /// Check every control against the live system and print the report, signed with the audit
    /// key at the current checkpoint. Exits 1 when a control fails (to gate a deployment).
    Report {
        /// pci, gdpr, iso27001 or all (default all).
        #[arg(long, value_name = "FRAMEWORK")]
        framework: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: compliance_cli::Format,
        /// Write the report to FILE instead of standard output (required for pdf).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Also print the time each control took, on standard error.
        #[arg(long)]
        timings: bool,
    },
    /// Check a JSON report's signature and digest offline. Exits 0 only when both hold.
    Verify {
        /// The report, as written by `report --format json`.
        file: PathBuf,
        /// The audit verifier key to trust (name+keyhash+base64key); default: the report's own.
        #[arg(long, value_name = "KEY")]
        verifier_key: Option<String>,
    },
    /// Run the retention purge now (the server runs it daily) and print what it removed.
    Retention,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print the effective values (secrets hidden).
    Check,
    /// List every configuration key with its environment variable.
    Keys,
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e: callguard_core::role::UnknownRole| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = |k: &str| std::env::var(k).ok();
    let raw = match config::Raw::load(cli.config.as_deref(), &env) {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    if let Command::Config {
        command: ConfigCommand::Keys,
    } = &cli.command
    {
        for k in config::KEYS {
            println!(
                "{:<14} {:<28} {}",
                k.name,
                config::env_name(k.name),
                k.about
            );
        }
        return ExitCode::SUCCESS;
    }
    let (mut level, json) = match raw.logging() {
        Ok(l) => l,
        Err(e) => return fail(&e),
    };
    // Operator commands print their result; their progress chatter stays out unless asked for.
    let serving = matches!(cli.command, Command::Serve | Command::Demo { .. });
    if !serving && !raw.log_level_configured() {
        level = "warn".into();
    }
    init_logging(&level, json);
    let mut settings = match raw.settings() {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    let sip = match raw.sip_settings() {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    // "My account" tells agents where their softphone registers (over TLS when required).
    settings.sip_server =
        sip.as_ref().map(
            |s| callguard_server::features::softphones::service::SipServer {
                realm: s.realm.clone(),
                address: match s.tls_listen {
                    Some(tls) if s.agents_require_tls => format!("{tls};transport=tls"),
                    _ => s.listen.to_string(),
                },
            },
        );
    // Only `serve` (and `demo`) may start a new installation; every other command that opens
    // the data directory works on an existing one, so a wrong path is an error, not a new
    // empty instance.
    let offline = matches!(
        cli.command,
        Command::Serve
            | Command::Demo { .. }
            | Command::Config { .. }
            | Command::Compliance {
                command: ComplianceCommand::Verify { .. }
            }
            | Command::Audit {
                command: AuditCommand::Verify {
                    export: Some(_),
                    ..
                }
            }
    );
    if !offline {
        if let Err(e) = existing_data_dir(&settings.data_dir) {
            return fail(&e);
        }
    }
    let data_dir_configured = raw.data_dir_configured();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Blocking work is bounded by its own limits (database readers, hashing threads); this
        // caps the pool that serves them.
        .max_blocking_threads(64)
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => {
                let mut front_ends = Vec::new();
                // The data directory exists once the runtime is open: SIP over TLS may take
                // its self-signed certificate from there.
                let rt = callguard_server::Runtime::open(&settings).await?;
                if let Some(mut sip) = sip {
                    if sip.tls_listen.is_some() {
                        let paths = callguard_server::serve::certificate_paths(&settings)?;
                        sip.tls_config = Some(callguard_telephony::sip::tls_config(&paths)?);
                    }
                    let bound = callguard_telephony::sip::bind(sip).await?;
                    front_ends.push(callguard_telephony::front_end(bound));
                }
                callguard_server::serve_with(settings, rt, shutdown_signal(), front_ends).await?;
                Ok(())
            }
            Command::Demo { data_dir } => {
                // --data-dir, then the configured data directory, then a new temporary one.
                settings.data_dir = match data_dir {
                    Some(dir) => dir,
                    None if data_dir_configured => settings.data_dir,
                    None => std::env::temp_dir()
                        .join(format!("callguard-demo-{}", callguard_core::now())),
                };
                demo::claim_data_dir(&settings.data_dir)?;
                settings.kek =
                    callguard_server::KekSource::File(settings.data_dir.join("keys").join("kek"));
                let origin = settings.audit.origin.clone();
                settings.audit = callguard_server::AuditSettings {
                    origin,
                    ..callguard_server::AuditSettings::defaults(&settings.data_dir)
                };
                demo::run(settings, sip, shutdown_signal()).await
            }
            Command::User { command } => user_command(&settings, command).await,
            Command::Recording {
                command: RecordingCommand::Check { interaction },
            } => {
                let rt = callguard_server::Runtime::open(&settings).await?;
                let recordings = callguard_server::features::recordings::service::Recordings::new(
                    rt.store.clone(),
                    rt.kek.clone(),
                    &settings.data_dir,
                );
                let reports = recordings.check(&interaction).await?;
                if reports.is_empty() {
                    return Err(format!("no recording of interaction {interaction}").into());
                }
                let mut failed = false;
                for r in reports {
                    match r {
                        Ok(c) => {
                            // Pauses (a keypad payment, a hold) after the verdict, each with
                            // its span: "; paused for payment from 9000 ms to 16000 ms".
                            let pauses: String = c
                                .pauses
                                .iter()
                                .map(|(why, from, until)| match until {
                                    Some(u) => format!("; paused for {why} from {from} ms to {u} ms"),
                                    None => format!("; paused for {why} from {from} ms to the end"),
                                })
                                .collect();
                            println!(
                                "recording {}: {} chunks, {} ms of audio, caller audible for {} ms, agent audible for {} ms, complete{pauses}",
                                c.id, c.chunks, c.audio_ms, c.caller_audible_ms, c.agent_audible_ms
                            );
                        }
                        Err(e) => {
                            failed = true;
                            println!("{e}");
                        }
                    }
                }
                if failed {
                    return Err("a recording failed its check".into());
                }
                Ok(())
            }
            Command::Keys {
                command: KeysCommand::Rotate,
            } => {
                let callguard_server::KekSource::File(kek_file) = settings.kek.clone() else {
                    return Err(
                        "the key-encryption key comes from CALLGUARD_KEK (or `kek`), so there is no key file to rotate: move it to a file named by `kek_file` first".into(),
                    );
                };
                let rt = callguard_server::Runtime::open(&settings).await?;
                let report = callguard_server::features::keys::service::rotate(&rt.store, &kek_file, &|line| {
                    eprintln!("{line}")
                })
                .await?;
                println!(
                    "rotated the key-encryption key {} -> {}: {} data keys, {} vault keys and {} other sealed values re-sealed in {} passes{}",
                    report.from.join(", "),
                    report.to,
                    report.data_keys,
                    report.vault_keys,
                    report.sealed_values,
                    report.passes,
                    if report.unreadable > 0 {
                        format!("; {} values no key opened were left as they were", report.unreadable)
                    } else {
                        String::new()
                    }
                );
                Ok(())
            }
            Command::Customer {
                command: CustomerCommand::Invite { customer_id },
            } => {
                let rt = callguard_server::Runtime::open(&settings).await?;
                let accounts = rt.accounts();
                let token = callguard_server::features::gdpr::service::invite(&rt.store, &accounts, &customer_id)
                    .await
                    .map_err(|e| match e {
                        callguard_server::error::Error::NotFound => {
                            format!("no customer {customer_id:?}: check the id (12 digits)").into()
                        }
                        other => api(other),
                    })?;
                println!("{}", token.expose());
                Ok(())
            }
            Command::Audit { command } => audit_command(&settings, command).await,
            Command::Compliance { command } => match command {
                ComplianceCommand::Report {
                    framework,
                    format,
                    out,
                    timings,
                } => {
                    let passed = compliance_cli::report(
                        &settings,
                        framework.as_deref(),
                        format,
                        out.as_deref(),
                        timings,
                    )
                    .await?;
                    if !passed {
                        return Err(ControlsFail.into());
                    }
                    Ok(())
                }
                ComplianceCommand::Verify { file, verifier_key } => {
                    compliance_cli::verify(&file, verifier_key.as_deref())
                }
                ComplianceCommand::Retention => compliance_cli::retention(&settings).await,
            },
            Command::Payments {
                command: PaymentsCommand::PageCheck { url, accept },
            } => page_check(&settings, url, accept).await,
            Command::Telephony {
                command: TelephonyCommand::Token { command },
            } => {
                let rt = callguard_server::Runtime::open(&settings).await?;
                let tokens =
                    callguard_server::features::keypad::token::EdgeTokens::new(rt.store.clone());
                match command {
                    TelephonyTokenCommand::Issue | TelephonyTokenCommand::Rotate => {
                        let rotate = matches!(command, TelephonyTokenCommand::Rotate);
                        let token = tokens.issue(&Actor::cli(), rotate).await.map_err(api)?;
                        println!("{}", token.expose());
                        eprintln!("the telephony edge's API token, shown only now; send it as `Authorization: Bearer …`");
                    }
                    TelephonyTokenCommand::Revoke => {
                        tokens.revoke(&Actor::cli()).await.map_err(api)?;
                        eprintln!("the telephony token is revoked");
                    }
                }
                Ok(())
            }
            Command::Dnc { command } => {
                let rt = callguard_server::Runtime::open(&settings).await?;
                match command {
                    DncCommand::Import {
                        file,
                        skip_invalid,
                        source,
                    } => dnc_cli::import(&rt, &file, skip_invalid, source).await,
                    DncCommand::Scrub {
                        input,
                        out,
                        report,
                        column,
                        purpose,
                    } => {
                        dnc_cli::scrub(
                            &rt,
                            &input,
                            &out,
                            report.as_deref(),
                            column.as_deref(),
                            purpose.as_deref(),
                        )
                        .await
                    }
                }
            }
            Command::Config {
                command: ConfigCommand::Check,
            } => {
                print!("{}", raw.render());
                println!("configuration is valid");
                Ok(())
            }
            Command::Config {
                command: ConfigCommand::Keys,
            } => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&*e),
    }
}

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// A compliance report with a failing control: exit status 1, the report already printed.
#[derive(Debug)]
struct ControlsFail;

impl std::fmt::Display for ControlsFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a compliance control fails (see the report)")
    }
}

impl std::error::Error for ControlsFail {}

async fn user_command(
    settings: &callguard_server::Settings,
    command: UserCommand,
) -> Result<(), AnyError> {
    let rt = callguard_server::Runtime::open(settings).await?;
    let identity = rt.identity(Default::default(), None);
    let accounts = rt.accounts();
    match command {
        UserCommand::Add { username, role } => {
            let (_, token) = identity
                .create_user(&username, role, &Actor::cli())
                .await
                .map_err(api)?;
            println!("{}", token.expose());
        }
        UserCommand::List => {
            for u in accounts.list_users().await.map_err(api)? {
                let locked = if u.is_locked(callguard_core::now()) {
                    " locked"
                } else {
                    ""
                };
                println!(
                    "{:<24} {:<11} {}{locked}",
                    u.username,
                    u.role,
                    u.status.as_str()
                );
            }
        }
        UserCommand::SipCredentials { username } => {
            let softphones = callguard_server::features::softphones::service::Softphones::new(
                rt.store.clone(),
                rt.kek.clone(),
            );
            let (name, password) = softphones
                .issue(&Actor::cli(), &username)
                .await
                .map_err(api)?;
            println!(
                "SIP user name: {name}\nSIP password:  {} (shown only now)",
                password.expose()
            );
        }
        UserCommand::Unlock { username } => {
            let u = find(&rt, &username).await?;
            accounts.unlock(&Actor::cli(), &u.id).await.map_err(api)?;
            eprintln!("{username} is unlocked");
        }
        UserCommand::Reset { username } => {
            let u = find(&rt, &username).await?;
            let token = accounts
                .reset_setup(&Actor::cli(), &u.id)
                .await
                .map_err(api)?;
            println!("{}", token.expose());
        }
        UserCommand::Confirm { username } => {
            let u = find(&rt, &username).await?;
            accounts
                .operator_confirm(&Actor::cli(), &u.id)
                .await
                .map_err(api)?;
            eprintln!("{username} is confirmed and may approve erasures");
        }
    }
    Ok(())
}

async fn page_check(
    settings: &callguard_server::Settings,
    url: Option<url::Url>,
    accept: bool,
) -> Result<(), AnyError> {
    use callguard_server::features::payments::tamper::{for_settings, Verdict};
    let rt = callguard_server::Runtime::open(settings).await?;
    let check = for_settings(settings, url)?;
    let actor = callguard_server::principal::Actor::cli();
    match check.check(&rt.store, &actor, accept).await? {
        Verdict::Recorded => println!("payment page: baseline recorded and signed"),
        Verdict::Unchanged => println!("payment page: unchanged since the signed baseline"),
        Verdict::Changed(what) => {
            return Err(format!(
                "payment page CHANGED (an alert is raised): {}",
                what.join("; ")
            )
            .into())
        }
    }
    Ok(())
}

async fn audit_command(
    settings: &callguard_server::Settings,
    command: AuditCommand,
) -> Result<(), AnyError> {
    use callguard_server::features::audit::verify as audit;
    let started = std::time::Instant::now();
    let progress = |n: u64| {
        if n % 1_000_000 < 20_000 && n >= 1_000_000 {
            eprintln!("  … {n} entries checked");
        }
    };
    match command {
        AuditCommand::Verify {
            export: Some(file),
            verifier_key,
        } => {
            let report = audit::verify_export(&file, verifier_key.as_deref())
                .map_err(|e| format!("FAILED: {e}"))?;
            println!(
                "audit verify: OK — {} entries in {} are intact and covered by {} valid checkpoint signatures (root {})",
                report.entries,
                file.display(),
                report.checkpoints,
                data_encoding::BASE64.encode(&report.root)
            );
        }
        AuditCommand::Verify {
            export: None,
            verifier_key,
        } => {
            let rt = callguard_server::Runtime::open(settings).await?;
            let key = verifier_key.unwrap_or_else(|| rt.audit.verifier_key());
            let report = audit::verify_store(
                rt.store.as_ref(),
                &key,
                &settings.audit.witness.file(),
                progress,
            )
            .await
            .map_err(|e| format!("FAILED: {e}"))?;
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            println!(
                "audit verify: OK — {} entries, {} checkpoints and {} witness checkpoints check out (root {}; {:.0} entries/s)",
                report.entries,
                report.checkpoints,
                report.witness_checkpoints,
                data_encoding::BASE64.encode(&report.root),
                report.entries as f64 / secs
            );
        }
        AuditCommand::Export { out } => {
            let rt = callguard_server::Runtime::open(settings).await?;
            // Cover every entry with a signature before exporting.
            rt.audit.checkpoint_now().await.map_err(api)?;
            let file = std::fs::File::create(&out)
                .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
            let mut w = std::io::BufWriter::new(file);
            let n = audit::export(
                rt.store.as_ref(),
                &rt.audit.verifier_key(),
                &mut w,
                progress,
            )
            .await?;
            std::io::Write::flush(&mut w)
                .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
            eprintln!("exported {n} entries to {}", out.display());
        }
    }
    Ok(())
}

async fn find(
    rt: &callguard_server::Runtime,
    username: &str,
) -> Result<callguard_core::identity::User, AnyError> {
    rt.store.user_by_username(username).await?.ok_or_else(|| {
        format!("no account named {username:?}; `callguard user list` shows them").into()
    })
}

/// The data directory of an existing installation.
fn existing_data_dir(dir: &std::path::Path) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    let what = if dir.exists() {
        "is not a directory"
    } else {
        "does not exist"
    };
    Err(format!(
        "data directory {} {what}; nothing was created. Start `callguard serve` once to create a new installation there, or set CALLGUARD_DATA_DIR (or `data_dir` in the --config file) to the right one",
        dir.display()
    ))
}

fn api(e: callguard_server::error::Error) -> AnyError {
    e.to_string().into()
}

fn fail(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("callguard: {e}");
    ExitCode::FAILURE
}

fn init_logging(level: &str, json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{level},hyper=warn,rustls=warn,tokio_postgres=warn"
        ))
    });
    // Colours only for a person at a terminal, never into files or log collectors.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("stop requested");
}

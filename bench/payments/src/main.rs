//! Payment gateway benchmark (issue #11).
//!
//! Measures, in one run on one machine, card tokenisations + charges per second (one
//! `POST /v1/payment_methods` and one `POST /v1/payment_intents` with `confirm=true`, MOTO):
//! 1. through Callguard's Stripe client (`StripeGateway::charge`: card data written into a wiped
//!    buffer, per-step idempotency keys, typed answers, decline mapping);
//! 2. alternating with it, the same two requests from a plain reqwest client that formats the
//!    bodies with `format!` and reads only the two ids it needs: the peer alone, as fast as a
//!    client can drive it.
//!
//! Both drive the same local Stripe test peer (callguard-testkit) on 127.0.0.1 over plain HTTP,
//! which runs on its own runtime thread(s); the ratio (1) / (2) is the client's overhead, goal
//! ≥ 0.8. The peer forgets its objects between rounds so its maps stay small.
#![forbid(unsafe_code)]

use callguard_core::payments::{CardDetails, Currency, Money};
use callguard_server::features::payments::gateway::{
    ChargeOutcome, ChargeRequest, Gateway, StripeGateway, StripeSettings, STRIPE_VERSION,
};
use callguard_testkit::StripePeer;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const USAGE: &str = "\
callguard-bench-payments: tokenisations + charges per second through the Stripe client (issue #11)

usage: callguard-bench-payments [options]
  --clients N         concurrent charges in flight (default 16)
  --seconds S         each measured phase (default 8, after --warmup)
  --warmup S          warm-up before each phase (default 1)
  --rounds N          client/plain pairs, alternating (default 3)
  --peer-threads N    worker threads of the peer's runtime (default 1)
  --client-threads N  worker threads of the clients' runtime (default 1)
";

struct Options {
    clients: usize,
    seconds: u64,
    warmup: u64,
    rounds: usize,
    peer_threads: usize,
    client_threads: usize,
}

fn options() -> Res<Options> {
    let mut o = Options {
        clients: 16,
        seconds: 8,
        warmup: 1,
        rounds: 3,
        peer_threads: 1,
        client_threads: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || -> Res<u64> {
            Ok(args
                .next()
                .ok_or_else(|| format!("{a} needs a value"))?
                .parse()?)
        };
        match a.as_str() {
            "--clients" => o.clients = usize::try_from(value()?)?,
            "--seconds" => o.seconds = value()?,
            "--warmup" => o.warmup = value()?,
            "--rounds" => o.rounds = usize::try_from(value()?)?,
            "--peer-threads" => o.peer_threads = usize::try_from(value()?)?,
            "--client-threads" => o.client_threads = usize::try_from(value()?)?,
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}\n{USAGE}").into()),
        }
    }
    Ok(o)
}

/// One way of making a charge, driven by the load loop.
#[derive(Clone)]
enum Driver {
    Gateway(Arc<StripeGateway>, Arc<CardDetails>),
    Plain(reqwest::Client, url::Url, String),
}

impl Driver {
    async fn charge(&self, amount: Money) -> Res<()> {
        let key = uuid::Uuid::new_v4().simple().to_string();
        match self {
            Self::Gateway(gw, card) => {
                let out = gw
                    .charge(&ChargeRequest {
                        idempotency_key: &key,
                        amount,
                        card,
                        description: "Invoice 1207",
                        reference: "pay_bench",
                        moto: true,
                        return_url: None,
                    })
                    .await?;
                match out {
                    ChargeOutcome::Authorised { .. } => Ok(()),
                    other => Err(format!("not authorised: {other:?}").into()),
                }
            }
            Self::Plain(http, base, secret) => plain_charge(http, base, secret, &key).await,
        }
    }
}

/// The same two requests with nothing but reqwest and `format!`.
async fn plain_charge(http: &reqwest::Client, base: &url::Url, key: &str, idem: &str) -> Res<()> {
    let (pm_url, pi_url) = (
        base.join("/v1/payment_methods")?,
        base.join("/v1/payment_intents")?,
    );
    let post = |url: &url::Url, k: String, body: String| {
        http.post(url.clone())
            .bearer_auth(key)
            .header("Stripe-Version", STRIPE_VERSION)
            .header("Idempotency-Key", k)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let pm = post(
        &pm_url,
        format!("{idem}-pm"),
        "type=card&card[number]=4242424242424242&card[exp_month]=12&card[exp_year]=2031\
         &card[cvc]=123"
            .to_owned(),
    )
    .await?
    .bytes()
    .await?;
    let pm: serde_json::Value = serde_json::from_slice(&pm)?;
    let pm_id = pm["id"].as_str().ok_or("no PaymentMethod id")?;
    let pi = post(
        &pi_url,
        format!("{idem}-pi"),
        format!(
            "amount=1999&currency=eur&payment_method={pm_id}&payment_method_types[0]=card\
             &confirm=true&metadata[payment_id]=pay_bench&description=Invoice+1207\
             &payment_method_options[card][moto]=true"
        ),
    )
    .await?
    .bytes()
    .await?;
    let pi: serde_json::Value = serde_json::from_slice(&pi)?;
    if pi["status"] == "succeeded" {
        Ok(())
    } else {
        Err("not authorised".into())
    }
}

/// Charges per second of `clients` concurrent loops over `seconds`, after a warm-up.
async fn measure(driver: &Driver, o: &Options, amount: Money) -> Res<(f64, u64)> {
    let run = |secs: u64| async move {
        let done = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let until = Instant::now() + Duration::from_secs(secs);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..o.clients {
            let (driver, done, failed) = (driver.clone(), done.clone(), failed.clone());
            tasks.push(tokio::spawn(async move {
                while Instant::now() < until {
                    match driver.charge(amount).await {
                        Ok(()) => done.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }));
        }
        for t in tasks {
            t.await?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        Res::Ok((
            done.load(Ordering::Relaxed) as f64 / elapsed,
            failed.load(Ordering::Relaxed),
        ))
    };
    run(o.warmup).await?;
    run(o.seconds).await
}

fn main() -> Res<()> {
    let o = options()?;
    let peer_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.peer_threads)
        .enable_all()
        .build()?;
    let peer = peer_rt.block_on(StripePeer::start());
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.client_threads)
        .enable_all()
        .build()?;
    client_rt.block_on(run(&o, &peer))
}

async fn run(o: &Options, peer: &StripePeer) -> Res<()> {
    let now = i64::try_from(std::time::UNIX_EPOCH.elapsed()?.as_secs())?;
    let card = CardDetails::parse("4242424242424242", "12", "2031", "123", None, now)?;
    let settings = StripeSettings {
        base_url: peer.base_url(),
        secret_key: peer.secret_key().to_owned().into(),
        timeout: Duration::from_secs(30),
    };
    let gateway = Driver::Gateway(Arc::new(StripeGateway::new(&settings)?), Arc::new(card));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let plain = Driver::Plain(http, peer.base_url(), peer.secret_key().to_owned());
    let amount = Money::new(1999, Currency::from_code("EUR")?)?;
    println!(
        "callguard-bench-payments: {} clients, {} s per phase after {} s warm-up, {} rounds, \
         peer on {} thread(s), clients on {} thread(s), {} cores",
        o.clients,
        o.seconds,
        o.warmup,
        o.rounds,
        o.peer_threads,
        o.client_threads,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "{:<6} {:>22} {:>22} {:>7}",
        "round", "Stripe client /s", "plain reqwest /s", "ratio"
    );
    let (mut sum_gw, mut sum_plain) = (0.0, 0.0);
    for round in 1..=o.rounds {
        peer.forget();
        let (gw, gw_failed) = measure(&gateway, o, amount).await?;
        peer.forget();
        let (pl, pl_failed) = measure(&plain, o, amount).await?;
        if gw_failed + pl_failed > 0 {
            return Err(format!("{gw_failed} client and {pl_failed} plain charges failed").into());
        }
        println!("{round:<6} {gw:>22.0} {pl:>22.0} {:>7.3}", gw / pl);
        sum_gw += gw;
        sum_plain += pl;
    }
    let n = o.rounds as f64;
    println!(
        "mean   {:>22.0} {:>22.0} {:>7.3}   (goal >= 0.8)",
        sum_gw / n,
        sum_plain / n,
        sum_gw / sum_plain
    );
    println!(
        "peer totals: {} requests, {} charges",
        peer.requests(),
        peer.charges()
    );
    Ok(())
}

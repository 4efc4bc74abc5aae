//! The SIP endpoint on `sip.listen` (UDP and TCP) and `sip.tls_listen` (TLS): INVITEs from the carriers in `sip.trunks`
//! are answered, every other INVITE gets 403; REGISTER goes to the registrar for agents'
//! softphones. The ezk crates stay inside this module: the rest of Callguard sees [`Edge`].

pub mod acd;
pub mod bridge;
pub mod call;
pub mod consult;
pub mod digest;
pub mod info;
pub mod ivr;
pub mod monitor;
pub mod presence;
pub mod registrar;
pub mod sdes;
pub mod sdp;
pub mod secure;
pub mod session;
pub mod srtp_leg;
pub mod transfer;
pub mod trunks;

use crate::media::prompts::PromptSet;
use callguard_server::features::incall::service::LiveCalls;
use callguard_server::features::interactions::service::Interactions;
use callguard_server::features::recordings::service::Recordings;
use callguard_server::metrics::Metrics;
use ezk_sip_core::{Endpoint, IncomingRequest, Layer, MayTake};
use ezk_sip_types::uri::SipUri;
use ezk_sip_types::{Method, StatusCode};
use ezk_sip_ua::dialog::DialogLayer;
use ezk_sip_ua::invite::InviteLayer;
use registrar::{Registrar, SipAccounts};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use tokio::sync::mpsc;
use trunks::Trunks;

/// The `sip.*` settings.
#[derive(Debug, Clone)]
pub struct SipSettings {
    /// Where SIP is served, UDP and TCP.
    pub listen: SocketAddr,
    /// The carriers allowed to place calls.
    pub trunks: Trunks,
    /// The digest realm of the registrar.
    pub realm: String,
    /// The digest algorithms the registrar challenges with, in order.
    pub digest_algorithms: Vec<digest::Algorithm>,
    /// The address written in SDP answers (RTP is bound there).
    pub media_ip: IpAddr,
    /// Even ports in this range carry RTP, one per call.
    pub rtp_ports: (u16, u16),
    /// The IVR menu: key → queue.
    pub menu: ivr::Menu,
    /// Prompts played to callers (built-in, or the operator's WAV files).
    pub prompts: Arc<PromptSet>,
    /// Queues: ring timeout, maximum wait, overflow, position announcements.
    pub acd: acd::AcdSettings,
    /// Where SIP over TLS is served for agents' softphones (`sip.tls_listen`), if anywhere.
    pub tls_listen: Option<SocketAddr>,
    /// The certificate for `tls_listen` (see [`tls_config`]); required when it is set.
    pub tls_config: Option<Arc<rustls::ServerConfig>>,
    /// Only registrations over TLS are accepted (`sip.agents_require_tls`).
    pub agents_require_tls: bool,
    /// Agents' legs must be SRTP: a softphone answering plain RTP is not bridged
    /// (`sip.agents_require_srtp`).
    pub agents_require_srtp: bool,
    /// What replaces a caller's key tone in the agent's audio during a keypad payment.
    pub dtmf_mask: crate::media::mask::MaskStyle,
}

/// The server's certificate and key (`tls.*`, or the self-signed one) for SIP over TLS: the
/// same rustls configuration as HTTPS, without its HTTP protocol negotiation.
pub fn tls_config(
    certificate: &callguard_server::http::tls::CertificatePaths,
) -> Result<Arc<rustls::ServerConfig>, callguard_server::http::tls::TlsError> {
    let https = callguard_server::http::tls::server_config(certificate)?;
    let mut config = (*https).clone();
    config.alpn_protocols.clear();
    Ok(Arc::new(config))
}

/// Why the edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("cannot listen for SIP on {0}: {1}")]
    Listen(SocketAddr, std::io::Error),
    #[error("the SIP contact address is not valid: {0}")]
    Contact(String),
    #[error("sip.tls_listen is set but no certificate was loaded for it")]
    NoCertificate,
}

/// The running SIP edge.
pub struct Edge {
    settings: SipSettings,
    metrics: Arc<Metrics>,
    interactions: Arc<Interactions>,
    recordings: Arc<Recordings>,
    prompts: Arc<PromptSet>,
    registrar: Registrar,
    contact: SipUri,
    /// Our contact on the TLS listener (for agents reached over TLS).
    tls_contact: Option<SipUri>,
    agents: Arc<dyn acd::AgentPool>,
    waiting: Arc<acd::Waiting>,
    /// Bridged calls, where supervisors' legs join.
    bridges: Arc<monitor::Bridges>,
    /// Bridged calls, for keypad payments inside them ([`secure`]).
    live_calls: Arc<LiveCalls>,
    /// Callers' dialogs whose SIP INFO key presses reach their calls' media.
    info: Arc<info::InfoRoutes>,
    /// Bridged calls, where transfer orders arrive ([`transfer`]).
    transfers: Arc<transfer::EdgeTransfers>,
}

/// The requests the edge takes from the ezk endpoint (those outside any dialog).
enum Taken {
    Invite(IncomingRequest),
    Register(IncomingRequest),
}

struct Intake(mpsc::Sender<Taken>);

#[async_trait::async_trait]
impl Layer for Intake {
    fn name(&self) -> &'static str {
        "callguard-intake"
    }

    async fn receive(&self, _endpoint: &Endpoint, request: MayTake<'_, IncomingRequest>) {
        let method = request.line.method.clone();
        let taken = if method == Method::INVITE {
            Taken::Invite(request.take())
        } else if method == Method::REGISTER {
            Taken::Register(request.take())
        } else {
            return;
        };
        // A full queue means the edge is overloaded: the transaction times out at the peer,
        // which retries elsewhere.
        let _ = self.0.try_send(taken);
    }
}

/// The bound SIP sockets, waiting for the services to run on.
pub struct Bound {
    endpoint: Endpoint,
    intake: mpsc::Receiver<Taken>,
    settings: SipSettings,
    monitor: Arc<monitor::EdgeMonitor>,
    info: Arc<info::InfoRoutes>,
    transfers: Arc<transfer::EdgeTransfers>,
}

/// Binds UDP and TCP on `settings.listen`, and TLS on `settings.tls` when set.
pub async fn bind(settings: SipSettings) -> Result<Bound, EdgeError> {
    let (tx, intake) = mpsc::channel(1024);
    let mut b = Endpoint::builder();
    b.user_agent("Callguard");
    // Before the dialog layer: it sees callers' in-dialog requests first (see [`info`]).
    let info = Arc::new(info::InfoRoutes::default());
    b.add_layer(info::InfoTap(info.clone()));
    b.add_layer(DialogLayer::default());
    b.add_layer(InviteLayer::default());
    b.add_layer(Intake(tx));
    b.bind_udp(settings.listen)
        .await
        .map_err(|e| EdgeError::Listen(settings.listen, e))?;
    b.listen_tcp(settings.listen)
        .await
        .map_err(|e| EdgeError::Listen(settings.listen, e))?;
    if let Some(listen) = settings.tls_listen {
        let config = settings
            .tls_config
            .clone()
            .ok_or(EdgeError::NoCertificate)?;
        b.listen_rustls(listen, tokio_rustls::TlsAcceptor::from(config))
            .await
            .map_err(|e| EdgeError::Listen(listen, e))?;
    }
    Ok(Bound {
        endpoint: b.build(),
        intake,
        settings,
        monitor: Arc::default(),
        info,
        transfers: Arc::default(),
    })
}

impl Bound {
    /// Where supervisors join calls (working once the edge runs).
    #[must_use]
    pub fn monitor(&self) -> Arc<monitor::EdgeMonitor> {
        self.monitor.clone()
    }

    /// Where the server's transfer orders reach the calls (working once the edge runs).
    #[must_use]
    pub fn transfers(&self) -> Arc<transfer::EdgeTransfers> {
        self.transfers.clone()
    }

    /// Serves calls and registrations until the task is aborted.
    pub async fn run(
        self,
        metrics: Arc<Metrics>,
        interactions: Arc<Interactions>,
        recordings: Arc<Recordings>,
        accounts: Arc<dyn SipAccounts>,
        agents: Arc<dyn acd::AgentPool>,
        live_calls: Arc<LiveCalls>,
    ) {
        let Bound {
            endpoint,
            mut intake,
            settings,
            monitor,
            info,
            transfers,
        } = self;
        let host = match settings.media_ip {
            IpAddr::V6(ip) => format!("[{ip}]"),
            IpAddr::V4(ip) => ip.to_string(),
        };
        let contact = match format!("sip:callguard@{host}:{}", settings.listen.port()).parse() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %EdgeError::Contact(format!("{e:?}")), "SIP edge not started");
                return;
            }
        };
        let tls_contact = match settings.tls_listen {
            Some(tls) => match format!("sip:callguard@{host}:{};transport=tls", tls.port()).parse()
            {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::error!(error = %EdgeError::Contact(format!("{e:?}")), "SIP edge not started");
                    return;
                }
            },
            None => None,
        };
        let edge = Arc::new(Edge {
            registrar: Registrar::new(settings.realm.clone(), accounts, metrics.clone())
                .with_algorithms(settings.digest_algorithms.clone())
                .requiring_tls(settings.agents_require_tls),
            tls_contact,
            prompts: settings.prompts.clone(),
            settings,
            interactions,
            recordings,
            metrics,
            contact,
            agents,
            waiting: Arc::default(),
            bridges: Arc::default(),
            live_calls,
            info,
            transfers,
        });
        monitor.attach(edge.clone(), endpoint.clone());
        // Caller IDs are checked against the numbering plan, which loads on first use: load it
        // now, off the runtime, rather than inside the first call.
        tokio::task::spawn_blocking(|| callguard_core::vault::validate::phone("+48600123456"));
        tracing::info!(listen = %edge.settings.listen, "SIP edge listening (UDP and TCP)");
        if let Some(tls) = edge.settings.tls_listen {
            tracing::info!(listen = %tls, require_tls = edge.settings.agents_require_tls, require_srtp = edge.settings.agents_require_srtp, "SIP edge listening (TLS)");
        }
        while let Some(taken) = intake.recv().await {
            let (edge, endpoint) = (edge.clone(), endpoint.clone());
            tokio::spawn(async move {
                match taken {
                    Taken::Invite(invite) => edge.invite(endpoint, invite).await,
                    Taken::Register(r) => {
                        let over_tls = edge.over_tls(&r);
                        edge.registrar.handle(&endpoint, r, over_tls).await;
                    }
                }
            });
        }
    }
}

impl Edge {
    /// Whether `request` came over the TLS listener (a connection accepted on its address).
    fn over_tls(&self, request: &IncomingRequest) -> bool {
        let Some(tls) = self.settings.tls_listen else {
            return false;
        };
        let bound = request.tp_info.transport.bound();
        !request.tp_info.transport.is_udp()
            && bound.port() == tls.port()
            && (tls.ip().is_unspecified() || bound.ip() == tls.ip())
    }

    /// A carrier's call is answered; anyone else's is refused with 403 and counted.
    async fn invite(self: Arc<Self>, endpoint: Endpoint, invite: IncomingRequest) {
        let source = invite.tp_info.source.ip();
        if !self.settings.trunks.admits(source) {
            self.metrics.sip_refused("not_trunk");
            tracing::info!(source = %source, "INVITE refused: not a configured trunk");
            return call::refuse(&endpoint, invite, StatusCode::FORBIDDEN).await;
        }
        call::answer(self, endpoint, invite).await;
    }
}

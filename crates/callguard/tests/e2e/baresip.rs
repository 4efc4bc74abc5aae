//! baresip (Debian) as an agent's softphone for the telephony tests: headless, registered to
//! the edge with the SIP credentials the CLI issued, answering by itself (or never), sending a
//! tone from a WAV file and saving what it hears (`sndfile`: `…-dec.wav`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running baresip; killed when dropped.
pub struct Softphone {
    child: Child,
    pub dir: PathBuf,
}

impl Drop for Softphone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes `seconds` of a `hz` sine as a 16-bit 8 kHz mono WAV.
pub fn write_tone_wav(path: &Path, hz: f64, seconds: u32) {
    let samples: Vec<i16> = (0..seconds * 8000)
        .map(|n| (9000.0 * (2.0 * std::f64::consts::PI * hz * f64::from(n) / 8000.0).sin()) as i16)
        .collect();
    let data_len = (samples.len() * 2) as u32;
    let mut b = Vec::with_capacity(44 + data_len as usize);
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + data_len).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&8000u32.to_le_bytes());
    b.extend_from_slice(&16000u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        b.extend_from_slice(&s.to_le_bytes());
    }
    std::fs::write(path, b).unwrap();
}

impl Softphone {
    /// Starts baresip in `dir` as `user`/`password`, listening on `port` (RTP just above it,
    /// ctrl_tcp on `port + 1000`), answering calls by itself when `answer` is true, sending a
    /// `hz` tone.
    pub fn start(dir: &Path, user: &str, password: &str, port: u16, answer: bool, hz: f64) -> Self {
        std::fs::create_dir_all(dir.join("rec")).unwrap();
        let voice = dir.join("voice.wav");
        write_tone_wav(&voice, hz, 120);
        let config = format!(
            "poll_method\tepoll\nsip_listen\t127.0.0.1:{port}\nnet_interface\t127.0.0.1\naudio_path\t/usr/share/baresip\naudio_player\talsa,null\naudio_source\taufile,{voice}\naudio_alert\talsa,null\naudio_srate\t8000\naudio_channels\t1\nrtp_ports\t{r0}-{r1}\nmodule_path\t/usr/lib/baresip/modules\nmodule\tg711.so\nmodule\taufile.so\nmodule\talsa.so\nmodule\tsndfile.so\nmodule_app\taccount.so\nmodule_app\tmenu.so\nmodule_app\tctrl_tcp.so\nctrl_tcp_listen\t127.0.0.1:{ctrl}\nsnd_path\t{rec}\n",
            voice = voice.display(),
            r0 = port + 10,
            r1 = port + 30,
            ctrl = port + 1000,
            rec = dir.join("rec").display(),
        );
        std::fs::write(dir.join("config"), config).unwrap();
        let mode = if answer { "auto" } else { "manual" };
        std::fs::write(
            dir.join("accounts"),
            format!("<sip:{user}@127.0.0.1>;auth_user={user};auth_pass={password};outbound=\"sip:127.0.0.1:5060\";regint=60;answermode={mode};audio_codecs=PCMA,PCMU\n"),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("baresip.log")).unwrap();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("baresip (Debian) is installed");
        Self {
            child,
            dir: dir.to_owned(),
        }
    }

    /// What baresip printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("baresip.log")).unwrap_or_default()
    }

    /// The audio this softphone received (16-bit mono 8 kHz), empty if it took no call.
    pub fn heard(&self) -> Vec<i16> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.dir.join("rec")).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with("-dec.wav") {
                continue;
            }
            let b = std::fs::read(e.path()).unwrap();
            let Some(at) = b.windows(4).position(|w| w == b"data") else {
                continue;
            };
            out.extend(
                b[(at + 8).min(b.len())..]
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]])),
            );
        }
        out
    }
}

/// Whether `samples` hold a `hz` tone for at least `seconds`: one-second blocks in which that
/// tone carries most of the energy (the crate's Goertzel measure).
pub fn seconds_of_tone(samples: &[i16], hz: f32) -> usize {
    samples
        .chunks_exact(8000)
        .filter(|b| callguard_telephony::media::goertzel::tone_share(b, hz) > 0.5)
        .count()
}

impl Softphone {
    /// Starts baresip in `dir` as `user`, registering over TLS to the edge's `tls_port` and
    /// trusting `cafile` (the edge's certificate), answering by itself, sending a `hz` tone.
    /// With `srtp` its account requires SRTP (`mediaenc=srtp-mand`); without, it knows only
    /// plain RTP.
    pub fn start_tls(
        dir: &Path,
        user: &str,
        password: &str,
        port: u16,
        hz: f64,
        tls: (u16, &Path),
        srtp: bool,
    ) -> Self {
        let (tls_port, cafile) = tls;
        std::fs::create_dir_all(dir.join("rec")).unwrap();
        let voice = dir.join("voice.wav");
        write_tone_wav(&voice, hz, 120);
        let config = format!(
            "poll_method\tepoll\nsip_listen\t127.0.0.1:{port}\nsip_cafile\t{ca}\nnet_interface\t127.0.0.1\naudio_path\t/usr/share/baresip\naudio_player\talsa,null\naudio_source\taufile,{voice}\naudio_alert\talsa,null\naudio_srate\t8000\naudio_channels\t1\nrtp_ports\t{r0}-{r1}\nmodule_path\t/usr/lib/baresip/modules\nmodule\tg711.so\nmodule\taufile.so\nmodule\talsa.so\nmodule\tsndfile.so\nmodule\tsrtp.so\nmodule_app\taccount.so\nmodule_app\tmenu.so\nmodule_app\tctrl_tcp.so\nctrl_tcp_listen\t127.0.0.1:{ctrl}\nsnd_path\t{rec}\n",
            ca = cafile.display(),
            voice = voice.display(),
            r0 = port + 10,
            r1 = port + 30,
            ctrl = port + 1000,
            rec = dir.join("rec").display(),
        );
        std::fs::write(dir.join("config"), config).unwrap();
        let mediaenc = if srtp { ";mediaenc=srtp-mand" } else { "" };
        std::fs::write(
            dir.join("accounts"),
            format!("<sip:{user}@127.0.0.1;transport=tls>;auth_user={user};auth_pass={password};outbound=\"sip:127.0.0.1:{tls_port};transport=tls\";regint=60;answermode=auto;audio_codecs=PCMA,PCMU{mediaenc}\n"),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("baresip.log")).unwrap();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("baresip (Debian) is installed");
        Self {
            child,
            dir: dir.to_owned(),
        }
    }
}

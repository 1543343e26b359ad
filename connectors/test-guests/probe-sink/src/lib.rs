//! A sink for the host's own tests. Records whose payload starts with `!` are commands that make the guest
//! misbehave on purpose; any other record is accepted and counted (this is also the throughput benchmark's sink).
//!
//! Commands: `!retry`, `!fatal`, `!loop` (spin forever), `!alloc <bytes>` (allocate and touch memory),
//! `!trap <message>` (panic), `!http <url>` (GET, fatal outcome carries the error), `!state` (write state).

use busbar_connector_sdk::{
    Capability, Description, Error, Event, Kind, Outcome, Sink, export_sink, http, log, state,
};

struct Probe {
    label: String,
    records: u64,
    bytes: u64,
    /// Memory the guest was told to keep, so `!alloc` grows the instance for real.
    hoard: Vec<Vec<u8>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    label: String,
}

impl Sink for Probe {
    type Config = Config;

    fn describe() -> Description {
        Description {
            name: "probe-sink".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            kind: Kind::Sink,
            summary: "test sink: counts records, misbehaves on command".into(),
            config_schema: r#"{"type":"object","properties":{"label":{"type":"string","minLength":1}},"required":["label"],"additionalProperties":false}"#.into(),
            needs: vec![Capability::State],
        }
    }

    fn open(config: Config) -> Result<Self, Error> {
        if config.label == "reject" {
            return Err(Error::fatal(
                "label `reject` is refused by the probe on purpose",
            ));
        }
        log::info(&format!("probe {} open", config.label));
        Ok(Probe {
            label: config.label,
            records: 0,
            bytes: 0,
            hoard: Vec::new(),
        })
    }

    fn write(&mut self, batch: Vec<Event>) -> Vec<Outcome> {
        batch.into_iter().map(|event| self.one(event)).collect()
    }

    fn close(&mut self) {
        log::info(&format!(
            "probe {} closed after {} records, {} bytes",
            self.label, self.records, self.bytes
        ));
    }
}

impl Probe {
    fn one(&mut self, event: Event) -> Outcome {
        self.records += 1;
        self.bytes += event.payload.len() as u64;
        if event.payload.first() != Some(&b'!') {
            return Outcome::Ok;
        }
        let text = String::from_utf8_lossy(&event.payload[1..]).into_owned();
        let (command, arg) = text.split_once(' ').unwrap_or((text.as_str(), ""));
        match command {
            "retry" => Outcome::Retryable("asked to retry".into()),
            "fatal" => Outcome::Fatal("asked to fail".into()),
            "loop" => spin(),
            "alloc" => {
                let n: usize = arg.parse().unwrap_or(0);
                let mut block = vec![0u8; n];
                // Touch every page so the memory is really committed.
                for i in (0..n).step_by(4096) {
                    block[i] = 1;
                }
                self.hoard.push(block);
                Outcome::Ok
            }
            "trap" => panic!("probe trap: {arg}"),
            "http" => match http::get(arg) {
                Ok(r) if (200..300).contains(&r.status) => Outcome::Ok,
                Ok(r) => Outcome::Fatal(format!("status {}", r.status)),
                Err(e) => Outcome::Fatal(e),
            },
            "state" => match state::set(
                &format!("records/{}", self.label),
                &self.records.to_le_bytes(),
            ) {
                Ok(()) => Outcome::Ok,
                Err(e) => Outcome::Fatal(format!("{e:?}")),
            },
            other => Outcome::Fatal(format!("unknown probe command {other:?}")),
        }
    }
}

#[inline(never)]
fn spin() -> Outcome {
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

export_sink!(Probe);

//! `busbar serve FILE…`: the embedded broker, the connect runtime, one router per pipeline and one HTTP
//! listener, in one process. SIGHUP (or a file change with `--watch`) reloads the pipelines; a reload that
//! fails validation keeps the running configuration and says why. `PUT /pipelines/{name}` applies a new version
//! of one pipeline through the same path; the next reload puts the files' versions back.
//!
//! - `bus.rs`: the embedded broker as the runtime's `Bus`.
//! - `build.rs`: pipeline -> connector tasks, lanes and compiled routes.
//! - `sources.rs`: pull-source loops with durable cursors; webhooks answered after their events are durable.
//! - `targets.rs`: sink connectors and `builtin:topic` as router targets.
//! - `http.rs`: the HTTP listener (`/hooks/…`, `/healthz`); `api.rs`: the control API on it; `ui/`: the web
//!   console at `/ui`, static files embedded in the binary.
//! - `replay.rs`: re-delivering a time window of the bus to one rule's targets.

mod actor;
mod api;
mod build;
pub mod bus;
mod http;
mod replay;
mod sources;
mod targets;
mod ui;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use busbar_broker::{Broker, BrokerConfig};
use busbar_rules::PatternOptions;
use busbar_rules::pipeline::{self, Pipeline, SourceFile};
use busbar_runtime::bus::{Bus, TopicSpec};
use busbar_runtime::host::{Kind, Runtime, RuntimeConfig, SqliteStateStore};
use busbar_runtime::router::{Progress, Router};
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use bus::EmbeddedBus;
use actor::TaskHandle;
use sources::{Cursors, PullSource, Webhook};

#[derive(clap::Args)]
pub struct Args {
    /// Pipeline files to run (one pipeline each).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Where the broker keeps its log, groups and busbar its caches.
    #[arg(long, env = "BUSBAR_DATA_DIR", default_value = "./busbar-data")]
    data_dir: PathBuf,
    /// HTTP listener: webhooks under /hooks/, health at /healthz. Port 0 picks a free port.
    #[arg(long, env = "BUSBAR_HTTP_LISTEN", default_value = "127.0.0.1:8080")]
    http_listen: String,
    /// Kafka listener of the embedded broker. Port 0 picks a free port.
    #[arg(long, env = "BUSBAR_BROKER_LISTEN", default_value = "127.0.0.1:9092")]
    broker_listen: String,
    /// Reload when a pipeline file changes (checked every second), as well as on SIGHUP.
    #[arg(long, env = "BUSBAR_WATCH")]
    watch: bool,
    /// Reject busbar's pattern extensions so every rule also works on Amazon EventBridge.
    #[arg(long)]
    strict_eventbridge: bool,
    /// Bearer token the control API (everything but /hooks and /healthz) requires. Needed when --http-listen is
    /// not a loopback address.
    #[arg(long, env = "BUSBAR_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Events a target may have queued in memory before new ones are parked in its retry topic.
    #[arg(long, env = "BUSBAR_TARGET_BUFFER", default_value_t = 4096)]
    target_buffer: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Check the files before starting anything: a bad file must not half-start a process.
    let pipelines = match load(&args.files, args.strict_eventbridge) {
        Ok(pipelines) => pipelines,
        Err(message) => {
            eprint!("{message}");
            return Ok(ExitCode::from(2));
        }
    };
    if args.api_token.is_none() && !is_loopback(&args.http_listen) {
        eprintln!(
            "error: --http-listen {} is reachable from other machines, so the API needs a token: set --api-token \
             (or BUSBAR_API_TOKEN), or listen on 127.0.0.1",
            args.http_listen
        );
        return Ok(ExitCode::from(2));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(serve(args, pipelines))?;
    Ok(ExitCode::SUCCESS)
}

/// Whether a listen address only accepts connections from this machine.
fn is_loopback(listen: &str) -> bool {
    let host = listen.rsplit_once(':').map_or(listen, |(host, _)| host).trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Reads and checks pipeline files; the error is the full report, one problem per line.
pub fn load(files: &[PathBuf], strict: bool) -> Result<Vec<Pipeline>, String> {
    let mut texts = Vec::new();
    let mut report = String::new();
    for file in files {
        match std::fs::read_to_string(file) {
            Ok(text) => texts.push((file.display().to_string(), text)),
            Err(err) => report.push_str(&format!("{}: cannot read the file: {err}\n", file.display())),
        }
    }
    let sources: Vec<SourceFile<'_>> =
        texts.iter().map(|(name, text)| SourceFile { name: name.as_str(), text: text.as_str() }).collect();
    let checked = pipeline::check(&sources, &crate::validate::context(PatternOptions { strict_eventbridge: strict }));
    for diagnostic in &checked.diagnostics {
        report.push_str(&format!("{diagnostic}\n"));
    }
    if report.is_empty() { Ok(checked.pipelines) } else { Err(report) }
}

/// A pipeline's sources with their connector instances open, not yet running: opening can fail (a connector that
/// does not load, a bad config), running cannot, so a reload opens the new sources before it stops the old ones.
struct OpenedSources {
    tasks: Vec<TaskHandle>,
    hooks: Vec<(String, Arc<Webhook<EmbeddedBus>>)>,
    pulls: Vec<OpenedPull>,
}

/// A pull source and, when it has one, its PostgreSQL LISTEN connection URL and channel.
type OpenedPull = (PullSource<EmbeddedBus>, Option<(String, String)>);

/// Sources started for a pipeline: pull loops (stopped through `stop`), connector tasks, and webhooks to mount.
struct StartedSources {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
    tasks: Vec<TaskHandle>,
    hooks: Vec<(String, Arc<Webhook<EmbeddedBus>>)>,
}

/// One running pipeline.
struct Running {
    pipeline: Pipeline,
    router: Arc<Router<EmbeddedBus>>,
    router_task: JoinHandle<()>,
    router_stop: watch::Sender<bool>,
    lanes: Vec<JoinHandle<()>>,
    sources_stop: watch::Sender<bool>,
    sources: Vec<JoinHandle<()>>,
    tasks: Vec<TaskHandle>,
}

/// The process: what every pipeline shares.
struct Process {
    bus: Arc<EmbeddedBus>,
    cursors: Arc<Cursors<EmbeddedBus>>,
    data_dir: PathBuf,
    target_buffer: usize,
    webhooks: http::Webhooks<EmbeddedBus>,
    api: Arc<api::Api>,
}

async fn serve(args: Args, pipelines: Vec<Pipeline>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data directory {}", args.data_dir.display()))?;
    let broker = Broker::start(BrokerConfig {
        listen: args.broker_listen.clone(),
        data_dir: args.data_dir.join("broker"),
        ..BrokerConfig::default()
    })
    .await
    .context("starting the embedded broker")?;
    let bus = Arc::new(EmbeddedBus::new(broker.store().clone(), broker.groups().clone()));
    let cursors = Arc::new(Cursors::load(bus.clone()).await.context("reading source cursors")?);
    // PUT /pipelines/{name} hands new versions to this loop, which owns the running pipelines: one at a time,
    // never concurrently with a reload.
    let (applies, mut applied) = mpsc::channel::<api::Apply>(4);
    let process = Process {
        api: api::Api::new(
            bus.clone(),
            args.api_token.clone(),
            args.strict_eventbridge,
            args.data_dir.join("cache"),
            applies,
        ),
        bus,
        cursors,
        data_dir: args.data_dir.clone(),
        target_buffer: args.target_buffer,
        webhooks: Arc::new(RwLock::new(HashMap::new())),
    };

    let mut running: HashMap<String, Running> = HashMap::new();
    for pipeline in pipelines {
        let name = pipeline.name.clone();
        let started = process.start(pipeline).await.with_context(|| format!("starting pipeline {name}"))?;
        running.insert(name, started);
    }

    let listener = tokio::net::TcpListener::bind(&args.http_listen)
        .await
        .with_context(|| format!("binding the HTTP listener on {}", args.http_listen))?;
    let http_addr = listener.local_addr()?;
    let (http_stop, mut http_stopped) = watch::channel(false);
    let app = http::router(process.webhooks.clone()).merge(api::routes(process.api.clone())).merge(ui::routes());
    let http_task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = http_stopped.wait_for(|stop| *stop).await;
        };
        if let Err(err) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %err, "HTTP listener failed");
        }
    });
    let names: Vec<&str> = running.keys().map(String::as_str).collect();
    tracing::info!(broker = %broker.local_addr(), http = %http_addr, pipelines = ?names, "busbar serving");
    println!("busbar serving: broker {} http {} pipelines {}", broker.local_addr(), http_addr, names.join(","));

    let mut signals = Signals::new()?;
    let mut stamps = file_stamps(&args.files);
    loop {
        let event = tokio::select! {
            event = signals.next(args.watch) => event,
            Some(apply) = applied.recv() => SignalEvent::Apply(apply),
        };
        match event {
            SignalEvent::Stop => break,
            SignalEvent::Apply(apply) => {
                let outcome = process.apply(&args, &mut running, &apply.name, &apply.text).await;
                let _ = apply.reply.send(outcome);
            }
            SignalEvent::Tick => {
                let now = file_stamps(&args.files);
                if now == stamps {
                    continue;
                }
                stamps = now;
                process.reload(&args, &mut running).await;
            }
            SignalEvent::Reload => {
                stamps = file_stamps(&args.files);
                process.reload(&args, &mut running).await;
            }
        }
    }

    tracing::info!("shutting down: webhooks first, then sources, routers and lanes");
    let _ = http_stop.send(true);
    let _ = http_task.await;
    for (_, pipeline) in running.drain() {
        pipeline.stop().await;
    }
    broker.shutdown().await;
    Ok(())
}

impl Process {
    async fn start(&self, pipeline: Pipeline) -> anyhow::Result<Running> {
        let runtime = self.runtime_for(&pipeline).await?;
        let bus_spec = TopicSpec { partitions: pipeline.bus.partitions as i32, configs: retention_configs(&pipeline) };
        self.bus.ensure_topic(&pipeline.bus.topic, &bus_spec).await?;
        let progress = Progress::default();
        let built = build::build_routes(&pipeline, &runtime, &self.bus, &progress, self.target_buffer).await?;
        let group = format!("busbar.router.{}", pipeline.name);
        let router = Router::new(self.bus.clone(), pipeline.bus.topic.clone(), group, built.routes, progress);
        let (router_stop, router_stopped) = watch::channel(false);
        let router_task = {
            let router = router.clone();
            tokio::spawn(async move {
                if let Err(err) = router.run(router_stopped).await {
                    tracing::error!(error = %err, "router stopped");
                }
            })
        };
        let mut tasks = built.tasks;
        let started = self.open_sources(&pipeline, &runtime).await?.run();
        tasks.extend(started.tasks);
        self.mount(&pipeline.name, started.hooks);
        let (sources_stop, sources) = (started.stop, started.handles);
        self.api.register(&pipeline, router.clone(), &tasks);
        Ok(Running {
            pipeline,
            router,
            router_task,
            router_stop,
            lanes: built.workers,
            sources_stop,
            sources,
            tasks,
        })
    }

    async fn runtime_for(&self, pipeline: &Pipeline) -> anyhow::Result<Runtime> {
        let connections =
            pipeline.connections.iter().map(|(name, c)| (name.clone(), c.url.expose().clone())).collect();
        let state_path = self.data_dir.join("state").join(format!("{}.sqlite", pipeline.name));
        std::fs::create_dir_all(state_path.parent().expect("has a parent"))?;
        let state = SqliteStateStore::open(&state_path)
            .await
            .with_context(|| format!("opening the connector state store {}", state_path.display()))?;
        Ok(Runtime::new(RuntimeConfig {
            cache_dir: Some(self.data_dir.join("cache")),
            connections,
            state: Some(Arc::new(state)),
        })?)
    }

    async fn open_sources(&self, pipeline: &Pipeline, runtime: &Runtime) -> anyhow::Result<OpenedSources> {
        let mut opened = OpenedSources { tasks: Vec::new(), hooks: Vec::new(), pulls: Vec::new() };
        for source in &pipeline.sources {
            let name = format!("{}/{}", pipeline.name, source.name);
            let task =
                build::open_task(runtime, &name, &source.connector, source.config.expose(), &source.grants).await?;
            let kind = task.kind;
            opened.tasks.push(task.clone());
            match kind {
                Kind::PushSource => {
                    let path = source.webhook_path.clone().unwrap_or_else(|| format!("/hooks/{name}"));
                    let hook = Webhook {
                        pipeline: pipeline.name.clone(),
                        name: source.name.clone(),
                        topic: pipeline.bus.topic.clone(),
                        dead_letter: format!("{}.{}.dlq", pipeline.bus.topic, source.name),
                        task,
                        bus: self.bus.clone(),
                    };
                    opened.hooks.push((path, Arc::new(hook)));
                }
                Kind::PullSource => {
                    let interval = source
                        .config
                        .expose()
                        .get("interval")
                        .and_then(serde_json::Value::as_str)
                        .and_then(|text| pipeline::Duration::parse(text).ok())
                        .map(|d| d.get())
                        .unwrap_or(Duration::from_secs(1));
                    let listen = match source.config.expose().get("notify-channel").and_then(serde_json::Value::as_str) {
                        Some(channel) => Some((notify_connection(pipeline, source)?, channel.to_owned())),
                        None => None,
                    };
                    let pull = PullSource {
                        pipeline: pipeline.name.clone(),
                        name: source.name.clone(),
                        topic: pipeline.bus.topic.clone(),
                        task,
                        bus: self.bus.clone(),
                        cursors: self.cursors.clone(),
                        interval,
                        wake: Arc::new(Notify::new()),
                    };
                    opened.pulls.push((pull, listen));
                }
                Kind::Sink => anyhow::bail!("{name}: {} is a sink, not a source", source.connector_display()),
            }
        }
        Ok(opened)
    }

    /// Puts a pipeline's webhooks in place of its previous ones in one step, so no request finds the path
    /// unmounted during a reload.
    fn mount(&self, pipeline: &str, hooks: Vec<(String, Arc<Webhook<EmbeddedBus>>)>) {
        let mut mounted = self.webhooks.write().expect("webhooks lock");
        mounted.retain(|_, hook| hook.pipeline != pipeline);
        for (path, hook) in hooks {
            tracing::info!(%path, source = %format!("{pipeline}/{}", hook.name), "webhook mounted");
            mounted.insert(path, hook);
        }
    }

    /// Re-reads the files. On any problem the running pipelines are left as they are. Otherwise each pipeline
    /// whose file changed gets new routes (swapped in between two records, so nothing is dropped), new
    /// sources, and the old lanes drain in the background; new pipelines start and removed ones stop.
    async fn reload(&self, args: &Args, running: &mut HashMap<String, Running>) {
        let pipelines = match load(&args.files, args.strict_eventbridge) {
            Ok(pipelines) => pipelines,
            Err(report) => {
                tracing::error!("reload rejected; the running pipelines are unchanged:\n{report}");
                return;
            }
        };
        let mut keep: Vec<String> = Vec::new();
        for pipeline in pipelines {
            let name = pipeline.name.clone();
            keep.push(name.clone());
            match running.get_mut(&name) {
                Some(current) if current.pipeline.spec == pipeline.spec => {}
                Some(current) => match self.update(current, pipeline).await {
                    Ok(()) => tracing::info!(pipeline = %name, "pipeline reloaded"),
                    Err(err) => tracing::error!(pipeline = %name, error = %format!("{err:#}"), "reload failed; kept the previous version"),
                },
                None => match self.start(pipeline).await {
                    Ok(started) => {
                        tracing::info!(pipeline = %name, "pipeline started");
                        running.insert(name, started);
                    }
                    Err(err) => tracing::error!(pipeline = %name, error = %format!("{err:#}"), "pipeline not started"),
                },
            }
        }
        let removed: Vec<String> = running.keys().filter(|name| !keep.contains(name)).cloned().collect();
        for name in removed {
            if let Some(pipeline) = running.remove(&name) {
                self.unmount(&pipeline.pipeline);
                self.api.unregister(&name);
                pipeline.stop().await;
                tracing::info!(pipeline = %name, "pipeline stopped");
            }
        }
    }

    /// A new version of one running pipeline, from the API: checked as a reloaded file is (against the same
    /// file name, so relative paths resolve the same way, and against the other running pipelines for what must
    /// be unique), then applied by [`Process::update`]. Anything short of success leaves the running version.
    async fn apply(&self, args: &Args, running: &mut HashMap<String, Running>, name: &str, text: &str) -> api::Applied {
        let Some(file) = running.get(name).map(|r| r.pipeline.file.clone()) else { return api::Applied::NotFound };
        let checked = pipeline::check(
            &[SourceFile { name: &file, text }],
            &crate::validate::context(PatternOptions { strict_eventbridge: args.strict_eventbridge }),
        );
        let mut problems: Vec<String> = checked
            .diagnostics
            .into_iter()
            .map(|mut d| {
                d.location.file = "request body".into();
                d.to_string()
            })
            .collect();
        let pipeline = checked.pipelines.into_iter().next().filter(|_| problems.is_empty());
        if let Some(pipeline) = &pipeline {
            if pipeline.name != name {
                problems.push(format!("request body: $.name: is {:?}, but this is pipeline {name:?}", pipeline.name));
            }
            for other in running.values().filter(|r| r.pipeline.name != name) {
                if other.pipeline.bus.topic == pipeline.bus.topic {
                    problems.push(format!(
                        "request body: $.bus.topic: {:?} is already the bus of pipeline {}; each pipeline needs its own bus topic",
                        pipeline.bus.topic, other.pipeline.name
                    ));
                }
                for source in &pipeline.sources {
                    let taken = other.pipeline.sources.iter().find(|s| s.webhook_path.is_some() && s.webhook_path == source.webhook_path);
                    if let (Some(path), Some(taken)) = (&source.webhook_path, taken) {
                        problems.push(format!(
                            "request body: $.sources.{}: webhook path {path} is already taken by {}/{}",
                            source.name, other.pipeline.name, taken.name
                        ));
                    }
                }
            }
        }
        let (Some(pipeline), true) = (pipeline, problems.is_empty()) else {
            tracing::error!(pipeline = %name, "new version from the API rejected; the running version is unchanged:\n{}", problems.join("\n"));
            return api::Applied::Invalid(problems);
        };
        let Some(current) = running.get_mut(name) else { return api::Applied::NotFound };
        if current.pipeline.spec == pipeline.spec {
            return api::Applied::Unchanged;
        }
        match self.update(current, pipeline).await {
            Ok(()) => {
                tracing::info!(pipeline = %name, "pipeline updated through the API (the next reload puts the file's version back)");
                api::Applied::Updated
            }
            Err(err) => {
                tracing::error!(pipeline = %name, error = %format!("{err:#}"), "update through the API failed; kept the previous version");
                api::Applied::Failed(format!("{err:#}"))
            }
        }
    }

    async fn update(&self, current: &mut Running, pipeline: Pipeline) -> anyhow::Result<()> {
        if pipeline.bus.topic != current.pipeline.bus.topic {
            anyhow::bail!("the bus topic changed ({} -> {}); restart busbar to move a pipeline to another topic",
                current.pipeline.bus.topic, pipeline.bus.topic);
        }
        // Everything that can fail happens before the running version is touched: a failure here leaves it as
        // it was (the new lanes and instances end when what was built is dropped).
        let runtime = self.runtime_for(&pipeline).await?;
        let built = build::build_routes(&pipeline, &runtime, &self.bus, current.router.progress(), self.target_buffer)
            .await?;
        let opened = self.open_sources(&pipeline, &runtime).await?;
        current.router.swap_routes(built.routes);
        // Old lanes lost their senders with the old routes: they deliver what they hold, then end.
        current.lanes = built.workers;
        // Pull sources must not poll twice with one cursor: the old ones stop before the new ones run. Webhooks
        // are swapped in one step; requests already inside an old one finish with it.
        let _ = current.sources_stop.send(true);
        for handle in current.sources.drain(..) {
            let _ = handle.await;
        }
        let started = opened.run();
        self.mount(&pipeline.name, started.hooks);
        current.sources_stop = started.stop;
        current.sources = started.handles;
        current.tasks = built.tasks;
        current.tasks.extend(started.tasks);
        self.api.register(&pipeline, current.router.clone(), &current.tasks);
        current.pipeline = pipeline;
        Ok(())
    }

    fn unmount(&self, pipeline: &Pipeline) {
        let mut hooks = self.webhooks.write().expect("webhooks lock");
        hooks.retain(|_, hook| hook.pipeline != pipeline.name);
    }
}

impl OpenedSources {
    /// Starts the pull loops (and their LISTEN connections); the webhooks are returned for mounting.
    fn run(self) -> StartedSources {
        let (stop, stopped) = watch::channel(false);
        let mut handles = Vec::new();
        for (pull, listen) in self.pulls {
            if let Some((url, channel)) = listen {
                handles.push(tokio::spawn(sources::listen_for_notifications(url, channel, pull.wake.clone(), stopped.clone())));
            }
            handles.push(tokio::spawn(pull.run(stopped.clone())));
        }
        StartedSources { stop, handles, tasks: self.tasks, hooks: self.hooks }
    }
}

impl Running {
    /// Stops sources, then the router, then lets lanes finish what they hold (bounded), and commits.
    async fn stop(self) {
        let _ = self.sources_stop.send(true);
        for handle in self.sources {
            let _ = handle.await;
        }
        let _ = self.router_stop.send(true);
        let _ = self.router_task.await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.router.progress().in_flight() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.router.commit_settled().await;
        drop(self.router);
        for lane in self.lanes {
            lane.abort();
        }
        for task in self.tasks {
            task.close().await;
        }
    }
}

/// The PostgreSQL URL a source's `notify-channel` listens on: the connection its `connection` setting names.
fn notify_connection(pipeline: &Pipeline, source: &pipeline::Source) -> anyhow::Result<String> {
    let config = source.config.expose();
    let name = config.get("connection").and_then(serde_json::Value::as_str).unwrap_or_default();
    let Some(connection) = pipeline.connections.get(name) else {
        anyhow::bail!("source {}: notify-channel needs `connection` to name one of the pipeline's connections", source.name);
    };
    let url = connection.url.expose().clone();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        anyhow::bail!("source {}: notify-channel is PostgreSQL LISTEN/NOTIFY, but connection {name} is not a PostgreSQL URL", source.name);
    }
    Ok(url)
}

fn retention_configs(pipeline: &Pipeline) -> Vec<(String, String)> {
    match &pipeline.bus.retention {
        pipeline::Retention::For(duration) => vec![("retention.ms".into(), duration.get().as_millis().to_string())],
        _ => vec![("retention.ms".into(), "-1".into())],
    }
}

trait SourceDisplay {
    fn connector_display(&self) -> String;
}

impl SourceDisplay for pipeline::Source {
    fn connector_display(&self) -> String {
        match &self.connector {
            pipeline::ConnectorRef::Builtin(name) => format!("builtin:{name}"),
            pipeline::ConnectorRef::Wasm(path) => path.display().to_string(),
        }
    }
}

fn file_stamps(files: &[PathBuf]) -> Vec<Option<std::time::SystemTime>> {
    files.iter().map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok()).collect()
}

enum SignalEvent {
    Stop,
    Reload,
    Tick,
    /// A new pipeline version from `PUT /pipelines/{name}`.
    Apply(api::Apply),
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self, watch: bool) -> SignalEvent {
        let tick = async {
            if watch {
                tokio::time::sleep(Duration::from_secs(1)).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            _ = self.term.recv() => SignalEvent::Stop,
            _ = self.int.recv() => SignalEvent::Stop,
            _ = self.hup.recv() => SignalEvent::Reload,
            _ = tick => SignalEvent::Tick,
        }
    }
}

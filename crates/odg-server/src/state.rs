//! What every handler shares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use odg_compliance::ComplianceService;
use odg_components::ComponentService;

use crate::admission::{Admission, AdmissionConfig};
use crate::auth::{AuthConfig, Authenticator};
use crate::cors::CorsConfig;

/// What every handler shares, behind one `Arc`: axum clones the state for every layer and
/// extractor of every request, so a clone must be one reference-count increment, not a copy of
/// the configuration (origins, paths, component lists).
#[derive(Debug, Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The fields of [`AppState`]; set through its `with_*` builders at start-up.
#[derive(Debug, Clone)]
pub struct SharedState {
    pub components: ComponentService,
    pub auth: Authenticator,
    pub admission: Admission,
    /// Renders `/metrics`; without it the route answers 404.
    pub metrics: Option<PrometheusHandle>,
    pub readiness: Readiness,
    /// The delivery DB and compliance summaries; without it the metadata routes answer 503.
    pub compliance: Option<ComplianceService>,
    pub metadata_query: MetadataQueryLimits,
    /// Bounds of `/blob` uploads.
    pub blobs: BlobLimits,
    /// Origins allowed cross-origin; none by default.
    pub cors: CorsConfig,
    /// A built Delivery Dashboard served on this origin (`odg serve --dashboard-dir`); none by default.
    pub dashboard_dir: Option<std::path::PathBuf>,
    /// The landing page's components (`/features` `special-components`); none by default.
    pub special_components: Vec<crate::SpecialComponent>,
    /// The sprint calendar (`/delivery/sprint-infos`); none by default.
    pub sprints: Option<Arc<crate::SprintCalendar>>,
    /// Upgrade pull requests (`upgrade_prs:`); the feature is off without it, as the original's.
    pub upgrade_prs: Option<crate::UpgradePullRequests>,
    /// The extensions this installation runs (`GET /service-extensions`), camel case.
    pub service_extensions: std::sync::Arc<[String]>,
    /// `GET /debug/pprof/profile` on the admin listener (`--admin-profiling`); off by default.
    pub profiling: bool,
}

/// Bounds of one `POST /artefacts/metadata/query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataQueryLimits {
    /// Entries a request may hold; more is a 400 naming the limit. Ten times the batch the
    /// extensions send (100), so that no client of ours comes near it.
    pub max_entries: usize,
    /// Descriptor lookups (for the version rule) one request runs at once.
    pub lookup_concurrency: usize,
}

impl Default for MetadataQueryLimits {
    fn default() -> Self {
        MetadataQueryLimits {
            max_entries: 1_000,
            lookup_concurrency: 8,
        }
    }
}

/// Bounds of one `POST /blob`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLimits {
    /// The largest blob accepted; more is a 413 (at most `odg_delivery_db::MAX_BLOB_BYTES`,
    /// what the original's `integer` size column holds).
    pub max_bytes: u64,
    /// The longest wait for the next part of an upload's body: an upload holds a database
    /// transaction (PostgreSQL), which a stalled client must not keep open.
    pub idle_timeout: std::time::Duration,
}

impl Default for BlobLimits {
    fn default() -> Self {
        BlobLimits {
            max_bytes: 1 << 30,
            idle_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// Ready until the service starts draining for shutdown: then `/ready` answers 503 so load
/// balancers stop sending new requests while those in flight finish.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    draining: Arc<AtomicBool>,
}

impl Readiness {
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        !self.draining.load(Ordering::SeqCst)
    }
}

impl AppState {
    /// A state whose state-changing routes refuse everyone until [`AppState::with_auth`] configures credentials.
    #[allow(
        clippy::expect_used,
        reason = "start-up: the empty configuration has no keys or tokens that could be invalid"
    )]
    pub fn new(components: ComponentService) -> Self {
        AppState(Arc::new(SharedState {
            components,
            auth: Authenticator::new(&AuthConfig::default())
                .expect("the empty auth configuration is valid"),
            admission: Admission::new(AdmissionConfig::default()),
            metrics: None,
            readiness: Readiness::default(),
            compliance: None,
            metadata_query: MetadataQueryLimits::default(),
            blobs: BlobLimits::default(),
            cors: CorsConfig::default(),
            dashboard_dir: None,
            special_components: Vec::new(),
            sprints: None,
            upgrade_prs: None,
            service_extensions: std::sync::Arc::from(Vec::new()),
            profiling: false,
        }))
    }

    /// The fields to change in a builder (start-up only: copies them if the state is shared).
    fn fields(&mut self) -> &mut SharedState {
        Arc::make_mut(&mut self.0)
    }

    pub fn with_metadata_query_limits(mut self, limits: MetadataQueryLimits) -> Self {
        self.fields().metadata_query = limits;
        self
    }

    pub fn with_blob_limits(mut self, limits: BlobLimits) -> Self {
        self.fields().blobs = limits;
        self
    }

    pub fn with_dashboard_dir(mut self, directory: Option<std::path::PathBuf>) -> Self {
        self.fields().dashboard_dir = directory;
        self
    }

    /// The extensions `GET /service-extensions` lists.
    pub fn with_service_extensions(mut self, names: Vec<String>) -> Self {
        self.fields().service_extensions = names.into();
        self
    }

    pub fn with_special_components(mut self, components: Vec<crate::SpecialComponent>) -> Self {
        self.fields().special_components = components;
        self
    }

    pub fn with_upgrade_prs(mut self, upgrade_prs: Option<crate::UpgradePullRequests>) -> Self {
        self.fields().upgrade_prs = upgrade_prs;
        self
    }

    pub fn with_sprints(mut self, calendar: Option<crate::SprintCalendar>) -> Self {
        self.fields().sprints = calendar.map(Arc::new);
        self
    }

    /// Serves CPU profiles on the admin listener.
    pub fn with_profiling(mut self, enabled: bool) -> Self {
        self.fields().profiling = enabled;
        self
    }

    pub fn with_cors(mut self, cors: CorsConfig) -> Self {
        self.fields().cors = cors;
        self
    }

    pub fn with_auth(mut self, auth: Authenticator) -> Self {
        self.fields().auth = auth;
        self
    }

    pub fn with_admission(mut self, config: AdmissionConfig) -> Self {
        self.fields().admission = Admission::new(config);
        self
    }

    pub fn with_compliance(mut self, compliance: ComplianceService) -> Self {
        self.fields().compliance = Some(compliance);
        self
    }

    pub fn with_metrics(mut self, handle: PrometheusHandle) -> Self {
        self.fields().metrics = Some(handle);
        self
    }
}

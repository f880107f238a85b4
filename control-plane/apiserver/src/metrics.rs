//! Prometheus metrics with upstream's names, so existing dashboards and alerts work unchanged.

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The API server's metric registry.
pub(crate) struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    inflight: IntGaugeVec,
}

/// Upstream's latency buckets for `apiserver_request_duration_seconds`.
const BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

pub(crate) static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = Registry::new();
    let requests = IntCounterVec::new(
        Opts::new(
            "apiserver_request_total",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
        ),
        &["verb", "group", "version", "resource", "subresource", "scope", "code", "cluster"],
    )
    .expect("valid metric");
    let latency = HistogramVec::new(
        HistogramOpts::new(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
        )
        .buckets(BUCKETS.to_vec()),
        &["verb", "group", "version", "resource", "subresource", "scope"],
    )
    .expect("valid metric");
    let inflight = IntGaugeVec::new(
        Opts::new("apiserver_current_inflight_requests", "Maximal number of currently used inflight request limit of this apiserver per request kind in last second."),
        &["request_kind"],
    )
    .expect("valid metric");
    registry
        .register(Box::new(requests.clone()))
        .expect("register");
    registry
        .register(Box::new(latency.clone()))
        .expect("register");
    registry
        .register(Box::new(inflight.clone()))
        .expect("register");
    Metrics {
        registry,
        requests,
        latency,
        inflight,
    }
});

/// Labels of one resource request.
pub(crate) struct RequestLabels<'a> {
    pub(crate) verb: &'a str,
    pub(crate) group: &'a str,
    pub(crate) version: &'a str,
    pub(crate) resource: &'a str,
    pub(crate) subresource: &'a str,
    pub(crate) scope: &'a str,
    pub(crate) cluster: &'a str,
}

impl Metrics {
    /// Records a finished request.
    pub(crate) fn observe(&self, l: &RequestLabels<'_>, code: u16, seconds: f64) {
        let code = code.to_string();
        self.requests
            .with_label_values(&[
                l.verb,
                l.group,
                l.version,
                l.resource,
                l.subresource,
                l.scope,
                &code,
                l.cluster,
            ])
            .inc();
        // Watches last as long as the client wants; upstream leaves them out of the latency too.
        if l.verb != "WATCH" {
            self.latency
                .with_label_values(&[
                    l.verb,
                    l.group,
                    l.version,
                    l.resource,
                    l.subresource,
                    l.scope,
                ])
                .observe(seconds);
        }
    }

    /// Counts a request in flight until the guard drops.
    pub(crate) fn in_flight(&self, mutating: bool) -> InFlight {
        let gauge =
            self.inflight
                .with_label_values(&[if mutating { "mutating" } else { "readOnly" }]);
        gauge.inc();
        InFlight(gauge)
    }

    /// The text exposition of every metric.
    pub(crate) fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

/// Decrements the in-flight gauge when dropped.
pub(crate) struct InFlight(prometheus::IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

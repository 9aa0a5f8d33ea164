//! Logging and tracing. Logs go to stderr through `tracing`; spans go to an
//! OpenTelemetry collector over OTLP when one is configured with OpenTelemetry's
//! own variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_PROTOCOL`
//! = `grpc` or `http/protobuf`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`...).
//! Without an endpoint there is no exporter and spans cost next to nothing.
//!
//! W3C trace context travels inside our own envelopes (see `proto`), so the spans
//! a command causes on other nodes are children of the caller's: one command, one
//! trace.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::collections::HashMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Keeps the exporter alive; `shutdown` flushes what is buffered.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Tracing settings from `vast.yaml` (`telemetry.*`); environment variables of
/// the same meaning win.
#[derive(Clone, Debug, Default)]
pub struct TelemetryOptions {
    /// Log filter for stderr (`log-level`).
    pub log_filter: String,
    /// OTLP endpoint (`telemetry.otlp-endpoint`).
    pub endpoint: Option<String>,
    /// `grpc` or `http/protobuf` (`telemetry.otlp-protocol`).
    pub protocol: Option<String>,
    /// Service name (`telemetry.service-name`).
    pub service: Option<String>,
    /// This process's node id, recorded on every span.
    pub node: String,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Colour only for a person: stderr is a terminal and `NO_COLOR` is not set
/// (<https://no-color.org>), so redirected logs and container logs stay plain.
pub fn colour_on_stderr() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber: stderr logs, plus spans to OTLP if configured.
pub fn init(o: &TelemetryOptions, rt: &tokio::runtime::Runtime) -> Telemetry {
    let logs = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&o.log_filter))
        .unwrap_or_else(|_| EnvFilter::new("warn"));
    // Kademlia (inside kameo's swarm) warns "No known peers" whenever a node
    // bootstraps alone, which every single node does; only its errors are news.
    // A filter that names libp2p_kad itself is left as it is.
    let named = std::env::var("RUST_LOG").unwrap_or_else(|_| o.log_filter.clone());
    let logs = if named.contains("libp2p_kad") {
        logs
    } else {
        logs.add_directive("libp2p_kad=error".parse().expect("a valid directive"))
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour_on_stderr())
        .with_filter(logs);
    let endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .or_else(|| o.endpoint.clone());
    let Some(endpoint) = endpoint else {
        let _ = tracing_subscriber::registry().with(fmt).try_init();
        return Telemetry { provider: None };
    };
    let protocol = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .or_else(|| o.protocol.clone())
        .unwrap_or_else(|| "http/protobuf".into());
    match build_provider(&endpoint, &protocol, o, rt) {
        Ok(provider) => {
            let tracer = provider.tracer("vast");
            // Our spans only: library internals would flood the collector.
            let spans = EnvFilter::new("vast=info,vast_node=info");
            let otel = tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(spans);
            let _ = tracing_subscriber::registry()
                .with(fmt)
                .with(otel)
                .try_init();
            Telemetry {
                provider: Some(provider),
            }
        }
        Err(e) => {
            let _ = tracing_subscriber::registry().with(fmt).try_init();
            tracing::warn!(endpoint = %endpoint, error = %e, "tracing disabled: cannot set up the OTLP exporter");
            Telemetry { provider: None }
        }
    }
}

#[cfg(not(feature = "otlp"))]
fn build_provider(
    _endpoint: &str,
    _protocol: &str,
    _o: &TelemetryOptions,
    _rt: &tokio::runtime::Runtime,
) -> Result<SdkTracerProvider, String> {
    Err("this vast was built without the `otlp` feature".into())
}

#[cfg(feature = "otlp")]
fn build_provider(
    endpoint: &str,
    protocol: &str,
    o: &TelemetryOptions,
    rt: &tokio::runtime::Runtime,
) -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
    // tonic's channel lives on the runtime; the HTTP client brings its own thread.
    let _rt = (protocol == "grpc").then(|| rt.enter());
    let exporter = match protocol {
        "grpc" => {
            use opentelemetry_otlp::WithTonicConfig;
            let b = SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.to_string());
            // https: TLS with the bundled Mozilla roots (the image has no CA store).
            let b = if endpoint.starts_with("https://") {
                b.with_tls_config(
                    opentelemetry_otlp::tonic_types::transport::ClientTlsConfig::new()
                        .with_webpki_roots(),
                )
            } else {
                b
            };
            b.build()
        }
        "http/protobuf" => {
            // The signal path is appended as the specification says for the
            // generic endpoint variable.
            let url = if env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some() {
                endpoint.to_string()
            } else {
                format!("{}/v1/traces", endpoint.trim_end_matches('/'))
            };
            SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(url)
                .build()
        }
        other => {
            return Err(format!(
                "OTLP protocol {other:?} is not supported (use grpc or http/protobuf)"
            ))
        }
    }
    .map_err(|e| e.to_string())?;
    let service = env("OTEL_SERVICE_NAME")
        .or_else(|| o.service.clone())
        .unwrap_or_else(|| "vast".into());
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service)
        .with_attribute(opentelemetry::KeyValue::new("vast.node", o.node.clone()))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

impl Telemetry {
    /// Flushes buffered spans; call before the process exits.
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            if let Err(e) = p.shutdown() {
                tracing::warn!(error = %e, "flushing spans failed");
            }
        }
    }
}

/// The W3C `traceparent` of the current span, or empty when tracing is off.
pub fn current_traceparent() -> String {
    let cx = tracing::Span::current().context();
    let mut map = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut map);
    map.remove("traceparent").unwrap_or_default()
}

/// Makes `span` a child of the remote span named by `traceparent` (if any).
pub fn set_remote_parent(span: &tracing::Span, traceparent: &str) {
    if traceparent.is_empty() {
        return;
    }
    let map = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let cx = TraceContextPropagator::new().extract(&map);
    let _ = span.set_parent(cx);
}

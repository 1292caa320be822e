//! tracing setup: text for people, JSON for log pipelines; always to stderr. The filter can
//! be changed at run time (admin `PUT /log-level`).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

use crate::cli::LogFormat;

/// Changes the active log filter.
#[derive(Clone)]
pub struct LogLevel {
    handle: reload::Handle<EnvFilter, Registry>,
    current: std::sync::Arc<std::sync::Mutex<String>>,
}

impl LogLevel {
    pub fn get(&self) -> String {
        self.current.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn set(&self, filter: &str) -> Result<(), String> {
        let f =
            EnvFilter::try_new(filter).map_err(|e| format!("invalid filter {filter:?}: {e}"))?;
        self.handle.reload(f).map_err(|e| e.to_string())?;
        if let Ok(mut c) = self.current.lock() {
            *c = filter.to_owned();
        }
        Ok(())
    }
}

pub fn init(filter: &str, format: LogFormat) -> anyhow::Result<LogLevel> {
    let env = EnvFilter::try_new(filter)
        .map_err(|e| anyhow::anyhow!("invalid --log-level {filter:?}: {e}"))?;
    let (layer, handle) = reload::Layer::new(env);
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let registry = tracing_subscriber::registry().with(layer);
    match format {
        LogFormat::Text => registry
            .with(fmt::layer().with_writer(std::io::stderr).with_ansi(ansi))
            .init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .init(),
    }
    Ok(LogLevel {
        handle,
        current: std::sync::Arc::new(std::sync::Mutex::new(filter.to_owned())),
    })
}

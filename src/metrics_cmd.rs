//! `xenraid metrics`: print, write the node_exporter textfile, or serve /metrics.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use xenraid::host::RootedSource;
use xenraid::metrics::{http::MetricsServer, render, textfile::write_textfile, MetricsOptions};

use crate::cli::{MetricsArgs, EXIT_OK};

/// The exposition of the host (or of a captured tree) as it is now.
fn current(root: Option<&PathBuf>, options: &MetricsOptions) -> String {
    let report = match root {
        Some(root) => xenraid::health::quick_report(&RootedSource::captured(root)),
        None => xenraid::health::quick_report(&RootedSource::live()),
    };
    render(&report, options)
}

pub fn metrics(root: Option<PathBuf>, args: &MetricsArgs) -> anyhow::Result<i32> {
    let options = MetricsOptions {
        last_alert_unix: None,
        skip_node_md: args.no_node_md,
    };
    if let Some(addr) = &args.listen {
        let server = MetricsServer::bind(addr, args.allow_remote)?;
        eprintln!(
            "xenraid: serving metrics on http://{}/metrics",
            server.local_addr().context("the listener's address")?
        );
        let produce = Arc::new(move || current(root.as_ref(), &options));
        server
            .spawn(produce)
            .join()
            .map_err(|_| anyhow::anyhow!("the metrics listener stopped"))?;
        return Ok(EXIT_OK);
    }
    let text = current(root.as_ref(), &options);
    match &args.textfile {
        Some(path) => write_textfile(path, &text)?,
        None => print!("{text}"),
    }
    Ok(EXIT_OK)
}

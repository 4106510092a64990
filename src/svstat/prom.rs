//! `rsvstat --prom`: the state of a tree in Prometheus' text exposition format (version
//! 0.0.4), for node_exporter's textfile collector.
//!
//! Every metric is named `rsv_service_*` and labelled `service="NAME"` (`NAME/log` for a
//! logger, as in the JSON output). Families come in a fixed order, each with one `# HELP` and
//! one `# TYPE` line and then one sample per service that has a value, services in the order
//! of the table. Values from `supervise/rsv-state` are left out for services without one
//! (runsv, s6-supervise), rather than reported as 0.

use std::fmt::Write as _;

use super::{Info, throttle_left};
use crate::extstate::{Health, exit_code};
use crate::status::Ended;
use crate::svview::secs_between;
use crate::tai::{Family, Tai64N};

/// Escapes a label value: backslash, double quote and newline.
pub fn label_value(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

struct Ctx {
    now: Tai64N,
    now_ms: u64,
}

type Value = fn(&Info, &Ctx) -> Option<String>;

fn b(x: bool) -> Option<String> {
    Some(u8::from(x).to_string())
}

fn secs_ms(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// (name, type, help, value). Values are integers or decimal fractions, which Prometheus
/// reads as floats.
const FAMILIES: &[(&str, &str, &str, Value)] = &[
    (
        "rsv_service_supervised",
        "gauge",
        "1 when a supervisor holds the service directory's lock.",
        |i, _| b(i.supervised),
    ),
    (
        "rsv_service_up",
        "gauge",
        "1 when the service's run process is running.",
        |i, _| b(i.supervised && i.view.as_ref().is_ok_and(|v| v.up)),
    ),
    (
        "rsv_service_ready",
        "gauge",
        "1 when the service is up and ready (notification, passing check, or rsv-state).",
        |i, _| b(i.supervised && i.ready()),
    ),
    (
        "rsv_service_want_up",
        "gauge",
        "1 when the supervisor is asked to keep the service up.",
        |i, _| i.view.as_ref().ok().map(|v| u8::from(v.wantup).to_string()),
    ),
    (
        "rsv_service_normally_up",
        "gauge",
        "1 when the service directory has no down file.",
        |i, _| b(i.normallyup),
    ),
    (
        "rsv_service_paused",
        "gauge",
        "1 when the service's process is stopped (SIGSTOP).",
        |i, _| i.view.as_ref().ok().map(|v| u8::from(v.paused).to_string()),
    ),
    (
        "rsv_service_uptime_seconds",
        "gauge",
        "Seconds the service has been up; 0 when it is not up.",
        |i, c| {
            let v = i.view.as_ref().ok()?;
            Some(if v.up && i.supervised {
                secs_between(v.stamp.min(c.now), c.now).to_string()
            } else {
                "0".into()
            })
        },
    ),
    (
        "rsv_service_state_change_timestamp_seconds",
        "gauge",
        "Unix time of the service's last up or down transition.",
        |i, c| {
            let v = i.view.as_ref().ok()?;
            let (unix_now, _) = c.now.to_unix(Family::S6);
            Some(v.since.min(unix_now).to_string())
        },
    ),
    (
        "rsv_service_last_exit_code",
        "gauge",
        "How run last ended: its exit code, or 128 + N when killed by signal N.",
        |i, _| i.last_exit.map(|e| exit_code(e).to_string()),
    ),
    (
        "rsv_service_last_exit_signal",
        "gauge",
        "The signal that last killed run; 0 when it last exited.",
        |i, _| {
            i.last_exit.map(|e| match e {
                Ended::Signaled(n) => n.to_string(),
                Ended::Exited(_) => "0".into(),
            })
        },
    ),
    (
        "rsv_service_restarts_total",
        "counter",
        "Starts of run after the first one since the supervisor started.",
        |i, _| i.ext.as_ref().map(|e| e.restarts.to_string()),
    ),
    (
        "rsv_service_throttled",
        "gauge",
        "1 while the crash-loop backoff holds back the next start.",
        |i, c| {
            let (e, v) = (i.ext.as_ref()?, i.view.as_ref().ok()?);
            b(throttle_left(v, e, i.supervised, c.now_ms).is_some())
        },
    ),
    (
        "rsv_service_next_try_seconds",
        "gauge",
        "Seconds until the next automatic start of a throttled service; 0 when not throttled.",
        |i, c| {
            let (e, v) = (i.ext.as_ref()?, i.view.as_ref().ok()?);
            Some(secs_ms(
                throttle_left(v, e, i.supervised, c.now_ms).unwrap_or(0),
            ))
        },
    ),
    (
        "rsv_service_backoff_seconds",
        "gauge",
        "Current crash-loop delay; 0 when not backing off.",
        |i, _| i.ext.as_ref().map(|e| secs_ms(e.backoff_ms)),
    ),
    (
        "rsv_service_gave_up",
        "gauge",
        "1 when the give-up rule stopped restarting the service.",
        |i, _| i.ext.as_ref().and_then(|e| b(e.gave_up)),
    ),
    (
        "rsv_service_essential",
        "gauge",
        "1 when the service directory has an essential file.",
        |i, _| i.ext.as_ref().and_then(|e| b(e.essential)),
    ),
    (
        "rsv_service_final_exit_code",
        "gauge",
        "Exit code of an essential service's final stop (the container's exit code).",
        |i, _| i.ext.as_ref()?.final_exit.map(|c| c.to_string()),
    ),
    (
        "rsv_service_healthy",
        "gauge",
        "1 when the last health check passed; 0 when failing or not yet run. Absent without checks.",
        |i, _| {
            let e = i.ext.as_ref()?;
            (e.health != Health::None).then(|| u8::from(e.health == Health::Healthy).to_string())
        },
    ),
    (
        "rsv_service_health_failures",
        "gauge",
        "Consecutive failed health checks.",
        |i, _| {
            let e = i.ext.as_ref()?;
            (e.health != Health::None).then(|| e.health_failures.to_string())
        },
    ),
    (
        "rsv_service_health_check_timestamp_seconds",
        "gauge",
        "Unix time the last health check ended.",
        |i, _| {
            let e = i.ext.as_ref()?;
            (e.health_at_ms != 0).then(|| secs_ms(e.health_at_ms))
        },
    ),
    (
        "rsv_service_memory_bytes",
        "gauge",
        "Memory of the service's processes (sum of PSS; its cgroup, run's tree and process group).",
        |i, _| (i.res.processes > 0).then(|| i.res.memory_bytes.to_string()),
    ),
    (
        "rsv_service_cpu_seconds",
        "gauge",
        "CPU time (user + system) of the service's live processes.",
        |i, _| (i.res.processes > 0).then(|| secs_ms(i.res.cpu_ms)),
    ),
    (
        "rsv_service_processes",
        "gauge",
        "Live processes of the service.",
        |i, _| Some(i.res.processes.to_string()),
    ),
    (
        "rsv_service_cpu_percent",
        "gauge",
        "CPU use in percent of one core over the last guard sample (services with resource guards).",
        |i, _| i.res.cpu_percent.map(|c| c.to_string()),
    ),
    (
        "rsv_service_limit_exceeded",
        "gauge",
        "1 when a resource guard's limit is exceeded (services with resource guards).",
        |i, _| {
            i.ext
                .as_ref()
                .filter(|e| e.memory_bytes != 0 || e.cpu_percent.is_some() || !e.limit.is_empty())
                .map(|e| u8::from(!e.limit.is_empty()).to_string())
        },
    ),
    (
        "rsv_service_leftover_processes",
        "gauge",
        "Processes the last run left running outside the current one (its process group, its cgroup).",
        |i, _| Some(i.res.leftovers.len().to_string()),
    ),
];

/// Appends the exposition of `infos` to `out`.
pub fn write(out: &mut String, infos: &[Info], now: Tai64N, now_ms: u64) {
    let c = Ctx { now, now_ms };
    let labels: Vec<String> = infos
        .iter()
        .map(|i| format!("service=\"{}\"", label_value(&i.name)))
        .collect();
    out.push_str("# HELP rsv_service_info Static facts about a service: its directory and status format.\n# TYPE rsv_service_info gauge\n");
    for (i, l) in infos.iter().zip(&labels) {
        let format = i.view.as_ref().map_or("unknown", |v| v.format.name());
        let _ = writeln!(
            out,
            "rsv_service_info{{{l},path=\"{}\",format=\"{format}\",logger=\"{}\"}} 1",
            label_value(&i.path.to_string_lossy()),
            u8::from(i.logger)
        );
    }
    for (name, kind, help, value) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (i, l) in infos.iter().zip(&labels) {
            if let Some(v) = value(i, &c) {
                let _ = writeln!(out, "{name}{{{l}}} {v}");
            }
        }
    }
    out.push_str("# HELP rsv_service_health_output_info The last health check's or probe's result in words, as a label (services with checks).\n# TYPE rsv_service_health_output_info gauge\n");
    for (i, l) in infos.iter().zip(&labels) {
        if let Some(e) = i.ext.as_ref().filter(|e| e.health_at_ms != 0) {
            let text = crate::extstate::one_line(e.health_output.as_bytes());
            let _ = writeln!(
                out,
                "rsv_service_health_output_info{{{l},output=\"{}\"}} 1",
                label_value(&text)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(label_value("web/log"), "web/log");
    }
}

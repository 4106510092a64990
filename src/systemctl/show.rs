//! What systemctl shows: `status` in systemd's layout, `show -p`, `list-units`,
//! `list-unit-files`, `cat`.

use std::fs;
use std::path::Path;

use super::install::enabled_state;
use super::units::{self, Env, Found};
use super::{EXIT_FAILURE, EXIT_INACTIVE, EXIT_NO_UNIT_STATUS, Opts, err, facts, out};
use crate::import::systemd as imp;

pub fn utc_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    format!(
        "{wd} {y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub(super) fn ago(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s ago"),
        60..=3599 => format!("{}min {}s ago", secs / 60, secs % 60),
        _ => format!("{}h {}min ago", secs / 3600, secs % 3600 / 60),
    }
}

pub(super) fn comm(pid: u64) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub(super) fn description(env: &Env, u: &str) -> String {
    units::find(env, u)
        .and_then(|f| units::load_unit(env, &f).ok())
        .and_then(|x| {
            let inst = x.template_parts().map_or("", |(_, i)| i).to_string();
            x.get("Unit", "Description")
                .map(|d| imp::unit::expand_specifiers(d, &x, imp::unit::Instance::Fixed(&inst)).0)
        })
        .unwrap_or_default()
}

pub(super) fn status(env: &Env, units_: &[String]) -> i32 {
    let mut rc = 0;
    let now = crate::svstat::now_ms() / 1000;
    for (k, u) in units_.iter().enumerate() {
        let found = units::find(env, u);
        let name = found.as_ref().map_or(u.clone(), |f| f.name.clone());
        let (a, s, f, view) = facts(env, &name);
        if found.is_none() && !f.present {
            err(&format!("Unit {u} could not be found."));
            rc = rc.max(EXIT_NO_UNIT_STATUS);
            continue;
        }
        if k > 0 {
            out("");
        }
        let desc = description(env, &name);
        let bullet = if a == "active" {
            "●"
        } else if a == "failed" {
            "×"
        } else {
            "○"
        };
        out(&format!(
            "{bullet} {name}{}",
            if desc.is_empty() {
                String::new()
            } else {
                format!(" - {desc}")
            }
        ));
        let loaded = match &found {
            Some(fd) if fd.masked => "masked (Reason: Unit {name} is masked.)".to_string(),
            Some(fd) => format!(
                "loaded ({}; {}; preset: enabled)",
                Path::new("/")
                    .join(fd.path.strip_prefix(&env.root).unwrap_or(&fd.path))
                    .display(),
                enabled_state(env, &name).unwrap_or("disabled")
            ),
            None => "not-found (Reason: Unit not found.)".into(),
        };
        out(&format!("     Loaded: {loaded}"));
        let since = view
            .as_ref()
            .filter(|_| f.supervised)
            .map(|v| {
                format!(
                    " since {}; {}",
                    utc_time(v.since),
                    ago(now.saturating_sub(v.since.max(0) as u64))
                )
            })
            .unwrap_or_default();
        out(&format!("     Active: {a} ({s}){since}"));
        if let Some(v) = &view {
            if v.up {
                let main = f.ext.as_ref().map_or(0, |e| e.main_pid);
                let pid = if main > 0 { main as u64 } else { v.pid };
                out(&format!("   Main PID: {pid} ({})", comm(pid)));
            }
        }
        if let Some(e) = &f.ext {
            if f.up && !e.sd_status.is_empty() {
                out(&format!("     Status: \"{}\"", e.sd_status));
            }
        }
        if a != "active" {
            rc = rc.max(EXIT_INACTIVE);
        }
    }
    rc
}

pub(super) fn loaded_services(env: &Env) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(&env.scandir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.') && !n.ends_with('@'))
                .map(|n| format!("{n}.service"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub(super) fn list_units(env: &Env, o: &Opts) -> i32 {
    let mut rows = Vec::new();
    for u in loaded_services(env) {
        let (a, s, _, _) = facts(env, &u);
        if !o.all && a == "inactive" {
            continue;
        }
        rows.push((u.clone(), "loaded", a, s, description(env, &u)));
    }
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(4).max(4);
    if !o.no_legend {
        out(&format!(
            "  {:<w$} LOAD   ACTIVE     SUB          DESCRIPTION",
            "UNIT"
        ));
    }
    for (u, l, a, s, d) in &rows {
        out(&format!("  {u:<w$} {l:<6} {a:<10} {s:<12} {d}"));
    }
    if !o.no_legend {
        out(&format!("\n{} loaded units listed.", rows.len()));
    }
    0
}

pub(super) fn list_unit_files(env: &Env, o: &Opts) -> i32 {
    let mut names = std::collections::BTreeSet::new();
    for d in env.search() {
        if let Ok(rd) = fs::read_dir(&d) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.ends_with(".service") {
                    names.insert(n);
                }
            }
        }
    }
    if !o.no_legend {
        out("UNIT FILE STATE");
    }
    for n in &names {
        out(&format!("{n} {}", enabled_state(env, n).unwrap_or("bad")));
    }
    if !o.no_legend {
        out(&format!("\n{} unit files listed.", names.len()));
    }
    0
}

pub(super) fn show(env: &Env, units_: &[String], o: &Opts) -> i32 {
    let props: Vec<String> = if o.props.is_empty() {
        [
            "Id",
            "Names",
            "Description",
            "LoadState",
            "ActiveState",
            "SubState",
            "UnitFileState",
            "FragmentPath",
            "MainPID",
            "ExecMainPID",
            "StatusText",
            "Type",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    } else {
        o.props.clone()
    };
    for (k, u) in units_.iter().enumerate() {
        if k > 0 && !o.value {
            out("");
        }
        let found: Option<Found> = units::find(env, u);
        let name = found.as_ref().map_or(u.clone(), |f| f.name.clone());
        let (a, s, f, view) = facts(env, &name);
        let pid = view.filter(|v| v.up).map_or(0, |v| {
            f.ext.as_ref().map_or(v.pid, |e| {
                if e.main_pid > 0 {
                    e.main_pid as u64
                } else {
                    v.pid
                }
            })
        });
        for p in &props {
            let v = match p.as_str() {
                "Id" => name.clone(),
                "Names" => name.clone(),
                "Description" => description(env, &name),
                "LoadState" => match &found {
                    Some(x) if x.masked => "masked".into(),
                    Some(_) => "loaded".into(),
                    None => "not-found".into(),
                },
                "ActiveState" => a.into(),
                "SubState" => s.into(),
                "UnitFileState" => enabled_state(env, &name).unwrap_or("").into(),
                "FragmentPath" => found.as_ref().map_or(String::new(), |x| {
                    Path::new("/")
                        .join(x.path.strip_prefix(&env.root).unwrap_or(&x.path))
                        .display()
                        .to_string()
                }),
                "MainPID" | "ExecMainPID" => pid.to_string(),
                "StatusText" => f
                    .ext
                    .as_ref()
                    .map_or(String::new(), |e| e.sd_status.clone()),
                "Type" => found
                    .as_ref()
                    .and_then(|x| units::load_unit(env, x).ok())
                    .and_then(|x| x.get("Service", "Type").map(str::to_string))
                    .unwrap_or_else(|| "simple".into()),
                "NRestarts" => f.ext.as_ref().map_or(0, |e| e.restarts).to_string(),
                _ => String::new(),
            };
            if o.value {
                out(&v);
            } else {
                out(&format!("{p}={v}"));
            }
        }
    }
    0
}

pub(super) fn cat(env: &Env, u: &str) -> i32 {
    let Some(f) = units::find(env, u) else {
        err(&format!("No files found for {u}."));
        return EXIT_FAILURE;
    };
    out(&format!("# {}", f.path.display()));
    out(fs::read_to_string(&f.path).unwrap_or_default().trim_end());
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(utc_time(0), "Thu 1970-01-01 00:00:00 UTC");
        // Checked with `date -u -d @N`.
        assert_eq!(utc_time(1_796_457_096), "Sat 2026-12-05 07:51:36 UTC");
        assert_eq!(utc_time(951_782_400), "Tue 2000-02-29 00:00:00 UTC");
        assert_eq!(ago(5), "5s ago");
        assert_eq!(ago(65), "1min 5s ago");
    }
}

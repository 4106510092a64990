//! `is-enabled`, `enable`, `disable`, `mask`, `unmask`: systemd's own links under
//! /etc/systemd/system, so they work at image build time.

use std::fs;
use std::path::Path;

use super::units::{self, Env};
use super::{EXIT_FAILURE, Opts, err, out, start, stop};

pub(super) fn enabled_state(env: &Env, u: &str) -> Option<&'static str> {
    let found = units::find(env, u)?;
    if found.masked {
        return Some("masked");
    }
    if found.name != u {
        return Some("alias");
    }
    if !units::links_to(env, &found.name).is_empty() {
        return Some("enabled");
    }
    let unit = units::load_unit(env, &found).ok()?;
    let (t, a, also) = units::install_info(&unit);
    if t.is_empty() && a.is_empty() && also.is_empty() {
        return Some("static");
    }
    Some("disabled")
}

pub(super) fn is_enabled(env: &Env, units_: &[String], o: &Opts) -> i32 {
    let mut any = false;
    let mut rc = 0;
    for u in units_ {
        match enabled_state(env, u) {
            Some(s) => {
                if !o.quiet {
                    out(s);
                }
                any |= matches!(s, "enabled" | "static" | "alias" | "indirect");
            }
            None => {
                err(&format!(
                    "Failed to get unit file state for {u}: No such file or directory"
                ));
                rc = EXIT_FAILURE;
            }
        }
    }
    if rc != 0 {
        rc
    } else if any {
        0
    } else {
        EXIT_FAILURE
    }
}

pub(super) fn enable(env: &Env, u: &str, o: &Opts) -> i32 {
    let Some(found) = units::find(env, u) else {
        err(&format!(
            "Failed to enable unit: Unit file {u} does not exist."
        ));
        return EXIT_FAILURE;
    };
    if found.masked {
        err(&format!("Failed to enable unit: Unit file {u} is masked."));
        return EXIT_FAILURE;
    }
    let unit = match units::load_unit(env, &found) {
        Ok(x) => x,
        Err(e) => {
            err(&format!("Failed to enable unit: {e}"));
            return EXIT_FAILURE;
        }
    };
    let links = units::enable_links(env, &found, &unit);
    let (_, _, also) = units::install_info(&unit);
    if links.is_empty() && also.is_empty() {
        err(&String::from(
            "The unit files have no installation config (WantedBy=, RequiredBy=, Also=,\nAlias= settings in the [Install] section, and DefaultInstance= for template\nunits). This means they are not meant to be enabled or disabled using systemctl.",
        ));
    }
    match units::make_links(&links) {
        Ok(made) => {
            for (l, t) in made {
                err(&format!(
                    "Created symlink {} → {}.",
                    l.display(),
                    t.display()
                ));
            }
        }
        Err(e) => {
            err(&format!("Failed to enable unit: {e}"));
            return EXIT_FAILURE;
        }
    }
    let mut rc = 0;
    for a in also {
        let r = enable(env, &units::full_name(&a), &Opts::default());
        if rc == 0 {
            rc = r;
        }
    }
    if o.now && rc == 0 {
        rc = start(env, &found.name, o);
    }
    rc
}

pub(super) fn disable(env: &Env, u: &str, o: &Opts) -> i32 {
    let Some(found) = units::find(env, u) else {
        err(&format!(
            "Failed to disable unit: Unit file {u} does not exist."
        ));
        return EXIT_FAILURE;
    };
    for l in units::links_to(env, &found.name) {
        if fs::remove_file(&l).is_ok() {
            err(&format!("Removed \"{}\".", l.display()));
        }
    }
    if o.now {
        return stop(env, &found.name, o);
    }
    0
}

pub(super) fn mask(env: &Env, u: &str, on: bool) -> i32 {
    let l = env.etc().join(u);
    if on {
        let _ = fs::create_dir_all(env.etc());
        let _ = fs::remove_file(&l);
        if let Err(e) = std::os::unix::fs::symlink("/dev/null", &l) {
            err(&format!("Failed to mask unit: {e}"));
            return EXIT_FAILURE;
        }
        err(&format!("Created symlink {} → /dev/null.", l.display()));
    } else if fs::read_link(&l).is_ok_and(|t| t == Path::new("/dev/null")) {
        let _ = fs::remove_file(&l);
        err(&format!("Removed \"{}\".", l.display()));
    }
    0
}

//! Rules across checks: unique ids, dependencies that exist and do not loop, timeouts that
//! fit the interval.

use std::collections::{HashMap, HashSet};

use super::{ConfigError, raw::ParsedCheck, raw::Source};

pub(super) fn checks(src: &Source<'_>, checks: &[ParsedCheck]) -> Result<(), ConfigError> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, parsed) in checks.iter().enumerate() {
        let common = parsed.check.common();
        let id = common.id.as_str();
        if let Some(first) = seen.insert(id, index) {
            return Err(src.at_key(
                parsed.span.clone(),
                "id",
                format!("check[{index}].id"),
                format!(
                    "{id:?} is already the id of check[{first}]; every check on an agent needs its own id"
                ),
            ));
        }
        if parsed.timeout_set && common.timeout > common.interval {
            return Err(src.at_key(
                parsed.span.clone(),
                "timeout",
                format!("check {id:?} (timeout)"),
                format!(
                    "the timeout {} is longer than the interval {}; expected a timeout at most the interval",
                    common.timeout, common.interval
                ),
            ));
        }
        if parsed.interval_set && common.interval.get().is_zero() {
            return Err(src.at_key(
                parsed.span.clone(),
                "interval",
                format!("check {id:?} (interval)"),
                "the interval is 0s; expected at least 1s",
            ));
        }
        for (key, value) in [
            ("fail_after", common.fail_after),
            ("recover_after", common.recover_after),
        ] {
            if value == 0 {
                return Err(src.at_key(
                    parsed.span.clone(),
                    key,
                    format!("check {id:?} ({key})"),
                    format!("{key} is 0; expected 1 or more consecutive results"),
                ));
            }
        }
    }
    for parsed in checks {
        let common = parsed.check.common();
        for dep in &common.depends_on {
            let problem = if dep == &common.id {
                Some(format!("{:?} depends on itself", dep.as_str()))
            } else if !seen.contains_key(dep.as_str()) {
                Some(format!(
                    "{:?} is not a check on this agent; expected one of {}",
                    dep.as_str(),
                    quoted_ids(checks)
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(src.at_key(
                    parsed.span.clone(),
                    "depends_on",
                    format!("check {:?} (depends_on)", common.id.as_str()),
                    problem,
                ));
            }
        }
    }
    if let Some((index, cycle)) = find_cycle(checks) {
        return Err(src.at_key(
            checks[index].span.clone(),
            "depends_on",
            format!(
                "check {:?} (depends_on)",
                checks[index].check.common().id.as_str()
            ),
            format!(
                "the dependencies loop: {}; expected a chain that ends",
                cycle.join(" → ")
            ),
        ));
    }
    Ok(())
}

fn quoted_ids(checks: &[ParsedCheck]) -> String {
    checks
        .iter()
        .map(|c| format!("{:?}", c.check.common().id.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A dependency loop, as the index of a check on it and the ids around it.
fn find_cycle(checks: &[ParsedCheck]) -> Option<(usize, Vec<String>)> {
    let index: HashMap<&str, usize> = checks
        .iter()
        .enumerate()
        .map(|(i, c)| (c.check.common().id.as_str(), i))
        .collect();
    for start in 0..checks.len() {
        let mut path = vec![start];
        let mut visited = HashSet::new();
        if let Some(cycle) = walk(checks, &index, &mut path, &mut visited) {
            return Some((start, cycle));
        }
    }
    None
}

fn walk(
    checks: &[ParsedCheck],
    index: &HashMap<&str, usize>,
    path: &mut Vec<usize>,
    visited: &mut HashSet<usize>,
) -> Option<Vec<String>> {
    let current = *path.last()?;
    if !visited.insert(current) {
        return None;
    }
    for dep in &checks[current].check.common().depends_on {
        let Some(&next) = index.get(dep.as_str()) else {
            continue;
        };
        if next == path[0] {
            let mut ids: Vec<String> = path
                .iter()
                .map(|&i| checks[i].check.common().id.to_string())
                .collect();
            ids.push(dep.to_string());
            return Some(ids);
        }
        path.push(next);
        if let Some(cycle) = walk(checks, index, path, visited) {
            return Some(cycle);
        }
        path.pop();
    }
    None
}

//! PURE: the rules of `PROTOCOL-NOTES.md` a rendered HLS media playlist must keep (RFC 8216 and its
//! LL-HLS second edition), checked over the text as a player reads it. Tests run every playlist
//! estuary renders through [`media_playlist_problems`].

/// What is wrong with a media playlist; empty when nothing is.
pub fn media_playlist_problems(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let tag = |name: &str| text.lines().find_map(|l| l.strip_prefix(name));
    let number = |value: Option<&str>| value.and_then(|v| v.trim().parse::<f64>().ok());
    let version = number(tag("#EXT-X-VERSION:")).unwrap_or(1.0);
    let Some(target) = number(tag("#EXT-X-TARGETDURATION:")) else {
        return vec!["no EXT-X-TARGETDURATION".into()];
    };
    let control = tag("#EXT-X-SERVER-CONTROL:").unwrap_or("");
    let part_target = number(tag("#EXT-X-PART-INF:").and_then(|v| attribute(v, "PART-TARGET")));
    let ended = text.lines().any(|l| l == "#EXT-X-ENDLIST");
    let mut say = |problem: String| problems.push(problem);

    // With EXT-X-I-FRAMES-ONLY, version 5 allows EXT-X-MAP.
    let map_version = if text.lines().any(|l| l == "#EXT-X-I-FRAMES-ONLY") { 5.0 } else { 6.0 };
    if tag("#EXT-X-MAP:").is_some() && version < map_version {
        say(format!("EXT-X-MAP needs EXT-X-VERSION {map_version}, not {version}"));
    }
    for extinf in text.lines().filter_map(|l| l.strip_prefix("#EXTINF:")) {
        let secs = number(extinf.split(',').next()).unwrap_or(f64::INFINITY);
        if secs.round() > target {
            say(format!("EXTINF {secs} rounds above EXT-X-TARGETDURATION {target}"));
        }
    }
    if let Some(until) = number(attribute(control, "CAN-SKIP-UNTIL"))
        && until < 6.0 * target
    {
        say(format!("CAN-SKIP-UNTIL {until} is under six target durations ({target} s)"));
    }
    if let Some(hold_back) = number(attribute(control, "HOLD-BACK"))
        && hold_back < 3.0 * target
    {
        say(format!("HOLD-BACK {hold_back} is under three target durations ({target} s)"));
    }
    if tag("#EXT-X-SKIP:").is_some() {
        if version < 9.0 {
            say(format!("EXT-X-SKIP needs EXT-X-VERSION 9, not {version}"));
        }
        if attribute(control, "CAN-SKIP-UNTIL").is_none() {
            say("EXT-X-SKIP in a playlist whose server control offers no CAN-SKIP-UNTIL".into());
        }
    }
    let parts: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("#EXT-X-PART:")).collect();
    let low_latency = part_target.is_some() || !parts.is_empty() || tag("#EXT-X-PRELOAD-HINT:").is_some();
    if !low_latency {
        return problems;
    }
    let Some(part_target) = part_target else {
        problems.push("EXT-X-PART without EXT-X-PART-INF".into());
        return problems;
    };
    if attribute(control, "CAN-BLOCK-RELOAD") != Some("YES") {
        problems.push("LL-HLS without CAN-BLOCK-RELOAD=YES".into());
    }
    match number(attribute(control, "PART-HOLD-BACK")) {
        None => problems.push("LL-HLS without PART-HOLD-BACK".into()),
        Some(hold_back) if hold_back < 2.0 * part_target => {
            problems.push(format!("PART-HOLD-BACK {hold_back} is under twice PART-TARGET {part_target}"));
        }
        Some(_) => {}
    }
    for part in &parts {
        let duration = number(attribute(part, "DURATION")).unwrap_or(f64::INFINITY);
        if duration > part_target {
            problems.push(format!("a part of {duration} s is over PART-TARGET {part_target}"));
        }
        if attribute(part, "URI").is_none() {
            problems.push(format!("a part without URI: {part}"));
        }
    }
    if !ended && tag("#EXT-X-PRELOAD-HINT:").is_none() {
        problems.push("a live LL-HLS playlist without EXT-X-PRELOAD-HINT".into());
    }
    problems
}

/// The value of attribute `name` in an attribute list, quotes taken off.
fn attribute<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = match after.strip_prefix('"') {
            Some(quoted) => {
                let (value, tail) = quoted.split_once('"')?;
                (value, tail.strip_prefix(',').unwrap_or(tail))
            }
            None => after.split_once(',').unwrap_or((after, "")),
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;

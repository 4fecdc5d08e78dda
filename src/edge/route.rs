//! The edge's routes: which handler a raw request path goes to, by its prefix, and the route
//! template that metrics and logs report (never the raw path). The grammar of the objects below each
//! route is `packaging::url`'s.

/// The edge's routes, by path prefix. The route template is what metrics and logs report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EdgeRoute {
    /// `/static/{*key}`: stored objects passed through.
    Static,
    /// `/vod/{*path}`: MP4 packaged on the fly.
    Vod,
    /// `/live/{channel}/{*rest}`
    Live,
    /// `/time`: the clock for DASH `UTCTiming`.
    Time,
    /// `/healthz`: the load balancer's probe.
    Health,
    /// `/keys/{file}`: HLS AES-128 keys, when key delivery is on.
    Key,
}

impl EdgeRoute {
    /// The route template reported in metrics and logs.
    pub(super) fn template(self) -> &'static str {
        match self {
            EdgeRoute::Static => "/static/{*key}",
            EdgeRoute::Vod => "/vod/{*path}",
            EdgeRoute::Live => "/live/{channel}/{*rest}",
            EdgeRoute::Time => "/time",
            EdgeRoute::Health => "/healthz",
            EdgeRoute::Key => "/keys/{file}",
        }
    }

    /// The route of a raw (still percent-encoded) request path and what its wildcard captures.
    pub(super) fn of(path: &str) -> Option<(EdgeRoute, &str)> {
        match path {
            "/time" => return Some((EdgeRoute::Time, "")),
            "/healthz" => return Some((EdgeRoute::Health, "")),
            _ => {}
        }
        let (route, rest) = if let Some(rest) = path.strip_prefix("/static/") {
            (EdgeRoute::Static, rest)
        } else if let Some(rest) = path.strip_prefix("/vod/") {
            (EdgeRoute::Vod, rest)
        } else if let Some(rest) = path.strip_prefix("/keys/") {
            // `{kid}.key`, `{content id}/[{period}/]{kid}.key`, or `{content id}/clearkey`.
            if !rest.ends_with(".key") && !rest.ends_with("/clearkey") {
                return None;
            }
            (EdgeRoute::Key, rest)
        } else if let Some(rest) = path.strip_prefix("/live/") {
            // `{channel}/{rest}`: both non-empty.
            let (channel, tail) = rest.split_once('/')?;
            if channel.is_empty() || tail.is_empty() {
                return None;
            }
            (EdgeRoute::Live, rest)
        } else {
            return None;
        };
        (!rest.is_empty()).then_some((route, rest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(EdgeRoute::of("/static/a/b.m3u8"), Some((EdgeRoute::Static, "a/b.m3u8")));
        assert_eq!(EdgeRoute::of("/vod/a.mp4/master.m3u8"), Some((EdgeRoute::Vod, "a.mp4/master.m3u8")));
        assert_eq!(EdgeRoute::of("/live/news/master.m3u8"), Some((EdgeRoute::Live, "news/master.m3u8")));
        assert_eq!(EdgeRoute::of("/time"), Some((EdgeRoute::Time, "")));
        assert_eq!(EdgeRoute::of("/healthz"), Some((EdgeRoute::Health, "")));
        assert_eq!(EdgeRoute::of("/keys/0a.key"), Some((EdgeRoute::Key, "0a.key")));
        for bad in [
            "/static/",
            "/vod/",
            "/static",
            "/staticx/a",
            "/live/news",
            "/live//x",
            "/live/news/",
            "/",
            "/time/",
            "/keys/",
            "/keys/a/b",
        ] {
            assert_eq!(EdgeRoute::of(bad), None, "{bad}");
        }
    }
}

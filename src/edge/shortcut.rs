//! The edge's shortcut for hot objects: a plain GET or HEAD of a small cached object that was just
//! served whole is answered again from its raw head, with the status line and headers the full path
//! rendered ([`crate::cache::hot`]): no `Request`, no `HeaderMap`, no catalog or cache lookup.
//!
//! Invariant: the shortcut sends exactly the bytes the full path would send. It only answers
//! requests whose answer cannot depend on more than the target and `Accept-Encoding` (no range,
//! no precondition, no body), after the same origin lock, and it negotiates the coding with the
//! same function; the full path offers an answer only for such requests, 200 and whole.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::Response;
use http::header::ACCEPT_ENCODING;
use http::{HeaderMap, Method, Request, StatusCode};

use super::respond::coding_for;
use super::{EdgeState, OriginLock};
use crate::cache::hot::{HotAnswers, HotOffer};
use crate::cache::{CacheOutcome, CachedObject};
use crate::http::encoding::Coding;
use crate::http::raw::{AnswerBody, HeadSink, RawHead};
use crate::telemetry::AccessLog;
use crate::telemetry::access::Answer;
use crate::telemetry::access::{Client, Logged, request_id};

/// Request headers that can change an answer beyond its coding: such requests take the full path.
const SHAPING: [&str; 8] = [
    "range",
    "if-range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "content-length",
    "transfer-encoding",
];

/// Put on a response by a handler that served `object` whole from the cache: the dispatcher may
/// offer it to the hot answers ([`offer`]).
#[derive(Clone)]
pub(super) struct Candidate {
    object: Arc<CachedObject>,
    coding: Coding,
    until: Instant,
}

/// Marks `response` (a full-path answer for `object`, valid until `until`) as a candidate.
pub(super) fn candidate(
    mut response: Response,
    object: &Arc<CachedObject>,
    headers: &HeaderMap,
    outcome: CacheOutcome,
    until: Option<Instant>,
) -> Response {
    let until = match (until, object.fresh_until()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let served_fresh = matches!(outcome, CacheOutcome::Hit | CacheOutcome::Miss | CacheOutcome::Coalesced);
    if let Some(until) = until
        && served_fresh
        && response.status() == StatusCode::OK
        && HotAnswers::takes(object)
    {
        let coding = coding_for(headers.get(ACCEPT_ENCODING).map(http::HeaderValue::as_bytes), object);
        response.extensions_mut().insert(Candidate { object: object.clone(), coding, until });
    }
    response
}

/// Turns a handler's [`Candidate`] into a [`HeadSink`] that hands the rendered head to the hot
/// answers, when `request` is one the shortcut could answer. `generation`: read before the handler
/// looked the object up.
pub(super) fn offer<B>(
    mut response: Response,
    request: &Request<B>,
    state: &EdgeState,
    route: &'static str,
    generation: u64,
) -> Response {
    let Some(Candidate { object, coding, until }) = response.extensions_mut().remove::<Candidate>() else {
        return response;
    };
    let plain = (request.method() == Method::GET || request.method() == Method::HEAD)
        && request.uri().scheme().is_none()
        && !SHAPING.iter().any(|name| request.headers().contains_key(*name));
    let Some(target) = request.uri().path_and_query().filter(|_| plain && state.cache.is_on()) else {
        return response;
    };
    let offer = HotOffer { target: target.as_str().into(), route, object, coding, until, generation };
    let table = state.cache.hot().clone();
    response.extensions_mut().insert(HeadSink(Arc::new(move |head| table.accept(&offer, head))));
    response
}

/// Bodies up to this size are copied into the connection's buffer rather than shared: a copy is
/// cheaper than a reference count that every core answering the same object writes.
const COPY_BELOW: usize = 4096;

/// The shortcut's answer to `raw`, if it has one: its head appended to `head`, its body given.
pub(super) fn answer(
    state: &EdgeState,
    lock: Option<&OriginLock>,
    access: &AccessLog,
    raw: &RawHead<'_, '_>,
    (head, copied): (&mut Vec<u8>, &mut Vec<u8>),
) -> Option<AnswerBody> {
    let method = match raw.method {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        _ => return None,
    };
    let (mut accept, mut presented) = (None, None);
    for h in raw.headers {
        if SHAPING.iter().any(|name| h.name.eq_ignore_ascii_case(name)) {
            return None;
        }
        if accept.is_none() && h.name.eq_ignore_ascii_case(ACCEPT_ENCODING.as_str()) {
            accept = Some(h.value);
        }
        if let Some(lock) = lock
            && presented.is_none()
            && h.name.eq_ignore_ascii_case(lock.header.as_str())
        {
            presented = Some(h.value);
        }
    }
    if lock.is_some_and(|lock| !lock.admits_value(presented)) {
        return None;
    }
    let start = Instant::now();
    let (route, len, body) = state.cache.hot().with(raw.target, start, |hot| {
        let coding = coding_for(accept, &hot.object);
        head.extend_from_slice(hot.head(coding)?);
        let rep = &hot.object.representation(coding).body;
        let body = match method {
            Method::HEAD => AnswerBody::Copied,
            _ if rep.len() < COPY_BELOW => {
                copied.extend_from_slice(rep);
                AnswerBody::Copied
            }
            _ => AnswerBody::Shared(rep.clone()),
        };
        Some((hot.route, rep.len() as u64, body))
    })?;
    state.cache.record_hot_hit();
    let bytes = if method == Method::HEAD { 0 } else { len };
    let (target, query) = raw.target.split_once('?').map_or((raw.target, None), |(p, q)| (p, Some(q)));
    let answer =
        Answer { status: 200, bytes, cache: Some(CacheOutcome::Hit), error: None, storage: Some(Duration::ZERO) };
    let kind = crate::telemetry::object_kind(target);
    if !access.log {
        access.record(&method, (route, kind), None, start, answer);
        return Some(body);
    }
    // Logged: the answer names its request id too (its head has no blank line yet).
    let client = Client::of_raw(raw.headers, raw.peer);
    let id = request_id(client.request_id);
    head.extend_from_slice(b"x-request-id: ");
    head.extend_from_slice(id.as_bytes());
    head.extend_from_slice(b"\r\n");
    let logged = Logged { path: target, query, client };
    access.record(&method, (route, kind), Some((logged, &id)), start, answer);
    Some(body)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;

    fn candidate_of(
        object: &Arc<CachedObject>,
        status: StatusCode,
        outcome: CacheOutcome,
        until: Option<Instant>,
    ) -> Option<Instant> {
        let mut response = Response::new(axum::body::Body::empty());
        *response.status_mut() = status;
        let response = candidate(response, object, &HeaderMap::new(), outcome, until);
        response.extensions().get::<Candidate>().map(|c| c.until)
    }

    #[test]
    fn a_candidate_lives_no_longer_than_the_object_and_its_sources() {
        let body = Bytes::from_static(b"#EXTM3U\n");
        let plain = Arc::new(CachedObject::new(body.clone(), "application/vnd.apple.mpegurl", None));
        let soon = Instant::now() + Duration::from_millis(300);
        assert_eq!(candidate_of(&plain, StatusCode::OK, CacheOutcome::Hit, Some(soon)), Some(soon));
        // Nothing says until when the object holds: no candidate.
        assert_eq!(candidate_of(&plain, StatusCode::OK, CacheOutcome::Hit, None), None);
        let expiring = Arc::new(
            CachedObject::new(body, "application/vnd.apple.mpegurl", None).with_ttl(Some(Duration::from_millis(100))),
        );
        let fresh_until = expiring.created + Duration::from_millis(100);
        assert_eq!(candidate_of(&expiring, StatusCode::OK, CacheOutcome::Miss, Some(soon)), Some(fresh_until));
        assert_eq!(candidate_of(&expiring, StatusCode::OK, CacheOutcome::Hit, None), Some(fresh_until));
        // A stale copy served through a storage outage, or anything but a whole 200, is not kept.
        assert_eq!(candidate_of(&expiring, StatusCode::OK, CacheOutcome::Stale, Some(soon)), None);
        assert_eq!(candidate_of(&plain, StatusCode::PARTIAL_CONTENT, CacheOutcome::Hit, Some(soon)), None);
        assert_eq!(candidate_of(&plain, StatusCode::NOT_MODIFIED, CacheOutcome::Hit, Some(soon)), None);
    }
}

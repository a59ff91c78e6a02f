//! How a request is sent again: a service consumes its request, so every retry needs a copy
//! made before the first attempt.

use bytes::Bytes;

/// Makes a copy of a request for a later attempt, or says it cannot (`None`): then the call
/// gets one attempt only, which the metrics and the breaker count as any other.
///
/// The copy is taken once, before the first attempt (the first attempt consumes the request),
/// and each retry is replayed from it. Ready strategies: [`CloneRequest`] (any `Clone`
/// request), [`HttpReplay`] (an `http::Request` whose body is a [`ReplayBody`]) and
/// [`NoReplay`] (never retry); any `Fn(&Req) -> Option<Req>` is one too.
///
/// ```
/// use resilience_core::{CloneRequest, NoReplay, ReplayRequest};
/// assert_eq!(CloneRequest.replay(&"GET /"), Some("GET /"));
/// assert_eq!(ReplayRequest::<&str>::replay(&NoReplay, &"GET /"), None);
/// let only_gets = |r: &String| r.starts_with("GET").then(|| r.clone());
/// assert_eq!(only_gets.replay(&"POST /".to_string()), None);
/// assert_eq!(only_gets.replay(&"GET /".to_string()).as_deref(), Some("GET /"));
/// ```
pub trait ReplayRequest<Req> {
    /// A copy of `request` to send again, or `None` when it cannot be sent twice.
    fn replay(&self, request: &Req) -> Option<Req>;
}

impl<Req, F: Fn(&Req) -> Option<Req>> ReplayRequest<Req> for F {
    #[inline]
    fn replay(&self, request: &Req) -> Option<Req> {
        self(request)
    }
}

/// Replays any `Clone` request by cloning it.
///
/// ```
/// use resilience_core::{CloneRequest, ReplayRequest};
/// assert_eq!(CloneRequest.replay(&vec![1, 2]), Some(vec![1, 2]));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct CloneRequest;

impl<Req: Clone> ReplayRequest<Req> for CloneRequest {
    #[inline]
    fn replay(&self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }
}

/// Never replays: every call gets exactly one attempt (the breaker, the metrics and the budget
/// still apply). What the server-side adapter uses: a handler is not run twice for one request.
///
/// ```
/// use resilience_core::{NoReplay, ReplayRequest};
/// assert_eq!(NoReplay.replay(&1), None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NoReplay;

impl<Req> ReplayRequest<Req> for NoReplay {
    #[inline(always)]
    fn replay(&self, _: &Req) -> Option<Req> {
        None
    }
}

/// Replays an `http::Request<B>`: its method, URI, version, headers and extensions are copied,
/// and its body when `B` is a [`ReplayBody`] that can be copied. A streaming body (one whose
/// `try_replay` is `None`, such as `hyper::body::Incoming`) cannot be read twice, so such a
/// request gets one attempt: no retry, counted in the metrics and by the breaker like any call.
///
/// ```
/// use resilience_core::{HttpReplay, ReplayRequest};
/// let request = http::Request::post("http://127.0.0.1/jobs").header("x-id", "7").body(String::from("{}")).unwrap();
/// let copy = HttpReplay.replay(&request).unwrap();
/// assert_eq!((copy.method(), copy.uri(), copy.body()), (request.method(), request.uri(), request.body()));
/// assert_eq!(copy.headers()["x-id"], "7");
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpReplay;

impl<B: ReplayBody> ReplayRequest<http::Request<B>> for HttpReplay {
    fn replay(&self, request: &http::Request<B>) -> Option<http::Request<B>> {
        let body = request.body().try_replay()?;
        let mut copy = http::Request::new(body);
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.version_mut() = request.version();
        *copy.headers_mut() = request.headers().clone();
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }
}

/// A request body that may be sent again: `Some(copy)` for a body held in memory, `None` for
/// one that streams (it can be read once only).
///
/// Implemented for the in-memory bodies (`String`, `Vec<u8>`, `Bytes`, `&'static str`,
/// `&'static [u8]`, `()`, `http_body_util::Full`, `http_body_util::Empty`) and, as never
/// replayable, for `hyper::body::Incoming` and `http_body_util`'s boxed bodies. For a body type
/// of your own, implement it in one line.
///
/// ```
/// use resilience_core::ReplayBody;
/// struct Upload; // reads a file as it goes: cannot be sent twice
/// impl ReplayBody for Upload {
///     fn try_replay(&self) -> Option<Self> { None }
/// }
/// assert!(Upload.try_replay().is_none());
/// assert_eq!(String::from("{}").try_replay().as_deref(), Some("{}"));
/// ```
pub trait ReplayBody: Sized {
    /// A copy of the body to send again, or `None` when it streams.
    fn try_replay(&self) -> Option<Self>;
}

macro_rules! replay_by_clone {
    ($($ty:ty),* $(,)?) => {$(
        impl ReplayBody for $ty {
            #[inline]
            fn try_replay(&self) -> Option<Self> {
                Some(self.clone())
            }
        }
    )*};
}

replay_by_clone!(String, Vec<u8>, Bytes, &'static str, &'static [u8], ());

impl<D: Clone> ReplayBody for http_body_util::Full<D> {
    #[inline]
    fn try_replay(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D> ReplayBody for http_body_util::Empty<D> {
    #[inline]
    fn try_replay(&self) -> Option<Self> {
        Some(http_body_util::Empty::new())
    }
}

/// A body arriving from a connection (a proxy forwarding what it received): read once.
impl ReplayBody for hyper::body::Incoming {
    #[inline]
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

/// A boxed body may stream: never replayed.
impl<D, E> ReplayBody for http_body_util::combinators::BoxBody<D, E> {
    #[inline]
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

/// A boxed body may stream: never replayed.
impl<D, E> ReplayBody for http_body_util::combinators::UnsyncBoxBody<D, E> {
    #[inline]
    fn try_replay(&self) -> Option<Self> {
        None
    }
}

//! A scripted HTTP server on loopback for the tower and reqwest integration tests: it answers
//! each request with the next (status, Retry-After) of its script, then 200 once the script is
//! used up, and notes when each request arrived on tokio's clock (paused in the tests).

#![allow(dead_code)] // each test file uses a part of it

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::time::Instant;

/// One scripted answer: a status and an optional `Retry-After` value.
pub type Answer = (u16, Option<&'static str>);

#[derive(Default)]
struct State {
    script: Mutex<VecDeque<Answer>>,
    /// Arrival time of every request.
    arrivals: Mutex<Vec<Instant>>,
    /// When set, every request gets this answer, after the script.
    always: Mutex<Option<Answer>>,
}

/// The running server; it stops with the test's runtime.
pub struct Scripted {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Scripted {
    /// Starts a server answering `script` in order, then 200.
    pub async fn start(script: &[Answer]) -> Scripted {
        Self::start_with(script, None).await
    }

    /// Starts a server answering `script` in order, then `always` (200 when `None`).
    pub async fn start_with(script: &[Answer], always: Option<Answer>) -> Scripted {
        let state = Arc::new(State {
            script: Mutex::new(script.iter().copied().collect()),
            arrivals: Mutex::default(),
            always: Mutex::new(always),
        });
        let router = Router::new()
            .route("/{*path}", any(answer))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("an ephemeral port on loopback");
        let addr = listener.local_addr().expect("bound");
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Scripted { addr, state }
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.state.arrivals.lock().unwrap().len()
    }

    /// When each request arrived.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.state.arrivals.lock().unwrap().clone()
    }

    /// From now on every request past the script gets `answer`.
    pub fn set_always(&self, answer: Option<Answer>) {
        *self.state.always.lock().unwrap() = answer;
    }
}

async fn answer(axum::extract::State(state): axum::extract::State<Arc<State>>) -> Response {
    state.arrivals.lock().unwrap().push(Instant::now());
    let next = state.script.lock().unwrap().pop_front();
    let (status, retry_after) = next
        .or(*state.always.lock().unwrap())
        .unwrap_or((200, None));
    let status = StatusCode::from_u16(status).expect("a valid status");
    match retry_after {
        Some(value) => (status, [(header::RETRY_AFTER, value)], "scripted\n").into_response(),
        None => (status, "scripted\n").into_response(),
    }
}

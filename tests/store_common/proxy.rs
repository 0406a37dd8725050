//! A TCP proxy for fault injection: sits between a store client and its server, and cuts
//! every open connection on demand, or refuses new ones for a while.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One proxied connection: the task copying bytes, and the local address of its upstream
/// socket (how the server sees this client).
struct Link {
    task: JoinHandle<()>,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // read by the Redis tests only
    upstream_local: SocketAddr,
}

#[derive(Default)]
struct State {
    links: Mutex<Vec<Link>>,
    refusing: AtomicBool,
    accepted: AtomicU64,
    cut: AtomicU64,
}

/// A proxy listening on `127.0.0.1:<random port>` and forwarding to one upstream address.
pub struct Proxy {
    addr: SocketAddr,
    state: Arc<State>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`HOST:PORT`).
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State::default());
        let upstream = upstream.to_owned();
        let st = Arc::clone(&state);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if st.refusing.load(Ordering::SeqCst) {
                    drop(client); // accepted and closed at once: the handshake fails
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let _ = (client.set_nodelay(true), server.set_nodelay(true));
                let Ok(upstream_local) = server.local_addr() else {
                    continue;
                };
                st.accepted.fetch_add(1, Ordering::SeqCst);
                let task = tokio::spawn(pipe(client, server));
                let mut links = st.links.lock().unwrap();
                links.retain(|l| !l.task.is_finished());
                links.push(Link {
                    task,
                    upstream_local,
                });
            }
        });
        Proxy {
            addr,
            state,
            accept,
        }
    }

    /// `HOST:PORT` of the proxy.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Closes every open connection (both sides see the socket close); returns how many were
    /// open.
    pub fn cut_all(&self) -> usize {
        let links: Vec<Link> = std::mem::take(&mut *self.state.links.lock().unwrap());
        let open = links.iter().filter(|l| !l.task.is_finished()).count();
        for l in links {
            l.task.abort();
        }
        self.state.cut.fetch_add(open as u64, Ordering::SeqCst);
        open
    }

    /// While `refuse` is set, new connections are accepted and closed at once.
    pub fn refuse(&self, refuse: bool) {
        self.state.refusing.store(refuse, Ordering::SeqCst);
    }

    /// Connections accepted (and forwarded) so far.
    pub fn accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Open connections cut so far.
    pub fn cut(&self) -> u64 {
        self.state.cut.load(Ordering::SeqCst)
    }

    /// The addresses the server sees for the connections open now.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))] // used by the Redis tests only
    pub fn upstream_addrs(&self) -> Vec<SocketAddr> {
        let links = self.state.links.lock().unwrap();
        links
            .iter()
            .filter(|l| !l.task.is_finished())
            .map(|l| l.upstream_local)
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut_all();
    }
}

/// Copies bytes both ways until either side closes; dropping the sockets closes the other side.
async fn pipe(mut client: TcpStream, mut server: TcpStream) {
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

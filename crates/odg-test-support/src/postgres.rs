//! `TestDatabase`: a PostgreSQL database of its own per test on the suite's server
//! (`ODG_TEST_POSTGRES_URL`, default `postgres://root@127.0.0.1:5432/postgres`), dropped on drop.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The server the suite may use, as an admin URL (any existing database).
pub fn postgres_admin_url() -> String {
    std::env::var("ODG_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".to_owned())
}

/// `host:port` of the suite's server, resolved (e.g. to put a [`crate::TcpForwarder`] before it).
pub fn postgres_server_addr() -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    let url = postgres_admin_url();
    let authority = authority_of(&url);
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let host_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    };
    host_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .unwrap_or_else(|| panic!("cannot resolve the PostgreSQL server of {url}"))
}

/// The part of a URL between `scheme://` and the path.
fn authority_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

/// A freshly created, uniquely named database; `DROP DATABASE .. WITH (FORCE)` on drop.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    admin_url: String,
}

impl TestDatabase {
    pub async fn create(test: &str) -> TestDatabase {
        static SEQUENCE: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "odg_it_{}_{}_{nanos:x}_{}",
            test.chars()
                .filter(char::is_ascii_alphanumeric)
                .take(24)
                .collect::<String>()
                .to_lowercase(),
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        );
        let admin_url = postgres_admin_url();
        admin_statement(&admin_url, &format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|error| {
                panic!("creating test database {name} on {admin_url}: {error}")
            });
        TestDatabase { name, admin_url }
    }

    /// The URL of this database (the admin URL with its database name replaced).
    pub fn url(&self) -> String {
        let base = self
            .admin_url
            .rsplit_once('/')
            .map_or(self.admin_url.as_str(), |(base, _)| base);
        format!("{base}/{}", self.name)
    }

    /// The URL of this database reached at `addr` instead of the server's own address (a
    /// forwarder, or a port where nothing listens yet).
    pub fn url_via(&self, addr: std::net::SocketAddr) -> String {
        let url = self.url();
        let authority = authority_of(&url);
        let replaced = match authority.rsplit_once('@') {
            Some((user, _)) => format!("{user}@{addr}"),
            None => addr.to_string(),
        };
        url.replacen(authority, &replaced, 1)
    }
}

async fn admin_statement(admin_url: &str, statement: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut connection = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(statement).execute(&mut connection).await?;
    connection.close().await
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop may run inside a runtime: do the async work on a thread of its own.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                if let Err(error) = admin_statement(
                    &admin_url,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                )
                .await
                {
                    eprintln!("could not drop test database {name}: {error}");
                }
            });
        })
        .join();
    }
}

//! `TestDatabase`: a PostgreSQL database of its own per test on the suite's server
//! (`ODG_TEST_POSTGRES_URL`, default `postgres://root@127.0.0.1:5432/postgres`), dropped on drop.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The server the suite may use, as an admin URL (any existing database).
pub fn postgres_admin_url() -> String {
    std::env::var("ODG_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://root@127.0.0.1:5432/postgres".to_owned())
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

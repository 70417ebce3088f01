//! Engine configuration: one plain struct with documented defaults, one `validate()`, and the
//! only reader of `MEMORY_*` environment variables in the project.

use std::path::PathBuf;
use std::time::Duration;

use crate::coordinator::ResilienceConfig;
use crate::error::{Error, Result};
use crate::id::truncate_for_message;
use crate::limits::Limits;
use crate::retrieval::{FlagValues, RetrievalConfig};

/// A credential for a remote store. Never printed: `Debug` shows only whether one is set, and
/// there is no `Display`; read it with [`AuthToken::expose`] where it is handed to the client.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthToken(String);

impl AuthToken {
    /// Wrap a token (empty means none).
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for the client that sends it. Never log the result.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether a token is set.
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }
}

impl std::fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_set() {
            "AuthToken(<redacted>)"
        } else {
            "AuthToken(<none>)"
        })
    }
}

/// A URL as logs and errors may show it: scheme and host only, never user info, path or query
/// (where credentials can hide).
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    let host: String = host.chars().take(100).collect();
    format!("{scheme}://{host}")
}

/// Where the durable store lives. The core never connects anywhere; the binaries that open
/// backends read this (see `docs/deployment.md`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DurableMode {
    /// A local libsql file, `<data_dir>/memory.db` (the default).
    #[default]
    Local,
    /// A remote libsql server (sqld or Turso) at [`DurableTarget::url`].
    Remote,
    /// An embedded replica: `<data_dir>/replica.db`, kept in sync with the primary at
    /// [`DurableTarget::url`]; reads are local, writes go to the primary.
    Replica,
}

/// The durable store's location and credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DurableTarget {
    /// Local file, remote server or embedded replica. Default local.
    pub mode: DurableMode,
    /// The server's URL (`http://` or `libsql://`/`https://`); required for remote and
    /// replica, refused for local.
    pub url: Option<String>,
    /// The server's auth token; empty for a server without authentication.
    pub auth_token: AuthToken,
    /// How often an embedded replica pulls the primary's changes in the background; `None`
    /// (the default) syncs only at open, after this instance's own writes (read-your-writes)
    /// and when `sync()` is called.
    pub replica_sync_interval: Option<Duration>,
}

/// Everything the engine can be configured with. Every default is documented here and in
/// `docs/configuration.md`.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryConfig {
    /// Input limits (see [`Limits`] for each default).
    pub limits: Limits,
    /// Retrieval scoring (see [`RetrievalConfig`] for each default). Its
    /// `embedding_dimension` is ignored: the engine uses `limits.embedding_dimension`.
    pub retrieval: RetrievalConfig,
    /// The retrieval feature flags at open (all on by default); switch them at runtime with
    /// `SelfLearningMemory::retrieval_flags`.
    pub flags: FlagValues,
    /// How long `shutdown()` waits for in-flight work before giving up. Default 10 s.
    pub shutdown_timeout: Duration,
    /// Completions allowed to run at once; more wait for a slot. Default 64.
    pub max_concurrent_completions: usize,
    /// How long a completion waits for a slot before failing with `Overloaded`. Default 5 s.
    pub completion_wait_timeout: Duration,
    /// Circuit breaker and journal bounds, used when a journal is configured.
    pub resilience: ResilienceConfig,
    /// How often the background job replays journaled writes while the durable store is
    /// back (each attempt is the breaker's half-open probe). Default 1 s.
    pub replay_interval: Duration,
    /// How often the background job runs a reconciliation pass; `None` turns the periodic
    /// pass off (`reconcile()` still works). Default 60 s.
    pub reconcile_interval: Option<Duration>,
    /// One memory budget, in bytes, for the in-process hot cache (`hot_cache_bytes`), the
    /// in-progress episodes and the index (loaded shards and the id directory). When the index
    /// would exceed what the other two leave, least recently used shards are spilled to files
    /// beside the index snapshots (so it needs `MemoryBuilder::index_snapshots`) and loaded
    /// again when used. `None` (the default): no budget. Checked every `replay_interval`.
    pub memory_budget_bytes: Option<u64>,
    /// How often the background job writes an index snapshot, when a snapshot directory is
    /// configured (`MemoryBuilder::index_snapshots`); `None` writes one only at shutdown.
    /// Default 10 min.
    pub index_snapshot_interval: Option<Duration>,
    /// Where the embedded default keeps its files (`memory.db`, `journal.redb`, `cache.redb`,
    /// `index-snapshot/`). Default `data`.
    /// The core never touches it; the binaries that open backends read it from here.
    pub data_dir: PathBuf,
    /// Where the durable store lives: local file (default), remote server or embedded replica.
    pub durable: DurableTarget,
    /// Bytes of decoded episodes kept in memory in front of the cache store (a byte-weighed,
    /// bounded in-process tier; `store::HotCache`). 0 turns it off. Default 64 MiB.
    pub hot_cache_bytes: u64,
    /// Longest an entry stays in the in-process tier, bounding how long it can outlive a change
    /// made by another instance of a shared database. Default 60 s.
    pub hot_cache_ttl: Duration,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            retrieval: RetrievalConfig::default(),
            flags: FlagValues::default(),
            shutdown_timeout: Duration::from_secs(10),
            max_concurrent_completions: 64,
            completion_wait_timeout: Duration::from_secs(5),
            resilience: ResilienceConfig::default(),
            replay_interval: Duration::from_secs(1),
            reconcile_interval: Some(Duration::from_secs(60)),
            index_snapshot_interval: Some(Duration::from_secs(600)),
            memory_budget_bytes: None,
            data_dir: PathBuf::from("data"),
            durable: DurableTarget::default(),
            hot_cache_bytes: 64 * 1024 * 1024,
            hot_cache_ttl: Duration::from_secs(60),
        }
    }
}

type Setter = fn(&mut MemoryConfig, &str, &str) -> Result<()>;

fn parse<T: std::str::FromStr>(name: &str, value: &str, what: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::invalid(name, what, truncate_for_message(value)))
}

fn usize_var(name: &str, value: &str) -> Result<usize> {
    parse(name, value, "a non-negative integer")
}

fn bool_var(name: &str, value: &str) -> Result<bool> {
    match value.trim() {
        "1" | "true" | "on" | "yes" => Ok(true),
        "0" | "false" | "off" | "no" => Ok(false),
        _ => Err(Error::invalid(
            name,
            "true/false, on/off, yes/no or 1/0",
            truncate_for_message(value),
        )),
    }
}

/// Every variable `from_env` reads, with how it sets the config.
const VARS: &[(&str, Setter)] = &[
    ("MEMORY_MAX_DESCRIPTION_CHARS", |c, n, v| {
        c.limits.max_description_chars = usize_var(n, v)?;
        Ok(())
    }),
    ("MEMORY_MAX_STEPS", |c, n, v| {
        c.limits.max_steps = usize_var(n, v)?;
        Ok(())
    }),
    ("MEMORY_MAX_TAGS", |c, n, v| {
        c.limits.max_tags = usize_var(n, v)?;
        Ok(())
    }),
    ("MEMORY_MAX_TAG_CHARS", |c, n, v| {
        c.limits.max_tag_chars = usize_var(n, v)?;
        Ok(())
    }),
    ("MEMORY_MAX_NAME_CHARS", |c, n, v| {
        c.limits.max_name_chars = usize_var(n, v)?;
        Ok(())
    }),
    ("MEMORY_MAX_STEP_PAYLOAD_BYTES", |c, n, v| {
        c.limits.max_step_payload_bytes = usize_var(n, v)?;
        Ok(())
    }),
    ("MEMORY_MAX_TEXT_CHARS", |c, n, v| {
        c.limits.max_text_chars = usize_var(n, v)?;
        Ok(())
    }),
    ("MEMORY_EMBEDDING_DIMENSION", |c, n, v| {
        c.limits.embedding_dimension = match v.trim() {
            "" | "none" => None,
            _ => Some(usize_var(n, v)?),
        };
        Ok(())
    }),
    ("MEMORY_MAX_PAGE_SIZE", |c, n, v| {
        c.limits.max_page_size = usize_var(n, v)?;
        Ok(())
    }),
    ("MEMORY_SHUTDOWN_TIMEOUT_MS", |c, n, v| {
        c.shutdown_timeout = Duration::from_millis(parse(n, v, "milliseconds")?);
        Ok(())
    }),
    ("MEMORY_MAX_CONCURRENT_COMPLETIONS", |c, n, v| {
        c.max_concurrent_completions = usize_var(n, v)?;
        Ok(())
    }),
    ("MEMORY_COMPLETION_WAIT_TIMEOUT_MS", |c, n, v| {
        c.completion_wait_timeout = Duration::from_millis(parse(n, v, "milliseconds")?);
        Ok(())
    }),
    ("MEMORY_HIERARCHICAL_INDEX", |c, n, v| {
        c.flags.hierarchical_index = bool_var(n, v)?;
        Ok(())
    }),
    ("MEMORY_DIVERSITY", |c, n, v| {
        c.flags.diversity = bool_var(n, v)?;
        Ok(())
    }),
    ("MEMORY_TEMPORAL_CLUSTERING", |c, n, v| {
        c.flags.temporal_clustering = bool_var(n, v)?;
        Ok(())
    }),
    ("MEMORY_BREAKER_FAILURE_THRESHOLD", |c, n, v| {
        c.resilience.breaker.failure_threshold = parse(n, v, "a positive integer")?;
        Ok(())
    }),
    ("MEMORY_BREAKER_COOL_DOWN_MS", |c, n, v| {
        c.resilience.breaker.cool_down = Duration::from_millis(parse(n, v, "milliseconds")?);
        Ok(())
    }),
    ("MEMORY_MAX_JOURNAL_ENTRIES", |c, n, v| {
        c.resilience.max_journal_entries = parse(n, v, "a positive integer")?;
        Ok(())
    }),
    ("MEMORY_REPLAY_INTERVAL_MS", |c, n, v| {
        c.replay_interval = Duration::from_millis(parse(n, v, "milliseconds")?);
        Ok(())
    }),
    ("MEMORY_RECONCILE_INTERVAL_MS", |c, n, v| {
        let ms: u64 = parse(n, v, "milliseconds (0 turns it off)")?;
        c.reconcile_interval = (ms > 0).then(|| Duration::from_millis(ms));
        Ok(())
    }),
    ("MEMORY_INDEX_SNAPSHOT_INTERVAL_MS", |c, n, v| {
        let ms: u64 = parse(n, v, "milliseconds (0: only at shutdown)")?;
        c.index_snapshot_interval = (ms > 0).then(|| Duration::from_millis(ms));
        Ok(())
    }),
    ("MEMORY_BUDGET_BYTES", |c, n, v| {
        let bytes: u64 = parse(n, v, "bytes (0: no budget)")?;
        c.memory_budget_bytes = (bytes > 0).then_some(bytes);
        Ok(())
    }),
    ("MEMORY_DATA_DIR", |c, _, v| {
        c.data_dir = PathBuf::from(v);
        Ok(())
    }),
    ("MEMORY_HOT_CACHE_BYTES", |c, n, v| {
        c.hot_cache_bytes = parse(n, v, "bytes (0 turns the in-process tier off)")?;
        Ok(())
    }),
    ("MEMORY_HOT_CACHE_TTL_MS", |c, n, v| {
        c.hot_cache_ttl = Duration::from_millis(parse(n, v, "milliseconds")?);
        Ok(())
    }),
    ("MEMORY_DURABLE_MODE", |c, n, v| {
        c.durable.mode = match v.trim() {
            "local" => DurableMode::Local,
            "remote" => DurableMode::Remote,
            "replica" => DurableMode::Replica,
            _ => {
                return Err(Error::invalid(
                    n,
                    "local, remote or replica",
                    truncate_for_message(v),
                ));
            }
        };
        Ok(())
    }),
    ("MEMORY_DURABLE_URL", |c, _, v| {
        c.durable.url = Some(v.trim().to_owned()).filter(|u| !u.is_empty());
        Ok(())
    }),
    ("MEMORY_DURABLE_AUTH_TOKEN", |c, _, v| {
        c.durable.auth_token = AuthToken::new(v.trim());
        Ok(())
    }),
    ("MEMORY_REPLICA_SYNC_INTERVAL_MS", |c, n, v| {
        let ms: u64 = parse(n, v, "milliseconds (0 turns it off)")?;
        c.durable.replica_sync_interval = (ms > 0).then(|| Duration::from_millis(ms));
        Ok(())
    }),
];

/// Prefix of variables reserved for the test suites (e.g. `MEMORY_TEST_LIBSQL_URL`), which
/// `from_env` ignores.
const TEST_PREFIX: &str = "MEMORY_TEST_";

impl MemoryConfig {
    /// Check every field; the first problem is returned as `InvalidInput` naming the field.
    pub fn validate(&self) -> Result<()> {
        self.limits.validate()?;
        self.retrieval_config().validate()?;
        if self.shutdown_timeout.is_zero() {
            return Err(Error::invalid("shutdown_timeout", "more than 0", "0"));
        }
        if self.max_concurrent_completions == 0 {
            return Err(Error::invalid(
                "max_concurrent_completions",
                "at least 1",
                "0",
            ));
        }
        if self.completion_wait_timeout.is_zero() {
            return Err(Error::invalid(
                "completion_wait_timeout",
                "more than 0",
                "0",
            ));
        }
        self.resilience.validate()?;
        if self.replay_interval.is_zero() {
            return Err(Error::invalid("replay_interval", "more than 0", "0"));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(Error::invalid("data_dir", "a non-empty path", "\"\""));
        }
        if let Some(budget) = self.memory_budget_bytes
            && budget <= self.hot_cache_bytes
        {
            return Err(Error::invalid(
                "memory_budget_bytes",
                format!("more than hot_cache_bytes ({})", self.hot_cache_bytes),
                budget.to_string(),
            ));
        }
        if self.hot_cache_ttl.is_zero() {
            return Err(Error::invalid("hot_cache_ttl", "more than 0", "0"));
        }
        self.durable.validate()
    }

    /// The retrieval configuration the engine runs with: `retrieval` with the embedding
    /// dimension of `limits`.
    pub fn retrieval_config(&self) -> RetrievalConfig {
        RetrievalConfig {
            embedding_dimension: self.limits.embedding_dimension,
            ..self.retrieval.clone()
        }
    }

    /// The defaults overridden by the process's `MEMORY_*` environment variables, validated.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(std::env::vars())
    }

    /// The defaults overridden by `MEMORY_*` pairs from `vars`, validated. An unknown
    /// `MEMORY_*` name is an error (a typo must not silently fall back to a default);
    /// `MEMORY_TEST_*` names are left to the test suites.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = Self::default();
        for (name, value) in vars {
            let (name, value) = (name.as_ref(), value.as_ref());
            if !name.starts_with("MEMORY_") || name.starts_with(TEST_PREFIX) {
                continue;
            }
            let Some((_, set)) = VARS.iter().find(|(n, _)| *n == name) else {
                return Err(Error::invalid(
                    name,
                    format!("one of {}", Self::variable_names().join(", ")),
                    "an unknown MEMORY_ variable",
                ));
            };
            set(&mut config, name, value)?;
        }
        config.validate()?;
        Ok(config)
    }

    /// The names of every variable `from_env` reads.
    pub fn variable_names() -> Vec<&'static str> {
        VARS.iter().map(|(n, _)| *n).collect()
    }
}

impl DurableTarget {
    /// A URL exactly for remote and replica modes, with a scheme the clients speak.
    pub fn validate(&self) -> Result<()> {
        match (self.mode, &self.url) {
            (DurableMode::Local, None) => Ok(()),
            (DurableMode::Local, Some(_)) => Err(Error::invalid(
                "durable.url",
                "unset in local mode (set MEMORY_DURABLE_MODE=remote or replica to use it)",
                "a URL",
            )),
            (_, None) => Err(Error::invalid(
                "durable.url",
                "the server URL (MEMORY_DURABLE_URL) in remote and replica modes",
                "unset",
            )),
            (_, Some(url)) => {
                let ok = ["http://", "https://", "libsql://"]
                    .iter()
                    .any(|scheme| url.starts_with(scheme) && url.len() > scheme.len());
                if ok {
                    Ok(())
                } else {
                    Err(Error::invalid(
                        "durable.url",
                        "an http://, https:// or libsql:// URL",
                        redact_url(url),
                    ))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn defaults_validate() {
        MemoryConfig::default().validate().unwrap();
        assert_eq!(
            MemoryConfig::from_vars::<_, &str, &str>([]).unwrap(),
            MemoryConfig::default()
        );
    }

    #[test]
    fn the_durable_target_needs_a_url_exactly_when_remote() {
        let url = |mode: &str, url: &str| {
            MemoryConfig::from_vars([("MEMORY_DURABLE_MODE", mode), ("MEMORY_DURABLE_URL", url)])
                .map(|c| c.durable)
        };
        assert!(url("remote", "http://127.0.0.1:8080").is_ok());
        assert!(url("replica", "libsql://db.example.turso.io").is_ok());
        for (mode, u) in [
            ("local", "http://x"),
            ("remote", ""),
            ("remote", "ftp://x"),
            ("remote", "http://"),
        ] {
            let e = url(mode, u).unwrap_err();
            assert_eq!(e.violation().unwrap().field, "durable.url", "{mode} {u}");
        }
        let e = url("remote", "ftp://user:s3cret@host/db?authToken=s3cret").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert_eq!(
            redact_url("http://u:p@127.0.0.1:8080/x?authToken=t"),
            "http://127.0.0.1:8080"
        );
        let e = MemoryConfig::from_vars([("MEMORY_DURABLE_MODE", "cloud")]).unwrap_err();
        assert_eq!(e.violation().unwrap().field, "MEMORY_DURABLE_MODE");
    }

    #[test]
    fn every_variable_is_read() {
        let vars = [
            ("MEMORY_MAX_DESCRIPTION_CHARS", "11"),
            ("MEMORY_MAX_STEPS", "12"),
            ("MEMORY_MAX_TAGS", "13"),
            ("MEMORY_MAX_TAG_CHARS", "14"),
            ("MEMORY_MAX_NAME_CHARS", "15"),
            ("MEMORY_MAX_STEP_PAYLOAD_BYTES", "16"),
            ("MEMORY_MAX_TEXT_CHARS", "17"),
            ("MEMORY_EMBEDDING_DIMENSION", "18"),
            ("MEMORY_MAX_PAGE_SIZE", "19"),
            ("MEMORY_SHUTDOWN_TIMEOUT_MS", "20"),
            ("MEMORY_MAX_CONCURRENT_COMPLETIONS", "21"),
            ("MEMORY_COMPLETION_WAIT_TIMEOUT_MS", "22"),
            ("MEMORY_HIERARCHICAL_INDEX", "off"),
            ("MEMORY_DIVERSITY", "false"),
            ("MEMORY_TEMPORAL_CLUSTERING", "0"),
            ("MEMORY_BREAKER_FAILURE_THRESHOLD", "23"),
            ("MEMORY_BREAKER_COOL_DOWN_MS", "24"),
            ("MEMORY_MAX_JOURNAL_ENTRIES", "25"),
            ("MEMORY_REPLAY_INTERVAL_MS", "26"),
            ("MEMORY_RECONCILE_INTERVAL_MS", "0"),
            ("MEMORY_INDEX_SNAPSHOT_INTERVAL_MS", "0"),
            ("MEMORY_BUDGET_BYTES", "300000000"),
            ("MEMORY_DATA_DIR", "/tmp/x"),
            ("MEMORY_HOT_CACHE_BYTES", "28"),
            ("MEMORY_HOT_CACHE_TTL_MS", "29"),
            ("MEMORY_DURABLE_MODE", "replica"),
            ("MEMORY_DURABLE_URL", "http://127.0.0.1:8080"),
            ("MEMORY_DURABLE_AUTH_TOKEN", "s3cret-token"),
            ("MEMORY_REPLICA_SYNC_INTERVAL_MS", "27"),
            ("MEMORY_TEST_LIBSQL_URL", "ignored"),
            ("PATH", "ignored"),
        ];
        assert_eq!(
            vars.len() - 2,
            VARS.len(),
            "a variable is missing from this test"
        );
        let c = MemoryConfig::from_vars(vars).unwrap();
        let l = &c.limits;
        assert_eq!(
            (
                l.max_description_chars,
                l.max_steps,
                l.max_tags,
                l.max_tag_chars
            ),
            (11, 12, 13, 14)
        );
        assert_eq!(
            (l.max_name_chars, l.max_step_payload_bytes, l.max_text_chars),
            (15, 16, 17)
        );
        assert_eq!((l.embedding_dimension, l.max_page_size), (Some(18), 19));
        assert_eq!(c.shutdown_timeout, Duration::from_millis(20));
        assert_eq!(c.max_concurrent_completions, 21);
        assert_eq!(c.completion_wait_timeout, Duration::from_millis(22));
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.resilience.breaker.failure_threshold, 23);
        assert_eq!(c.resilience.breaker.cool_down, Duration::from_millis(24));
        assert_eq!(c.resilience.max_journal_entries, 25);
        assert_eq!(c.replay_interval, Duration::from_millis(26));
        assert_eq!(c.reconcile_interval, None);
        assert_eq!(c.index_snapshot_interval, None);
        assert_eq!(c.memory_budget_bytes, Some(300_000_000));
        assert_eq!(c.hot_cache_bytes, 28);
        assert_eq!(c.hot_cache_ttl, Duration::from_millis(29));
        assert_eq!(c.durable.mode, DurableMode::Replica);
        assert_eq!(c.durable.url.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(c.durable.auth_token.expose(), "s3cret-token");
        assert_eq!(
            c.durable.replica_sync_interval,
            Some(Duration::from_millis(27))
        );
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "the token never appears in Debug output"
        );
        assert_eq!(
            c.flags,
            FlagValues {
                hierarchical_index: false,
                diversity: false,
                temporal_clustering: false
            }
        );
        let e = MemoryConfig::from_vars([("MEMORY_DIVERSITY", "maybe")]).unwrap_err();
        assert_eq!(e.violation().unwrap().field, "MEMORY_DIVERSITY");
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        let e = MemoryConfig::from_vars([("MEMORY_MAX_STEP", "5")]).unwrap_err();
        assert_eq!(e.violation().unwrap().field, "MEMORY_MAX_STEP");
        let e = MemoryConfig::from_vars([("MEMORY_MAX_STEPS", "many")]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = MemoryConfig::from_vars([("MEMORY_MAX_STEPS", "0")]).unwrap_err();
        assert_eq!(e.violation().unwrap().field, "limits.max_steps");
    }
}

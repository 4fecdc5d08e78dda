//! A cluster on loopback: a real Redis and estuary processes sharing it and one storage folder
//! (standing in for the bucket the pods of a real cluster share).

use super::process::Estuary;
use super::redis::RedisServer;

pub struct Cluster {
    pub redis: Option<RedisServer>,
    /// Redis's port, also while it is stopped.
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub pods: Vec<Estuary>,
}

impl Cluster {
    /// `pods` processes on a running Redis; `env` is added to each one's environment.
    pub fn start(pods: usize, env: &[(&str, &str)]) -> Cluster {
        let redis = RedisServer::start();
        let port = redis.port;
        let mut cluster = Cluster { redis: Some(redis), port, dir: tempfile::tempdir().unwrap(), pods: Vec::new() };
        for _ in 0..pods {
            let pod = cluster.spawn(env);
            cluster.pods.push(pod);
        }
        cluster
    }

    /// One more process of the cluster.
    pub fn spawn(&self, env: &[(&str, &str)]) -> Estuary {
        let url = format!("redis://127.0.0.1:{}/", self.port);
        let mut env = env.to_vec();
        env.push(("ESTUARY_CLUSTER_REDIS_URL", url.as_str()));
        env.push(("ESTUARY_CLUSTER_INTERNAL_ADDR", "127.0.0.1:0"));
        Estuary::spawn(&["--storage-root", self.dir.path().to_str().unwrap()], &env)
    }

    /// Puts the bundled sample MP4 in the shared storage, as `sample.mp4`.
    pub fn with_sample(self) -> Cluster {
        let sample = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample/sample.mp4");
        std::fs::copy(sample, self.dir.path().join("sample.mp4")).unwrap();
        self
    }
}

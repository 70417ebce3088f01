//! `burst`: idle for `idle_s`, then `burst` episodes at the same instant (each start timed
//! from that instant), wait for them, and again, `bursts` times; idle once more at the end
//! so the plots show the engine settling.

use std::time::{Duration, Instant};

use memory_core::Result;

use crate::load::client::Client;
use crate::load::items::Items;
use crate::load::options::BurstParams;
use crate::load::scenario::tasks::Tasks;

/// Run the bursts.
pub async fn run(client: &Client, items: &mut Items, p: &BurstParams) -> Result<()> {
    let idle = Duration::from_secs_f64(p.idle_s.max(0.0));
    for _ in 0..p.bursts {
        tokio::time::sleep(idle).await;
        let batch: Vec<_> = (0..p.burst).map(|_| items.next_episode()).collect();
        let mut tasks = Tasks::new();
        let issued = Instant::now();
        for item in batch {
            let client = client.clone();
            tasks.spawn(async move {
                client.episode(item, issued, None).await;
            });
        }
        tasks.join_all().await?;
    }
    tokio::time::sleep(idle).await;
    Ok(())
}

//! `berth member`: change the replica set of a running store.

use clap::Subcommand;
use store::Store;
use store::raft::MemberChange;
use store::raft::remote::RemoteStore;

#[derive(Subcommand)]
pub(crate) enum MemberCommand {
    /// Add replica ID at HOST:PORT (start it first with `--node-id ID --join`); it catches up as
    /// a learner, then becomes a voter.
    Add { id: u64, addr: String },
    /// Remove replica ID from the voters.
    Remove { id: u64 },
    /// Show the store's status as seen by the endpoint.
    Status,
}

pub(crate) async fn run(command: MemberCommand, endpoint: &str) -> anyhow::Result<()> {
    let remote = RemoteStore::new(endpoint);
    match command {
        MemberCommand::Add { id, addr } => {
            remote
                .change_members(MemberChange::Add {
                    id,
                    addr: addr.clone(),
                })
                .await?;
            println!("replica {id} at {addr} added");
        }
        MemberCommand::Remove { id } => {
            remote.change_members(MemberChange::Remove { id }).await?;
            println!("replica {id} removed");
        }
        MemberCommand::Status => {
            let status = remote.status().await?;
            println!("{}", serde_json::to_string_pretty(&status)?);
        }
    }
    Ok(())
}

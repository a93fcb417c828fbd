//! Copying a broker's state from its SQLite file into another store (the
//! JetStream store of a broker cluster): `nexus-broker migrate`.

use rusqlite::params;

use super::{Append, BrokerStore, MeshRecord, Queued, SqliteStore, MAX_SEQ, REVOKED, SEQ_BITS};
use crate::frame::PublishView;
use crate::MeshError;

/// What a migration copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Copied {
    /// Meshes.
    pub meshes: usize,
    /// Members.
    pub members: usize,
    /// Invites (with their use counts) and invite codes.
    pub invites: usize,
    /// Direct messages waiting for their recipients.
    pub queued: usize,
    /// Topic messages.
    pub messages: usize,
}

/// Topic messages copied per batch.
const BATCH: usize = 256;

impl SqliteStore {
    /// Copies every mesh (members, invites, queued messages, topic history
    /// in order) into `to`, saying each mesh done to `progress`. A mesh
    /// that `to` has already is refused before anything is copied, so a
    /// mesh is copied whole or not at all.
    pub fn migrate_to(
        &self,
        to: &dyn BrokerStore,
        mut progress: impl FnMut(&str, &Copied),
    ) -> Result<Copied, MeshError> {
        let meshes: Vec<MeshRecord> = self.with(|c| {
            c.prepare("SELECT mesh, owner_key FROM meshes ORDER BY mesh")?
                .query_map([], |r| {
                    Ok(MeshRecord {
                        mesh: r.get(0)?,
                        owner_key: r.get(1)?,
                    })
                })?
                .collect()
        })?;
        for m in &meshes {
            if to.mesh(&m.mesh)?.is_some() {
                return Err(MeshError::Invalid(format!(
                    "the target already has a mesh `{}`: migrate into a fresh cluster (or remove that mesh's streams and records there first)",
                    m.mesh
                )));
            }
        }
        let mut total = Copied::default();
        for m in &meshes {
            let mut done = Copied {
                meshes: 1,
                ..Default::default()
            };
            if !to.create_mesh(m)? {
                return Err(MeshError::Invalid(format!(
                    "`{}` was created at the target meanwhile",
                    m.mesh
                )));
            }
            for member in self.members(&m.mesh)? {
                to.put_member(&member)?;
                done.members += 1;
            }
            let invites: Vec<(String, u32)> = self.with(|c| {
                c.prepare("SELECT invite, uses FROM invites WHERE mesh = ?1")?
                    .query_map(params![m.mesh], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })?;
            for (invite, uses) in invites {
                if uses == REVOKED {
                    to.revoke_invite(&m.mesh, &invite)?;
                } else {
                    for _ in 0..uses {
                        to.use_invite(&m.mesh, &invite, u32::MAX - 1)?;
                    }
                }
                done.invites += 1;
            }
            let queued: Vec<(String, Queued)> = self.with(|c| {
                c.prepare("SELECT recipient, id, frame FROM queue WHERE mesh = ?1 ORDER BY seq")?
                    .query_map(params![m.mesh], |r| {
                        Ok((
                            r.get(0)?,
                            Queued {
                                id: r.get(1)?,
                                frame: r.get(2)?,
                            },
                        ))
                    })?
                    .collect()
            })?;
            for (to_peer, q) in queued {
                to.enqueue(&m.mesh, &to_peer, &q)?;
                done.queued += 1;
            }
            let topics: Vec<(i64, String)> = self.with(|c| {
                c.prepare("SELECT id, topic FROM topic_names WHERE mesh = ?1 ORDER BY id")?
                    .query_map(params![m.mesh], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect()
            })?;
            for (number, topic) in topics {
                let base = number << SEQ_BITS;
                let mut after = base;
                loop {
                    type Row = (i64, Vec<u8>, Option<Vec<u8>>);
                    let rows: Vec<Row> = self.with(|c| {
                        c.prepare_cached(
                            "SELECT key, frame, id FROM topic_log WHERE key > ?1 AND key <= ?2
                             ORDER BY key LIMIT ?3",
                        )?
                        .query_map(params![after, base | MAX_SEQ, BATCH as i64], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })?
                        .collect()
                    })?;
                    let Some(&(last, _, _)) = rows.last() else {
                        break;
                    };
                    after = last;
                    // Each message keeps its id (as stored, else from its
                    // frame), so the one-message-per-id rule holds across
                    // the copy.
                    let ids: Vec<String> = rows
                        .iter()
                        .map(|(key, f, id)| match (id, PublishView::parse(f)) {
                            (Some(id), _) if id.len() == 16 => crate::identity::hex(id),
                            (Some(id), _) if !id.is_empty() => {
                                String::from_utf8_lossy(id).into_owned()
                            }
                            (_, Some(Ok(p))) => p.id.to_string(),
                            _ => format!("migrated-{key}"),
                        })
                        .collect();
                    let batch: Vec<Append<'_>> = rows
                        .iter()
                        .zip(&ids)
                        .map(|((_, f, _), id)| Append {
                            mesh: &m.mesh,
                            topic: &topic,
                            id,
                            frame: f,
                        })
                        .collect();
                    to.append_topics(&batch)?;
                    done.messages += batch.len();
                }
            }
            total.meshes += done.meshes;
            total.members += done.members;
            total.invites += done.invites;
            total.queued += done.queued;
            total.messages += done.messages;
            progress(&m.mesh, &done);
        }
        let codes: Vec<(String, String)> = self.with(|c| {
            c.prepare("SELECT short, code FROM invite_codes")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect()
        })?;
        for (short, code) in codes {
            to.put_invite_code(&short, &code)?;
            total.invites += 1;
        }
        Ok(total)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{conformance, MemoryStore};
    use super::*;

    #[test]
    fn everything_is_copied_once_and_a_mesh_already_there_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let from = SqliteStore::open(&d.path().join("b.db")).unwrap();
        conformance::membership(&from);
        conformance::queue_and_history(&from);
        let to = MemoryStore::default();
        let mut said = Vec::new();
        let c = from
            .migrate_to(&to, |m, _| said.push(m.to_string()))
            .unwrap();
        assert_eq!(said, ["lab"]);
        assert_eq!((c.meshes, c.members, c.queued), (1, 2, 1));
        let page = |s: &dyn BrokerStore, t: &str| -> Vec<Vec<u8>> {
            s.history("lab", t, None, 100, 1 << 20)
                .unwrap()
                .into_iter()
                .map(|(_, f)| f)
                .collect()
        };
        for t in ["t", "big", "u"] {
            assert_eq!(page(&from, t), page(&to, t), "topic {t}");
        }
        assert_eq!(
            to.pending("lab", "b").unwrap(),
            from.pending("lab", "b").unwrap()
        );
        assert_eq!(to.members("lab").unwrap().len(), 2);
        // Spent and revoked invites stay spent and revoked.
        assert!(!to.use_invite("lab", "i1", 2).unwrap());
        assert!(!to.use_invite("lab", "i2", 5).unwrap());
        assert_eq!(
            to.invite_code("ABCD-0000-1111-2222").unwrap().as_deref(),
            Some("full-code")
        );
        // "ops" was only ever a topic's mesh, never created: not copied.
        assert!(to
            .history("ops", "t", None, 10, 1 << 20)
            .unwrap()
            .is_empty());
        let again = from.migrate_to(&to, |_, _| {}).unwrap_err().to_string();
        assert!(again.contains("already has a mesh `lab`"), "{again}");
    }
}

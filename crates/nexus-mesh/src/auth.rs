//! Who may speak: the signed hello (with clock-skew bounds and a replay
//! cache) and signed invites. Pure: the time comes in as an argument.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::identity::{hex, unhex, verify, Identity, PeerId};
use crate::MeshError;

/// How far a hello's timestamp may be from the broker's clock.
pub const MAX_SKEW_MS: u64 = 60_000;

/// The bytes a hello signs: mesh, peer, key, time and nonce, length-framed
/// so no two different hellos sign the same bytes.
pub fn hello_payload(mesh: &str, peer: &str, key_hex: &str, ts: u64, nonce: &str) -> Vec<u8> {
    let mut p = b"nexus-mesh/hello/v1".to_vec();
    for part in [
        mesh.as_bytes(),
        peer.as_bytes(),
        key_hex.as_bytes(),
        &ts.to_be_bytes(),
        nonce.as_bytes(),
    ] {
        p.extend_from_slice(&(part.len() as u32).to_be_bytes());
        p.extend_from_slice(part);
    }
    p
}

/// A hello, signed by `id`.
pub fn sign_hello(id: &Identity, mesh: &str, ts: u64, nonce: &str) -> crate::frame::Frame {
    let key = hex(&id.ed25519_public());
    let peer = id.peer_id().to_string();
    let sig = hex(&id.sign(&hello_payload(mesh, &peer, &key, ts, nonce)));
    crate::frame::Frame::Hello {
        mesh: mesh.to_string(),
        peer,
        key,
        ts,
        nonce: nonce.to_string(),
        sig,
    }
}

/// Remembers recent hello nonces, so a captured hello cannot be replayed
/// inside the skew window. Entries older than twice the window are dropped.
#[derive(Debug, Default)]
pub struct ReplayCache {
    seen: HashMap<String, u64>,
    order: VecDeque<(u64, String)>,
}

impl ReplayCache {
    /// Records `nonce` seen at `now`; false if it was seen already.
    pub fn insert(&mut self, nonce: &str, now: u64) -> bool {
        while let Some((t, _)) = self.order.front() {
            if now.saturating_sub(*t) > 2 * MAX_SKEW_MS {
                if let Some((_, n)) = self.order.pop_front() {
                    self.seen.remove(&n);
                }
            } else {
                break;
            }
        }
        if self.seen.contains_key(nonce) {
            return false;
        }
        self.seen.insert(nonce.to_string(), now);
        self.order.push_back((now, nonce.to_string()));
        true
    }

    /// How many nonces are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

/// Checks a hello: the key matches the peer id, the time is within the
/// skew, the nonce is fresh, and the signature verifies. Returns the
/// peer's Ed25519 key.
pub fn check_hello(
    hello: &crate::frame::Frame,
    now: u64,
    replay: &mut ReplayCache,
) -> Result<[u8; 32], MeshError> {
    let crate::frame::Frame::Hello {
        mesh,
        peer,
        key: key_hex,
        ts,
        nonce,
        sig: sig_hex,
    } = hello
    else {
        return Err(MeshError::Invalid("expected a hello".into()));
    };
    let (ts, mesh, peer) = (*ts, mesh.as_str(), peer.as_str());
    let key: [u8; 32] = unhex(key_hex)?
        .try_into()
        .map_err(|_| MeshError::Invalid("the hello's key is not 32 bytes".into()))?;
    if PeerId::of(&key).as_str() != peer {
        return Err(MeshError::Invalid(
            "the peer id does not match the key".into(),
        ));
    }
    if ts.abs_diff(now) > MAX_SKEW_MS {
        return Err(MeshError::Invalid(format!(
            "the hello's clock is {}s off the broker's (at most {}s allowed); fix the system clock",
            ts.abs_diff(now) / 1000,
            MAX_SKEW_MS / 1000
        )));
    }
    if nonce.len() < 16 || nonce.len() > 128 {
        return Err(MeshError::Invalid(
            "the hello nonce must be 16 to 128 characters".into(),
        ));
    }
    verify(
        &key,
        &hello_payload(mesh, peer, key_hex, ts, nonce),
        &unhex(sig_hex)?,
    )?;
    // Only a verified hello may spend a nonce, or forgeries could burn them.
    if !replay.insert(nonce, now) {
        return Err(MeshError::Invalid(
            "this hello was already used (replay)".into(),
        ));
    }
    Ok(key)
}

/// What a member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Read topics and receive direct messages.
    Read,
    /// Send direct messages.
    Dm,
    /// Publish to topics.
    Broadcast,
    /// Create invites and manage grants.
    Admin,
}

impl Capability {
    /// Parses `read`, `dm`, `broadcast`, `admin`.
    pub fn parse(s: &str) -> Result<Capability, MeshError> {
        match s {
            "read" => Ok(Capability::Read),
            "dm" => Ok(Capability::Dm),
            "broadcast" => Ok(Capability::Broadcast),
            "admin" => Ok(Capability::Admin),
            other => Err(MeshError::Invalid(format!(
                "unknown capability `{other}`; use read, dm, broadcast or admin"
            ))),
        }
    }

    /// The roles an invite may grant.
    pub const ROLES: [&'static str; 3] = ["member", "reader", "admin"];

    /// The capabilities of a role.
    pub fn for_role(role: &str) -> Vec<Capability> {
        match role {
            "admin" => vec![
                Capability::Read,
                Capability::Dm,
                Capability::Broadcast,
                Capability::Admin,
            ],
            "reader" => vec![Capability::Read],
            _ => vec![Capability::Read, Capability::Dm, Capability::Broadcast],
        }
    }
}

/// An invitation, signed by the mesh owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// The mesh.
    pub mesh: String,
    /// A unique id (uses are counted per id).
    pub id: String,
    /// `member`, `reader` or `admin`.
    pub role: String,
    /// Expiry, ms since the epoch.
    pub expires_ms: u64,
    /// How many peers may join with it.
    pub max_uses: u32,
    /// The broker's WebSocket URL.
    pub broker: String,
    /// The owner's Ed25519 key, hex.
    pub owner: String,
    /// The owner's signature over the fields above, hex.
    pub sig: String,
}

fn invite_payload(i: &Invite) -> Vec<u8> {
    let mut p = b"nexus-mesh/invite/v1".to_vec();
    for part in [
        i.mesh.as_bytes(),
        i.id.as_bytes(),
        i.role.as_bytes(),
        &i.expires_ms.to_be_bytes(),
        &i.max_uses.to_be_bytes(),
        i.broker.as_bytes(),
        i.owner.as_bytes(),
    ] {
        p.extend_from_slice(&(part.len() as u32).to_be_bytes());
        p.extend_from_slice(part);
    }
    p
}

impl Invite {
    /// A new invite signed by `owner`. The mesh root key is *not* in it: it
    /// is sealed to the joiner's X25519 key after the join.
    pub fn new(
        owner: &Identity,
        mesh: &str,
        broker: &str,
        role: &str,
        expires_ms: u64,
        max_uses: u32,
    ) -> Result<Invite, MeshError> {
        let id = hex(&crate::identity::random32()?[..12]);
        let mut i = Invite {
            mesh: mesh.to_string(),
            id,
            role: role.to_string(),
            expires_ms,
            max_uses,
            broker: broker.to_string(),
            owner: hex(&owner.ed25519_public()),
            sig: String::new(),
        };
        i.sig = hex(&owner.sign(&invite_payload(&i)));
        Ok(i)
    }

    /// Checks the signature against `owner_key_hex` and the expiry.
    pub fn verify(&self, owner_key_hex: &str, now: u64) -> Result<(), MeshError> {
        if self.owner != owner_key_hex {
            return Err(MeshError::Invalid(
                "the invite is not signed by this mesh's owner".into(),
            ));
        }
        verify(
            &unhex(&self.owner)?,
            &invite_payload(self),
            &unhex(&self.sig)?,
        )?;
        if now >= self.expires_ms {
            return Err(MeshError::Invalid(
                "the invite has expired; ask for a new one".into(),
            ));
        }
        Ok(())
    }

    /// The short code: the invite, base64url.
    pub fn code(&self) -> String {
        b64url(&serde_json::to_vec(self).unwrap_or_default())
    }

    /// The short code: 64 bits of the invite's random id, in four groups
    /// (`ABCD-EF01-2345-6789`). The broker the owner registered it with
    /// hands out the full, signed invite for it.
    pub fn short_code(&self) -> String {
        normalize_short(&self.id.chars().take(16).collect::<String>())
    }

    /// The link `nexus://join/<code>`.
    pub fn link(&self) -> String {
        format!("nexus://join/{}", self.code())
    }

    /// Parses a code or a `nexus://join/` link.
    pub fn parse(s: &str) -> Result<Invite, MeshError> {
        let code = s.trim().strip_prefix("nexus://join/").unwrap_or(s.trim());
        let bytes = unb64url(code)
            .ok_or_else(|| MeshError::Invalid("not an invite code or nexus://join/ link".into()))?;
        serde_json::from_slice(&bytes)
            .map_err(|_| MeshError::Invalid("the invite code is damaged".into()))
    }
}

/// Canonical form of a short code: upper-case hex in groups of four.
pub fn normalize_short(s: &str) -> String {
    let hex: String = s
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

fn short_code_digest(label: &[u8], short: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(label);
    ctx.update(normalize_short(short).as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// What the broker knows an invite by once it is used (its use count, the
/// members who joined with it): a hash of its id, since the id begins with
/// the short code, which would let anyone who reads the broker's files
/// fetch a multi-use invite and join. The owner files the invites it
/// issued under the same reference, for the key policy.
pub fn invite_ref(id: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"nexus-mesh/invite-ref/v1");
    ctx.update(id.as_bytes());
    hex(&ctx.finish().as_ref()[..16])
}

/// What the broker files an invite under: a hash of its short code, so
/// the database does not hold codes anyone could join with.
pub fn short_code_lookup(short: &str) -> String {
    hex(&short_code_digest(b"nexus-mesh/short-code/id/v1", short))
}

/// The invite `code` sealed with a key derived from its short code (hex):
/// only someone who knows the short code can read it back.
pub fn seal_invite_code(short: &str, code: &str) -> Result<String, MeshError> {
    let key = short_code_digest(b"nexus-mesh/short-code/key/v1", short);
    let nonce: [u8; 24] = crate::identity::random32()?[..24]
        .try_into()
        .map_err(|_| MeshError::Crypto("nonce".into()))?;
    let mut out = nonce.to_vec();
    out.extend(crate::xchacha::seal(
        &key,
        &nonce,
        b"invite",
        code.as_bytes(),
    )?);
    Ok(hex(&out))
}

/// Opens what [`seal_invite_code`] made; `None` if it is not that.
pub fn open_invite_code(short: &str, sealed: &str) -> Option<String> {
    let bytes = unhex(sealed).ok()?;
    let (nonce, ct) = bytes.split_first_chunk::<24>()?;
    let key = short_code_digest(b"nexus-mesh/short-code/key/v1", short);
    let plain = crate::xchacha::open(&key, nonce, b"invite", ct)?;
    String::from_utf8(plain).ok()
}

/// Whether `s` looks like a short code rather than a link or full code.
pub fn is_short_code(s: &str) -> bool {
    let hex: Vec<char> = s.chars().filter(|c| *c != '-').collect();
    hex.len() == 16 && hex.iter().all(char::is_ascii_hexdigit)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        let chars = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        for (i, ch) in chars.iter().enumerate() {
            if i <= c.len() {
                out.push(B64[*ch as usize] as char);
            }
        }
    }
    out
}

fn unb64url(s: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for ch in s.bytes() {
        let v = B64.iter().position(|b| *b == ch)? as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_checks_skew_replay_forgery_and_mesh() {
        use crate::frame::Frame;
        let id = Identity::generate("a").unwrap();
        let now = 1_795_219_200_000;
        let mut cache = ReplayCache::default();
        let h = sign_hello(&id, "lab", now + 30_000, "0123456789abcdef0123");
        assert_eq!(
            check_hello(&h, now, &mut cache).unwrap(),
            id.ed25519_public()
        );
        assert!(check_hello(&h, now, &mut cache)
            .unwrap_err()
            .to_string()
            .contains("replay"));
        let old = sign_hello(&id, "lab", now - 61_000, "aaaaaaaaaaaaaaaaaaaa");
        assert!(check_hello(&old, now, &mut cache)
            .unwrap_err()
            .to_string()
            .contains("clock"));
        let Frame::Hello {
            peer,
            key,
            ts,
            nonce,
            sig,
            ..
        } = sign_hello(&id, "lab", now, "bbbbbbbbbbbbbbbbbbbb")
        else {
            unreachable!()
        };
        let other_mesh = Frame::Hello {
            mesh: "other".into(),
            peer: peer.clone(),
            key: key.clone(),
            ts,
            nonce: nonce.clone(),
            sig: sig.clone(),
        };
        assert!(
            check_hello(&other_mesh, now, &mut cache).is_err(),
            "signed for another mesh"
        );
        let stranger = Identity::generate("b").unwrap();
        let forged = Frame::Hello {
            mesh: "lab".into(),
            peer: peer.clone(),
            key: hex(&stranger.ed25519_public()),
            ts,
            nonce: nonce.clone(),
            sig: sig.clone(),
        };
        assert!(check_hello(&forged, now, &mut cache).is_err());
        // Forgeries did not burn the nonce.
        let genuine = Frame::Hello {
            mesh: "lab".into(),
            peer,
            key,
            ts,
            nonce,
            sig,
        };
        check_hello(&genuine, now, &mut cache).unwrap();
    }

    #[test]
    fn invite_codes_are_filed_by_hash_and_sealed_with_the_short_code() {
        let short = "abcd-ef01-2345-6789";
        let id = short_code_lookup(short);
        assert_eq!(id, short_code_lookup("ABCD-EF01-2345-6789"));
        assert!(!id.to_uppercase().contains("ABCDEF0123456789"));
        let sealed = seal_invite_code(short, "nexus://join/full").unwrap();
        assert!(!sealed.contains("full") && !sealed.contains(&hex(b"full")));
        assert_eq!(
            open_invite_code(short, &sealed).unwrap(),
            "nexus://join/full"
        );
        assert_eq!(open_invite_code("ABCD-EF01-2345-6788", &sealed), None);
        assert_eq!(open_invite_code(short, "00"), None);
    }

    #[test]
    fn replay_cache_forgets_old_nonces() {
        let mut c = ReplayCache::default();
        assert!(c.insert("x", 0));
        assert!(!c.insert("x", 1000));
        assert!(c.insert("y", 3 * MAX_SKEW_MS));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn invites_are_signed_expire_and_round_trip_as_links() {
        let owner = Identity::generate("owner").unwrap();
        let i = Invite::new(&owner, "lab", "ws://127.0.0.1:7777", "member", 1000, 3).unwrap();
        let link = i.link();
        assert!(link.starts_with("nexus://join/"));
        let back = Invite::parse(&link).unwrap();
        assert_eq!(back, i);
        let key = hex(&owner.ed25519_public());
        back.verify(&key, 999).unwrap();
        assert!(back.verify(&key, 1000).is_err(), "expired");
        let mut tampered = back.clone();
        tampered.max_uses = 1000;
        assert!(tampered.verify(&key, 0).is_err());
        let stranger = Identity::generate("x").unwrap();
        assert!(back.verify(&hex(&stranger.ed25519_public()), 0).is_err());
        assert!(Invite::parse("nexus://join/!!!").is_err());
        for n in 0..40 {
            let d: Vec<u8> = (0..n).map(|i| (i as u8).wrapping_mul(7)).collect();
            assert_eq!(unb64url(&b64url(&d)).unwrap(), d);
        }
    }
}
